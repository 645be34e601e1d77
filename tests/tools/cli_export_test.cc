// `zcpack export` (container -> GGUF) and `zcpack convert --to gguf` (GGUF ->
// GGUF), end to end: tensor offsets read back from the written file are
// multiples of the alignment, blocks are the container's in ggml's order,
// GGUF -> container -> GGUF -> container gives the same bytes, Hugging Face
// Q/K rows are permuted into llama.cpp's RoPE layout, the tokenizer survives,
// and bad input is refused with a clear message and nothing at the output.
// (llama.cpp itself loads the exported files in tools/export_vs_llamacpp.sh.)
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/runtime/hf_tokenizer_files.h"
#include "tests/runtime/text_model.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The names in folder `dir`.
std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ExportCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("export"); }
  void TearDown() override { RemoveTree(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // A llama GGUF of `dtype` matrices with a tokenizer, at `name`.
  std::string WriteGguf(const std::string& name, format::DType dtype,
                        const std::map<std::string, uint32_t>& ggml_types = {}) {
    const std::vector<uint8_t> bytes =
        TinyLlamaGguf(QuantizedLlamaModelInfo(), dtype, 5, {}, ggml_types);
    EXPECT_TRUE(WriteFileBytes(Path(name), bytes).ok());
    return Path(name);
  }

  // `args` must succeed.
  void Zcpack(const std::vector<std::string>& args) {
    const CliResult r = RunZcpack(args);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  }

  std::vector<uint8_t> Bytes(const std::string& path) {
    absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(path);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.value_or(std::vector<uint8_t>());
  }

  std::string dir_;
};

// Every tensor of `gguf_path` starts at a multiple of `alignment` (read back
// from the file: general.alignment and the tensor infos), the tensors lie in
// the container's order, and each holds the container's blocks in ggml's
// row-major order.
void ExpectLayoutOf(const std::string& gguf_path, const std::string& container_path,
                    uint64_t alignment) {
  const absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(gguf_path);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const absl::StatusOr<converter::GgufFile> gguf = converter::ParseGguf(*bytes, gguf_path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->version, 3u);
  EXPECT_EQ(gguf->alignment, alignment);
  EXPECT_EQ(gguf->data_offset % alignment, 0u);
  auto c = format::Container::Open(container_path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(gguf->tensors.size(), (*c)->num_tensors());
  uint64_t previous_end = 0;
  for (size_t i = 0; i < gguf->tensors.size(); ++i) {
    const converter::GgufTensorInfo& t = gguf->tensors[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.offset % alignment, 0u);  // absolute offset in the file
    EXPECT_GE(t.offset, previous_end);    // file order is the container's
    previous_end = t.offset + t.nbytes;
    const format::TensorEntry& e = (*c)->tensor(i);
    ASSERT_EQ(t.dtype, e.dtype());
    std::vector<uint8_t> row_major(e.nbytes());
    const std::span<const uint8_t> stored = (*c)->TensorData(i);
    if (e.layout() == format::LAYOUT_ROW_GROUPS_16) {
      const uint64_t row_bytes = e.nbytes() / e.shape(0);
      format::FromRowGroups(e.dtype(), e.shape(0), row_bytes, stored.data(), row_major.data());
    } else {
      std::copy(stored.begin(), stored.end(), row_major.begin());
    }
    EXPECT_TRUE(std::equal(row_major.begin(), row_major.end(), bytes->begin() + t.offset));
  }
}

TEST_F(ExportCliTest, TensorOffsetsAreMultiplesOfTheContainersAlignment) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_Q4_0);
  Zcpack({"convert", gguf, "-o", Path("model.zcpack"), "--quiet"});
  Zcpack({"export", Path("model.zcpack"), "-o", Path("out.gguf"), "--quiet"});
  ExpectLayoutOf(Path("out.gguf"), Path("model.zcpack"), 16384);
  // verify takes the export as a source: every tensor byte for byte.
  const CliResult r = RunZcpack({"verify", Path("model.zcpack"), "--against", Path("out.gguf")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("unconverted (byte for byte), 0 converted"));
}

TEST_F(ExportCliTest, TensorOffsetsAreMultiplesOfAnAlignmentAskedFor) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_Q8_0);
  Zcpack({"convert", gguf, "-o", Path("model.zcpack"), "--quiet"});
  for (const uint64_t alignment : {uint64_t{32}, uint64_t{4096}, uint64_t{65536}}) {
    const std::string out = Path(absl::StrCat("out", alignment, ".gguf"));
    Zcpack({"export", Path("model.zcpack"), "-o", out, "--alignment", absl::StrCat(alignment),
            "--quiet"});
    ExpectLayoutOf(out, Path("model.zcpack"), alignment);
  }
}

class ExportRoundTripTest : public ExportCliTest,
                            public ::testing::WithParamInterface<format::DType> {};

TEST_P(ExportRoundTripTest, GgufToContainerToGgufToContainerGivesTheSameBytes) {
  const std::string gguf = WriteGguf("model.gguf", GetParam());
  Zcpack({"convert", gguf, "-o", Path("a.zcpack"), "--quant", "keep", "--quiet"});
  Zcpack({"export", Path("a.zcpack"), "-o", Path("a.gguf"), "--quiet"});
  Zcpack({"convert", Path("a.gguf"), "-o", Path("b.zcpack"), "--quant", "keep", "--quiet"});
  EXPECT_EQ(Bytes(Path("a.zcpack")), Bytes(Path("b.zcpack")));
  // And the export of the second container is the first export.
  Zcpack({"export", Path("b.zcpack"), "-o", Path("b.gguf"), "--quiet"});
  EXPECT_EQ(Bytes(Path("a.gguf")), Bytes(Path("b.gguf")));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ExportRoundTripTest,
                         ::testing::Values(format::DTYPE_F32, format::DTYPE_F16,
                                           format::DTYPE_Q4_0, format::DTYPE_Q8_0,
                                           format::DTYPE_Q4_K),
                         [](const auto& p) { return std::string(format::DTypeName(p.param)); });

TEST_F(ExportCliTest, ChangedTensorDataDropsTheCarriedProvenance) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_F16);
  Zcpack({"convert", gguf, "-o", Path("a.zcpack"), "--quant", "keep", "--quiet"});
  Zcpack({"export", Path("a.zcpack"), "-o", Path("a.gguf"), "--quiet"});
  std::vector<uint8_t> bytes = Bytes(Path("a.gguf"));
  bytes.back() ^= 0x01;  // the last tensor's last byte
  ASSERT_TRUE(WriteFileBytes(Path("edited.gguf"), bytes).ok());
  const CliResult r = RunZcpack({"convert", Path("edited.gguf"), "-o", Path("b.zcpack"), "--quant",
                                 "keep", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("the tensor data changed since it was exported"));
  auto b = format::Container::Open(Path("b.zcpack"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ((*b)->manifest().provenance().sources_size(), 1);
  EXPECT_EQ((*b)->manifest().provenance().sources(0).name(), "edited.gguf");
}

TEST_F(ExportCliTest, HuggingFaceQueryAndKeyRowsArePermutedAndRunTheSame) {
  // tiny synth (f16 safetensors, half-split RoPE) kept f16, and as q4_0 in
  // row groups: the export permutes Q/K, and a container converted from it
  // (interleaved RoPE) generates the same ids.
  Zcpack({"synth", "--shape", "tiny", "--out", Path("hf")});
  for (const std::string quant : {"f16", "q4_0"}) {
    SCOPED_TRACE(quant);
    const std::string a = Path("a-" + quant + ".zcpack"), e = Path("a-" + quant + ".gguf");
    const std::string b = Path("b-" + quant + ".zcpack");
    Zcpack({"convert", Path("hf"), "-o", a, "--quant", quant, "--quiet"});
    const CliResult exported = RunZcpack({"export", a, "-o", e, "--json"});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const nlohmann::json report = nlohmann::json::parse(exported.out);
    int permuted = 0, widened = 0;
    for (const auto& t : report["tensors"]) {
      permuted += t["rope_permuted"].get<bool>();
      widened += t["widened_to_f32"].get<bool>();
      if (t["name"] == "blk.0.attn_q.weight") {
        EXPECT_EQ(t["source_name"], "model.layers.0.self_attn.q_proj.weight");
      }
    }
    EXPECT_EQ(permuted, 4);  // q and k of 2 layers
    EXPECT_EQ(widened, 5);   // 2 norms per layer and the final norm

    // Row r of the exported Q is half-split row HalfSplit(r) of the container.
    auto c = format::Container::Open(a);
    ASSERT_TRUE(c.ok()) << c.status();
    const absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(e);
    ASSERT_TRUE(bytes.ok());
    const absl::StatusOr<converter::GgufFile> gguf = converter::ParseGguf(*bytes, e);
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    const converter::GgufTensorInfo* q = gguf->FindTensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    const size_t qi = *(*c)->FindTensor("model.layers.0.self_attn.q_proj.weight");
    const format::TensorEntry& qe = (*c)->tensor(qi);
    const uint64_t rows = qe.shape(0), row_bytes = qe.nbytes() / rows;
    const uint64_t head = (*c)->manifest().model().head_dim();
    std::vector<uint8_t> row(row_bytes);
    for (uint64_t r = 0; r < rows; ++r) {
      const uint64_t from = r / head * head + (r % 2) * (head / 2) + (r % head) / 2;
      format::CopyRowMajorRow(qe.dtype(), qe.layout(), rows, row_bytes, (*c)->TensorData(qi).data(),
                              from, row.data());
      ASSERT_TRUE(std::equal(row.begin(), row.end(), bytes->begin() + q->offset + r * row_bytes))
          << "row " << r;
    }
    const converter::GgufTensorInfo* norm = gguf->FindTensor("blk.0.attn_norm.weight");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->ggml_type, converter::kGgmlTypeF32);

    // verify matches the export's llama.cpp names by role and layer and
    // compares Q/K through the permutation; the widened norms are exact.
    const CliResult verified = RunZcpack({"verify", a, "--against", e});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    // A flipped byte in an exported Q row is found.
    std::vector<uint8_t> damaged = *bytes;
    damaged[q->offset + 3 * row_bytes + 2] ^= 0x08;
    ASSERT_TRUE(WriteFileBytes(Path("damaged.gguf"), damaged).ok());
    const CliResult refused = RunZcpack({"verify", a, "--against", Path("damaged.gguf")});
    EXPECT_EQ(refused.exit_code, 1) << refused.out;
    EXPECT_THAT(refused.out, HasSubstr("model.layers.0.self_attn.q_proj.weight"));

    Zcpack({"convert", e, "-o", b, "--quant", "keep", "--quiet"});
    const CliResult ra = RunZcpack({"run", a, "--tokens", "1,2,3", "-n", "8", "--threads", "1",
                                    "--json"});
    const CliResult rb = RunZcpack({"run", b, "--tokens", "1,2,3", "-n", "8", "--threads", "1",
                                    "--json"});
    ASSERT_EQ(ra.exit_code, 0) << ra.err;
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_EQ(nlohmann::json::parse(ra.out)["generated"], nlohmann::json::parse(rb.out)["generated"]);
  }
}

TEST_F(ExportCliTest, HuggingFaceTokenizersBecomeLlamaCppKeysThatTokenizeTheSame) {
  Zcpack({"synth", "--shape", "tiny", "--out", Path("hf")});
  absl::StatusOr<runtime::Vocabulary> vocab =
      runtime::VocabularyFromGgufJson(TextVocabulary().dump(), "text vocabulary");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  const std::string text = "the time of a zebra, 1234 \xe2\x82\xac!";
  for (const std::string file : {"tokenizer.json", "tokenizer.model"}) {
    SCOPED_TRACE(file);
    const std::string bytes =
        file == "tokenizer.json" ? HfTokenizerJson(*vocab) : SentencePieceModel(*vocab);
    std::ofstream(Path("hf/" + file), std::ios::binary) << bytes;
    const std::string a = Path(file + ".zcpack"), e = Path(file + ".gguf");
    Zcpack({"convert", Path("hf"), "-o", a, "--quiet", "--force"});
    Zcpack({"export", a, "-o", e, "--quiet", "--force"});
    const CliResult from_container = RunZcpack({"tokenize", a, text, "--bos"});
    const CliResult from_gguf = RunZcpack({"tokenize", e, text, "--bos"});
    ASSERT_EQ(from_container.exit_code, 0) << from_container.err;
    ASSERT_EQ(from_gguf.exit_code, 0) << from_gguf.err;
    EXPECT_EQ(from_container.out, from_gguf.out);
    EXPECT_THAT(from_gguf.out, ::testing::StartsWith("1 "));  // BOS added as the vocabulary says
    ::unlink(Path("hf/" + file).c_str());
  }
}

TEST_F(ExportCliTest, AContainerWithoutTokenizerExportsNoVocabularyAndRoundTrips) {
  Zcpack({"synth", "--shape", "tiny", "--out", Path("hf")});
  Zcpack({"convert", Path("hf"), "-o", Path("a.zcpack"), "--quant", "keep", "--quiet"});
  Zcpack({"export", Path("a.zcpack"), "-o", Path("a.gguf"), "--quiet"});
  const absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(Path("a.gguf"));
  ASSERT_TRUE(bytes.ok());
  const absl::StatusOr<converter::GgufFile> gguf = converter::ParseGguf(*bytes, "a.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  const converter::GgufValue* model = gguf->FindMetadata("tokenizer.ggml.model");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*model->AsString(), "none");
  Zcpack({"convert", Path("a.gguf"), "-o", Path("b.zcpack"), "--quant", "keep", "--quiet"});
  auto b = format::Container::Open(Path("b.zcpack"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->manifest().tokenizers_size(), 0);
  auto a = format::Container::Open(Path("a.zcpack"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*b)->manifest().model().bos_token_id(), (*a)->manifest().model().bos_token_id());
  EXPECT_EQ((*b)->manifest().provenance().sources_size(),
            (*a)->manifest().provenance().sources_size());
}

TEST_F(ExportCliTest, ATensorLlamaCppHasNoPlaceForIsRefusedAndNothingIsWritten) {
  // A tensor the forward pass does not use: the container keeps it, llama.cpp
  // would refuse the file ("wrong number of tensors").
  GgufTestWriter w;
  const std::vector<uint8_t> base = TinyLlamaGguf(TinyLlamaModelInfo(), format::DTYPE_F32);
  absl::StatusOr<converter::GgufFile> parsed = converter::ParseGguf(base, "base");
  ASSERT_TRUE(parsed.ok());
  for (const converter::GgufKeyValue& kv : parsed->metadata) {
    if (const std::string* s = kv.value.AsString()) w.AddString(kv.key, *s);
    else if (kv.value.type == converter::GgufValueType::kUint32) w.AddUint32(kv.key, *kv.value.AsUnsigned());
    else if (kv.value.type == converter::GgufValueType::kFloat32) w.AddFloat32(kv.key, static_cast<float>(*kv.value.AsDouble()));
  }
  for (const converter::GgufTensorInfo& t : parsed->tensors) {
    w.AddTensor(t.name, t.ggml_type, t.shape,
                std::vector<uint8_t>(base.begin() + t.offset, base.begin() + t.offset + t.nbytes));
  }
  w.AddTensor("blk.0.extra.weight", converter::kGgmlTypeF32, {16},
              EncodeFloats(PseudoRandomFloats(16, 3), format::DTYPE_F32));
  ASSERT_TRUE(WriteFileBytes(Path("extra.gguf"), w.Build()).ok());
  Zcpack({"convert", Path("extra.gguf"), "-o", Path("extra.zcpack"), "--quiet"});
  const CliResult r = RunZcpack({"export", Path("extra.zcpack"), "-o", Path("out/x.gguf")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'blk.0.extra.weight'"));
  EXPECT_THAT(r.err, HasSubstr("no place in llama.cpp's llama architecture"));
  EXPECT_FALSE(Exists(Path("out/x.gguf")));
}

TEST_F(ExportCliTest, ADamagedTensorIsRefusedAndNoFileIsLeftBehind) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_Q4_0);
  Zcpack({"convert", gguf, "-o", Path("model.zcpack"), "--quiet"});
  auto c = format::Container::Open(Path("model.zcpack"));
  ASSERT_TRUE(c.ok());
  const format::TensorEntry last = (*c)->tensor((*c)->num_tensors() - 1);
  c->reset();
  std::vector<uint8_t> bytes = Bytes(Path("model.zcpack"));
  bytes[last.offset() + 5] ^= 0x40;
  ASSERT_TRUE(WriteFileBytes(Path("damaged.zcpack"), bytes).ok());
  ::mkdir(Path("out").c_str(), 0755);
  const CliResult r = RunZcpack({"export", Path("damaged.zcpack"), "-o", Path("out/x.gguf")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("tensor '", last.name(), "': checksum mismatch")));
  EXPECT_TRUE(Listing(Path("out")).empty());  // no output, no temporary file
}

TEST_F(ExportCliTest, UsageErrorsAndRefusals) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_Q4_0);
  Zcpack({"convert", gguf, "-o", Path("model.zcpack"), "--quiet"});
  CliResult r = RunZcpack({"export", Path("model.zcpack"), "-o", Path("x.gguf"), "--alignment", "48"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--alignment: alignment 48 is not a power of two"));
  r = RunZcpack({"export", Path("model.zcpack")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("-o OUT is required"));
  r = RunZcpack({"export", Path("model.zcpack"), "-o", Path("model.zcpack"), "--force"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is the input file"));
  Zcpack({"export", Path("model.zcpack"), "-o", Path("x.gguf"), "--quiet"});
  r = RunZcpack({"export", Path("model.zcpack"), "-o", Path("x.gguf")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  r = RunZcpack({"export", gguf, "-o", Path("y.gguf")});  // a GGUF is not a container
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is already a GGUF file; export reads a zcpack container"));
  EXPECT_THAT(r.err, HasSubstr("--to gguf"));
  r = RunZcpack({"export", Path("missing.zcpack"), "-o", Path("y.gguf")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(Exists(Path("y.gguf")));
}

TEST_F(ExportCliTest, ConvertToGgufLaysOutAGgufAgainKeepingEveryKeyAndBlock) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_Q4_K);
  Zcpack({"convert", gguf, "-o", Path("aligned.gguf"), "--to", "gguf", "--quiet"});
  const absl::StatusOr<std::vector<uint8_t>> in = ReadFileBytes(gguf);
  const absl::StatusOr<std::vector<uint8_t>> out = ReadFileBytes(Path("aligned.gguf"));
  ASSERT_TRUE(in.ok() && out.ok());
  const absl::StatusOr<converter::GgufFile> a = converter::ParseGguf(*in, "in");
  const absl::StatusOr<converter::GgufFile> b = converter::ParseGguf(*out, "out");
  ASSERT_TRUE(a.ok() && b.ok()) << b.status();
  EXPECT_EQ(b->alignment, 16384u);
  // Every source key is there, in the same order (general.alignment set).
  std::vector<std::string> keys_a, keys_b;
  for (const auto& kv : a->metadata) {
    if (kv.key != "general.alignment") keys_a.push_back(kv.key);
  }
  for (const auto& kv : b->metadata) {
    if (kv.key != "general.alignment") keys_b.push_back(kv.key);
  }
  EXPECT_EQ(keys_a, keys_b);
  // The tokenizer (every tokenizer.* key) is carried to the same JSON.
  auto blob_a = converter::GgufTokenizerBlob(*a, "m", 3);
  auto blob_b = converter::GgufTokenizerBlob(*b, "m", 3);
  ASSERT_TRUE(blob_a.ok() && blob_b.ok() && blob_a->has_value() && blob_b->has_value());
  EXPECT_EQ((*blob_a)->zstd_data(), (*blob_b)->zstd_data());
  ASSERT_EQ(a->tensors.size(), b->tensors.size());
  uint64_t previous = 0;
  for (const converter::GgufTensorInfo& t : b->tensors) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.offset % 16384, 0u);
    EXPECT_GT(t.offset, previous);
    previous = t.offset;
    const converter::GgufTensorInfo* s = a->FindTensor(t.name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->ggml_type, t.ggml_type);
    EXPECT_EQ(s->shape, t.shape);
    EXPECT_TRUE(std::equal(in->begin() + s->offset, in->begin() + s->offset + s->nbytes,
                           out->begin() + t.offset));
  }
  // Forward-pass order: the embedding first, the output head last.
  EXPECT_EQ(b->tensors.front().name, "token_embd.weight");
  EXPECT_EQ(b->tensors.back().name, "output.weight");
}

TEST_F(ExportCliTest, ConvertToGgufRefusesWhatWouldChangeATensorOrIsNotGguf) {
  const std::string gguf = WriteGguf("model.gguf", format::DTYPE_F16);
  CliResult r = RunZcpack({"convert", gguf, "-o", Path("x.gguf"), "--to", "gguf", "--quant", "q4_0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--quant does not apply with --to gguf"));
  Zcpack({"synth", "--shape", "tiny", "--out", Path("hf")});
  r = RunZcpack({"convert", Path("hf/model.safetensors"), "-o", Path("x.gguf"), "--to", "gguf"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not a GGUF file"));
  r = RunZcpack({"convert", gguf, "-o", Path("x.gguf"), "--to", "onnx"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(Exists(Path("x.gguf")));
}

}  // namespace
}  // namespace zcpack::testing
