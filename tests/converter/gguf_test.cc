// GGUF reader: a valid llama file end to end, every truncation length, byte
// flips, broken files with their status codes, and the llama metadata mapping.
#include "zcpack/converter/gguf.h"

#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/allocation_counter.h"
#include "tests/converter/gguf_test_writer.h"
#include "zcpack/converter/architecture.h"
#include "zstd.h"

namespace zcpack::converter {
namespace {

using absl::StatusCode;
using testing::AllocationCounter;
using testing::EncodeFloats;
using testing::GgufTestWriter;
using testing::PseudoRandomFloats;
using testing::TinyLlamaGguf;
using testing::TinyLlamaModelInfo;

// An array value's elements, in order.
std::vector<GgufElement> Elements(const GgufValue& value) {
  std::vector<GgufElement> out;
  if (const GgufArray* array = value.AsArray()) {
    array->ForEach([&](const GgufElement& e) { out.push_back(e); });
  }
  return out;
}

StatusCode ParseCode(const std::vector<uint8_t>& bytes, const GgufLimits& limits = {}) {
  return ParseGguf(bytes, "test.gguf", limits).status().code();
}

// A small file with one KV of each kind and one tensor of each float type.
std::vector<uint8_t> SmallFile() {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama")
      .AddUint32("u32", 7)
      .AddInt32("i32", -7)
      .AddUint64("u64", uint64_t{1} << 40)
      .AddFloat32("f32", 0.5f)
      .AddBool("flag", true)
      .AddStringArray("strings", {"a", "bc", ""})
      .AddFloat32Array("floats", {1.0f, -2.0f})
      .AddInt32Array("ints", {-1, 2, -3})
      .AddTensor("t.f32", kGgmlTypeF32, {2, 3}, EncodeFloats(PseudoRandomFloats(6, 1), format::DTYPE_F32))
      .AddTensor("t.f16", kGgmlTypeF16, {5}, EncodeFloats(PseudoRandomFloats(5, 2), format::DTYPE_F16))
      .AddTensor("t.bf16", kGgmlTypeBF16, {2, 2, 2},
                 EncodeFloats(PseudoRandomFloats(8, 3), format::DTYPE_BF16));
  return w.Build();
}

TEST(GgufTest, ParsesMetadataOfEveryKind) {
  const std::vector<uint8_t> bytes = SmallFile();
  auto gguf = ParseGguf(bytes, "test.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->version, 3u);
  EXPECT_EQ(gguf->alignment, 32u);
  EXPECT_EQ(gguf->metadata.size(), 9u);
  EXPECT_EQ(*gguf->FindMetadata("general.architecture")->AsString(), "llama");
  EXPECT_EQ(gguf->FindMetadata("u32")->AsUnsigned(), 7u);
  EXPECT_EQ(gguf->FindMetadata("u32")->type, GgufValueType::kUint32);
  EXPECT_FALSE(gguf->FindMetadata("i32")->AsUnsigned().has_value());
  EXPECT_EQ(gguf->FindMetadata("i32")->AsDouble(), -7.0);
  EXPECT_EQ(gguf->FindMetadata("u64")->AsUnsigned(), uint64_t{1} << 40);
  EXPECT_EQ(gguf->FindMetadata("f32")->AsDouble(), 0.5);
  EXPECT_EQ(std::get<bool>(gguf->FindMetadata("flag")->data), true);
  const GgufValue* strings = gguf->FindMetadata("strings");
  EXPECT_EQ(strings->type, GgufValueType::kArray);
  EXPECT_EQ(strings->element_type, GgufValueType::kString);
  EXPECT_EQ(Elements(*strings), (std::vector<GgufElement>{absl::string_view("a"),
                                                          absl::string_view("bc"),
                                                          absl::string_view("")}));
  EXPECT_EQ(Elements(*gguf->FindMetadata("ints")),
            (std::vector<GgufElement>{int64_t{-1}, int64_t{2}, int64_t{-3}}));
  EXPECT_EQ(Elements(*gguf->FindMetadata("floats")),
            (std::vector<GgufElement>{1.0, -2.0}));
  EXPECT_EQ(gguf->FindMetadata("floats")->ArraySize(), 2u);
  EXPECT_EQ(gguf->FindMetadata("missing"), nullptr);
}

TEST(GgufTest, ReversesShapesAndPlacesData) {
  const std::vector<uint8_t> bytes = SmallFile();
  auto gguf = ParseGguf(bytes, "test.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  ASSERT_EQ(gguf->tensors.size(), 3u);
  const GgufTensorInfo& f32 = gguf->tensors[0];
  EXPECT_EQ(f32.shape, (std::vector<uint64_t>{2, 3}));  // written as ne = {3, 2}
  EXPECT_EQ(f32.dtype, format::DTYPE_F32);
  EXPECT_EQ(f32.nbytes, 24u);
  EXPECT_EQ(f32.offset, gguf->data_offset);
  EXPECT_EQ(gguf->data_offset % 32, 0u);
  EXPECT_EQ(gguf->tensors[1].dtype, format::DTYPE_F16);
  EXPECT_EQ(gguf->tensors[1].offset, gguf->data_offset + 32);
  EXPECT_EQ(gguf->tensors[2].dtype, format::DTYPE_BF16);
  EXPECT_EQ(gguf->tensors[2].shape, (std::vector<uint64_t>{2, 2, 2}));
  const std::vector<uint8_t> expected = EncodeFloats(PseudoRandomFloats(8, 3), format::DTYPE_BF16);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                         bytes.begin() + static_cast<ptrdiff_t>(gguf->tensors[2].offset)));
}

TEST(GgufTest, SizesBlockTypesAndMapsThoseAContainerHolds) {
  const auto bytes = GgufTestWriter()
                         .AddTensor("q4_0", kGgmlTypeQ4_0, {2, 64}, std::vector<uint8_t>(4 * 18))
                         .AddTensor("q8_0", kGgmlTypeQ8_0, {1, 32}, std::vector<uint8_t>(34))
                         .AddTensor("q4_k", kGgmlTypeQ4_K, {1, 256}, std::vector<uint8_t>(144))
                         .AddTensor("q6_k", kGgmlTypeQ6_K, {2, 256}, std::vector<uint8_t>(420))
                         .AddTensor("q3_k", 11, {2, 256}, std::vector<uint8_t>(220))
                         .AddTensor("q5_k", kGgmlTypeQ5_K, {1, 256}, std::vector<uint8_t>(176))
                         .Build();
  auto gguf = ParseGguf(bytes, "test.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  ASSERT_EQ(gguf->tensors.size(), 6u);
  EXPECT_EQ(gguf->tensors[0].dtype, format::DTYPE_Q4_0);
  EXPECT_EQ(gguf->tensors[0].nbytes, 72u);
  EXPECT_EQ(gguf->tensors[1].dtype, format::DTYPE_Q8_0);
  EXPECT_EQ(gguf->tensors[2].dtype, format::DTYPE_Q4_K);
  EXPECT_EQ(gguf->tensors[2].nbytes, 144u);
  EXPECT_EQ(gguf->tensors[3].dtype, format::DTYPE_Q6_K);
  EXPECT_EQ(gguf->tensors[3].ggml_type, kGgmlTypeQ6_K);
  EXPECT_EQ(gguf->tensors[3].nbytes, 420u);
  // No container dtype: the caller names it (OpenSourceModel() refuses it).
  EXPECT_EQ(gguf->tensors[4].dtype, format::DTYPE_UNSPECIFIED);
  EXPECT_EQ(gguf->tensors[4].ggml_type, 11u);
  EXPECT_EQ(gguf->tensors[4].nbytes, 220u);
  EXPECT_EQ(gguf->tensors[5].dtype, format::DTYPE_Q5_K);
  EXPECT_EQ(gguf->tensors[5].nbytes, 176u);
}

TEST(GgufTest, MapsQ4_1Q5_0AndQ5_1ToTheirDTypes) {
  const auto bytes = GgufTestWriter()
                         .AddTensor("q4_1", kGgmlTypeQ4_1, {2, 64}, std::vector<uint8_t>(4 * 20))
                         .AddTensor("q5_0", kGgmlTypeQ5_0, {1, 96}, std::vector<uint8_t>(3 * 22))
                         .AddTensor("q5_1", kGgmlTypeQ5_1, {3, 32}, std::vector<uint8_t>(3 * 24))
                         .Build();
  auto gguf = ParseGguf(bytes, "test.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  ASSERT_EQ(gguf->tensors.size(), 3u);
  EXPECT_EQ(kGgmlTypeQ4_1, 3u);
  EXPECT_EQ(kGgmlTypeQ5_0, 6u);
  EXPECT_EQ(kGgmlTypeQ5_1, 7u);
  EXPECT_EQ(gguf->tensors[0].dtype, format::DTYPE_Q4_1);
  EXPECT_EQ(gguf->tensors[0].nbytes, 80u);
  EXPECT_EQ(gguf->tensors[1].dtype, format::DTYPE_Q5_0);
  EXPECT_EQ(gguf->tensors[1].nbytes, 66u);
  EXPECT_EQ(gguf->tensors[2].dtype, format::DTYPE_Q5_1);
  EXPECT_EQ(gguf->tensors[2].nbytes, 72u);
}

TEST(GgufTest, AcceptsVersion2AndCustomAlignment) {
  GgufTestWriter w;
  w.SetVersion(2).SetAlignment(64).AddUint32("general.alignment", 64);
  w.AddTensor("a", kGgmlTypeF32, {3}, std::vector<uint8_t>(12));
  w.AddTensor("b", kGgmlTypeF32, {3}, std::vector<uint8_t>(12));
  auto gguf = ParseGguf(w.Build(), "v2.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->version, 2u);
  EXPECT_EQ(gguf->alignment, 64u);
  EXPECT_EQ(gguf->data_offset % 64, 0u);
  EXPECT_EQ(gguf->tensors[1].offset - gguf->tensors[0].offset, 64u);
}

TEST(GgufTest, EveryTruncationIsDataLoss) {
  const std::vector<uint8_t> bytes = SmallFile();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_EQ(ParseCode(prefix), StatusCode::kDataLoss) << "length " << n;
  }
}

TEST(GgufTest, ByteFlipsNeverCrash) {
  const std::vector<uint8_t> bytes = SmallFile();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x10, 0x80, 0xff}) {
      std::vector<uint8_t> damaged = bytes;
      damaged[i] ^= mask;
      (void)ParseGguf(damaged, "flipped.gguf");
    }
  }
}

struct BrokenCase {
  std::string name;
  std::vector<uint8_t> bytes;
  StatusCode code;
  std::string message_part;
};
void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

std::vector<uint8_t> Le64(uint64_t v) {
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// Header only: magic, version, tensor count, KV count, then `rest`.
std::vector<uint8_t> RawFile(uint32_t version, uint64_t tensors, uint64_t kvs,
                             const std::vector<uint8_t>& rest) {
  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(version >> (8 * i)));
  for (uint8_t b : Le64(tensors)) out.push_back(b);
  for (uint8_t b : Le64(kvs)) out.push_back(b);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::vector<BrokenCase> BrokenCases() {
  std::vector<BrokenCase> cases;
  {
    std::vector<uint8_t> b = SmallFile();
    b[0] = 'X';
    cases.push_back({"BadMagic", b, StatusCode::kInvalidArgument, "not a GGUF file"});
  }
  cases.push_back({"ShortNotGguf", {'a', 'b'}, StatusCode::kInvalidArgument, "bad magic"});
  cases.push_back({"Version1", GgufTestWriter().SetVersion(1).Build(), StatusCode::kUnimplemented,
                   "version 1"});
  cases.push_back({"Version4", GgufTestWriter().SetVersion(4).Build(), StatusCode::kUnimplemented,
                   "version 4"});
  cases.push_back({"BigEndian", GgufTestWriter().SetVersion(0x03000000).Build(),
                   StatusCode::kUnimplemented, "big-endian"});
  cases.push_back({"KvCountAbsurd", RawFile(3, 0, uint64_t{1} << 60, {}),
                   StatusCode::kResourceExhausted, "metadata entries"});
  cases.push_back({"KvCountBeyondFile", RawFile(3, 0, 1000, {}), StatusCode::kDataLoss,
                   "cannot fit"});
  cases.push_back({"TensorCountAbsurd", RawFile(3, uint64_t{1} << 62, 0, {}),
                   StatusCode::kResourceExhausted, "tensors"});
  {
    // A key whose length claims far more bytes than the file holds.
    std::vector<uint8_t> rest = Le64(uint64_t{1} << 12);
    rest.resize(rest.size() + 16, 'k');
    cases.push_back({"StringLengthBeyondFile", RawFile(3, 0, 1, rest), StatusCode::kDataLoss,
                     "truncated"});
  }
  {
    std::vector<uint8_t> rest = Le64(uint64_t{1} << 40);
    rest.resize(rest.size() + 16, 'k');
    cases.push_back({"StringLengthAbsurd", RawFile(3, 0, 1, rest), StatusCode::kResourceExhausted,
                     "limit"});
  }
  cases.push_back({"UnknownValueType",
                   GgufTestWriter().AddRaw("k", 99, {0, 0, 0, 0}).Build(), StatusCode::kDataLoss,
                   "not a GGUF value type"});
  cases.push_back({"BoolNotZeroOrOne", GgufTestWriter().AddRaw("k", 7, {2}).Build(),
                   StatusCode::kDataLoss, "expected 0 or 1"});
  {
    std::vector<uint8_t> array = {9, 0, 0, 0};  // element type: array
    for (uint8_t b : Le64(0)) array.push_back(b);
    cases.push_back({"NestedArray", GgufTestWriter().AddRaw("k", 9, array).Build(),
                     StatusCode::kUnimplemented, "nested arrays"});
  }
  {
    std::vector<uint8_t> array = {4, 0, 0, 0};  // uint32 elements
    for (uint8_t b : Le64(1000)) array.push_back(b);
    cases.push_back({"ArrayBeyondFile", GgufTestWriter().AddRaw("k", 9, array).Build(),
                     StatusCode::kDataLoss, "'k'"});
  }
  cases.push_back({"DuplicateKey", GgufTestWriter().AddUint32("k", 1).AddUint32("k", 2).Build(),
                   StatusCode::kDataLoss, "'k' appears twice"});
  cases.push_back({"TensorTypeOfUnknownBlockSize",
                   GgufTestWriter().AddTensor("blk.0.attn_q.weight", 16, {256}, std::vector<uint8_t>(66)).Build(),
                   StatusCode::kUnimplemented,
                   "'blk.0.attn_q.weight' has ggml type unknown (16), whose block size"});
  cases.push_back({"RowNotWholeBlocks",
                   GgufTestWriter().AddTensor("blk.0.attn_q.weight", 12, {2, 128}, std::vector<uint8_t>(144)).Build(),
                   StatusCode::kDataLoss, "row length 128 is not a multiple of the Q4_K block size 256"});
  cases.push_back({"MisalignedDataOffset",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {2}, std::vector<uint8_t>(8))
                       .AddTensor("b", kGgmlTypeF32, {2}, std::vector<uint8_t>(8), 8)
                       .Build(),
                   StatusCode::kDataLoss, "'b' offset 8 is not a multiple"});
  cases.push_back({"OffsetBeyondFile",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {2}, std::vector<uint8_t>(8), 1 << 20)
                       .Build(),
                   StatusCode::kDataLoss, "'a' data"});
  cases.push_back({"OverlappingTensors",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {16}, std::vector<uint8_t>(64))
                       .AddTensor("b", kGgmlTypeF32, {2}, std::vector<uint8_t>(8), 32)
                       .Build(),
                   StatusCode::kDataLoss, "overlap"});
  cases.push_back({"DuplicateTensorName",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {2}, std::vector<uint8_t>(8))
                       .AddTensor("a", kGgmlTypeF32, {2}, std::vector<uint8_t>(8))
                       .Build(),
                   StatusCode::kDataLoss, "appears twice"});
  cases.push_back({"TooManyDims",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {1, 1, 1, 1, 2}, std::vector<uint8_t>(8))
                       .Build(),
                   StatusCode::kResourceExhausted, "5 dimensions"});
  cases.push_back({"DimensionOverflow",
                   GgufTestWriter()
                       .AddTensor("a", kGgmlTypeF32, {uint64_t{1} << 40, uint64_t{1} << 40}, {})
                       .Build(),
                   StatusCode::kDataLoss, "overflows"});
  cases.push_back({"AlignmentNotPowerOfTwo",
                   GgufTestWriter()
                       .AddUint32("general.alignment", 48)
                       .AddTensor("a", kGgmlTypeF32, {2}, std::vector<uint8_t>(8))
                       .Build(),
                   StatusCode::kDataLoss, "power of two"});
  cases.push_back({"AlignmentWrongType",
                   GgufTestWriter()
                       .AddString("general.alignment", "32")
                       .Build(),
                   StatusCode::kDataLoss, "general.alignment"});
  return cases;
}

class GgufBrokenTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(GgufBrokenTest, RejectedWithItsCode) {
  const BrokenCase& c = GetParam();
  auto gguf = ParseGguf(c.bytes, "test.gguf");
  ASSERT_FALSE(gguf.ok());
  EXPECT_EQ(gguf.status().code(), c.code) << gguf.status();
  EXPECT_NE(gguf.status().message().find(c.message_part), absl::string_view::npos)
      << gguf.status();
  EXPECT_NE(gguf.status().message().find("test.gguf"), absl::string_view::npos) << gguf.status();
}

INSTANTIATE_TEST_SUITE_P(Cases, GgufBrokenTest, ::testing::ValuesIn(BrokenCases()),
                         [](const auto& p) { return p.param.name; });

TEST(GgufTest, LimitsAreEnforced) {
  const std::vector<uint8_t> bytes = SmallFile();
  GgufLimits kvs;
  kvs.max_kv_count = 3;
  EXPECT_EQ(ParseCode(bytes, kvs), StatusCode::kResourceExhausted);
  GgufLimits tensors;
  tensors.max_tensors = 2;
  EXPECT_EQ(ParseCode(bytes, tensors), StatusCode::kResourceExhausted);
  GgufLimits arrays;
  arrays.max_array_elements = 2;
  EXPECT_EQ(ParseCode(bytes, arrays), StatusCode::kResourceExhausted);
  GgufLimits strings;
  strings.max_string_bytes = 2;
  EXPECT_EQ(ParseCode(bytes, strings), StatusCode::kResourceExhausted);
  GgufLimits dims;
  dims.max_dims = 2;
  EXPECT_EQ(ParseCode(bytes, dims), StatusCode::kResourceExhausted);
}

TEST(GgufModelInfoTest, MapsLlamaMetadata) {
  format::ModelInfo in = TinyLlamaModelInfo();
  const std::vector<uint8_t> bytes = TinyLlamaGguf(in, format::DTYPE_F16);
  auto gguf = ParseGguf(bytes, "tiny.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = GgufModelInfo(*gguf, "tiny.gguf");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->architecture(), "llama");
  EXPECT_EQ(model->hidden_size(), in.hidden_size());
  EXPECT_EQ(model->num_layers(), in.num_layers());
  EXPECT_EQ(model->num_heads(), in.num_heads());
  EXPECT_EQ(model->num_kv_heads(), in.num_kv_heads());
  EXPECT_EQ(model->head_dim(), in.head_dim());
  EXPECT_EQ(model->intermediate_size(), in.intermediate_size());
  EXPECT_EQ(model->vocab_size(), in.vocab_size());
  EXPECT_EQ(model->max_position_embeddings(), in.max_position_embeddings());
  EXPECT_FLOAT_EQ(static_cast<float>(model->rms_norm_eps()), static_cast<float>(in.rms_norm_eps()));
  EXPECT_DOUBLE_EQ(model->rope_theta(), in.rope_theta());
  EXPECT_EQ(model->rope_layout(), format::ROPE_LAYOUT_INTERLEAVED);
  EXPECT_FALSE(model->tied_embeddings());
  EXPECT_FALSE(model->attention_bias());
  EXPECT_EQ(model->bos_token_id(), 1);
  EXPECT_EQ(model->eos_token_id(), 2);
}

TEST(GgufModelInfoTest, NoOutputTensorMeansTiedEmbeddings) {
  format::ModelInfo in = TinyLlamaModelInfo();
  in.set_tied_embeddings(true);
  auto gguf = ParseGguf(TinyLlamaGguf(in, format::DTYPE_F32), "tied.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = GgufModelInfo(*gguf, "tied.gguf");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(model->tied_embeddings());
}

TEST(GgufModelInfoTest, RejectsOtherArchitectures) {
  GgufTestWriter w;
  w.AddString("general.architecture", "qwen2");
  auto gguf = ParseGguf(w.Build(), "q.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = GgufModelInfo(*gguf, "q.gguf");
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("qwen2"), absl::string_view::npos);
}

TEST(GgufModelInfoTest, MissingRequiredKeyIsDataLoss) {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama").AddUint32("llama.embedding_length", 16);
  auto gguf = ParseGguf(w.Build(), "partial.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = GgufModelInfo(*gguf, "partial.gguf");
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(model.status().message().find("llama.block_count"), absl::string_view::npos);
}

TEST(GgufModelInfoTest, MistypedKeyIsDataLoss) {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama").AddString("llama.embedding_length", "16");
  auto gguf = ParseGguf(w.Build(), "typed.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = GgufModelInfo(*gguf, "typed.gguf");
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(model.status().message().find("has type string"), absl::string_view::npos);
}

TEST(GgufTokenizerBlobTest, CarriesTokenizerKeysAsJson) {
  const std::vector<uint8_t> bytes = TinyLlamaGguf(TinyLlamaModelInfo(), format::DTYPE_F32);
  auto gguf = ParseGguf(bytes, "tiny.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto blob = GgufTokenizerBlob(*gguf, "tiny.gguf", 3);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_TRUE(blob->has_value());
  EXPECT_EQ((*blob)->kind(), "gguf-metadata");
  EXPECT_EQ((*blob)->file_name(), "tiny.gguf");
  std::string raw((*blob)->raw_size(), '\0');
  const size_t n = ZSTD_decompress(raw.data(), raw.size(), (*blob)->zstd_data().data(),
                                   (*blob)->zstd_data().size());
  ASSERT_EQ(n, raw.size());
  const nlohmann::json json = nlohmann::json::parse(raw);
  EXPECT_EQ(json["tokenizer.ggml.model"], "llama");
  EXPECT_EQ(json["tokenizer.ggml.tokens"].size(), 24u);
  EXPECT_EQ(json["tokenizer.ggml.tokens"][1], "<s>");
  EXPECT_EQ(json["tokenizer.ggml.bos_token_id"], 1);
  EXPECT_FALSE(json.contains("general.architecture"));
}

TEST(GgufTokenizerBlobTest, NoTokenizerKeysGivesNoBlob) {
  auto gguf = ParseGguf(GgufTestWriter().AddUint32("x", 1).Build(), "bare.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto blob = GgufTokenizerBlob(*gguf, "bare.gguf", 3);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_FALSE(blob->has_value());
}

TEST(GgufTokenizerBlobTest, InvalidUtf8DoesNotFail) {
  auto gguf = ParseGguf(GgufTestWriter().AddString("tokenizer.x", "\xff\xfe").Build(), "bad.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_TRUE(GgufTokenizerBlob(*gguf, "bad.gguf", 3).ok());
}

// A string array whose declared count the file cannot hold is refused from
// the count and the bytes left, before anything is allocated for it, even
// with the element limit lifted.
TEST(GgufTest, HugeDeclaredStringArrayIsRefusedBeforeAllocating) {
  GgufLimits unlimited;
  unlimited.max_array_elements = UINT64_MAX;
  for (const uint64_t count : {uint64_t{1} << 24, uint64_t{1} << 40, UINT64_MAX}) {
    std::vector<uint8_t> value = {8, 0, 0, 0};  // element type: string
    for (int i = 0; i < 8; ++i) value.push_back(static_cast<uint8_t>(count >> (8 * i)));
    value.resize(value.size() + 4096, 0);  // 512 empty strings' worth of bytes
    const std::vector<uint8_t> bytes =
        GgufTestWriter().AddRaw("tokenizer.ggml.merges", 9, value).Build();
    AllocationCounter counter;
    auto gguf = ParseGguf(bytes, "huge.gguf", unlimited);
    EXPECT_LT(counter.peak_bytes(), 64 << 10) << "count " << count;
    ASSERT_EQ(gguf.status().code(), StatusCode::kDataLoss) << gguf.status();
    EXPECT_NE(gguf.status().message().find("huge.gguf: array of"), absl::string_view::npos);
    EXPECT_NE(gguf.status().message().find("runs past the end of the file (metadata key "
                                           "'tokenizer.ggml.merges')"),
              absl::string_view::npos)
        << gguf.status();
  }
  std::vector<uint8_t> value = {8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};  // 2^40 strings
  const std::vector<uint8_t> bytes = GgufTestWriter().AddRaw("k", 9, value).Build();
  EXPECT_EQ(ParseCode(bytes), StatusCode::kResourceExhausted);
}

// A 20 MB string array is checked and kept in place: parsing allocates
// nothing in proportion to it (a vector of std::string cost several times
// its size, and the JSON built from it many times more).
TEST(GgufTest, LargeStringArrayIsReadInPlace) {
  const std::vector<std::string> merges = testing::MergeLikeStrings(uint64_t{20} << 20);
  const std::vector<uint8_t> bytes =
      GgufTestWriter().AddStringArray("tokenizer.ggml.merges", merges).Build();
  AllocationCounter counter;
  auto gguf = ParseGguf(bytes, "big.gguf");
  const int64_t peak = counter.peak_bytes();
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_LT(peak, 64 << 10) << "for an array of " << bytes.size() << " bytes";
  const GgufValue* value = gguf->FindMetadata("tokenizer.ggml.merges");
  ASSERT_NE(value, nullptr);
  ASSERT_EQ(value->ArraySize(), merges.size());
  size_t i = 0;
  bool same = true;
  value->AsArray()->ForEach([&](const GgufElement& e) {
    same = same && std::get<absl::string_view>(e) == merges[i++];
  });
  EXPECT_TRUE(same);
  EXPECT_EQ(i, merges.size());
}

// The tokenizer blob is streamed from the array views into the compressor:
// what it holds at once is about the compressed blob, less than the array.
TEST(GgufTokenizerBlobTest, LargeStringArrayIsStreamedNotMaterialised) {
  const std::vector<std::string> merges = testing::MergeLikeStrings(uint64_t{20} << 20);
  const std::vector<uint8_t> bytes =
      GgufTestWriter().AddStringArray("tokenizer.ggml.merges", merges).Build();
  auto gguf = ParseGguf(bytes, "big.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  int64_t peak = 0;
  absl::StatusOr<std::optional<format::TokenizerBlob>> blob;
  {
    AllocationCounter counter;
    blob = GgufTokenizerBlob(*gguf, "big.gguf", 3);
    peak = counter.peak_bytes();
  }
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_TRUE(blob->has_value());
  const int64_t compressed = static_cast<int64_t>((*blob)->zstd_data().size());
  EXPECT_LT(peak, static_cast<int64_t>(bytes.size()))
      << "compressed blob " << compressed << " bytes";
  EXPECT_LT(peak, 3 * compressed + (1 << 20));
  std::string raw((*blob)->raw_size(), '\0');
  ASSERT_EQ(ZSTD_decompress(raw.data(), raw.size(), (*blob)->zstd_data().data(),
                            (*blob)->zstd_data().size()),
            raw.size());
  const nlohmann::json json = nlohmann::json::parse(raw);
  ASSERT_EQ(json["tokenizer.ggml.merges"].size(), merges.size());
  EXPECT_EQ(json["tokenizer.ggml.merges"][0], merges[0]);
  EXPECT_EQ(json["tokenizer.ggml.merges"][merges.size() - 1], merges.back());
}

// The JSON writer escapes what JSON requires, writes float32 values in their
// shortest float32 form, replaces bytes that are not UTF-8, and writes every
// array type.
TEST(GgufTokenizerBlobTest, WritesEscapesNumbersAndReplacesBadUtf8) {
  const std::vector<uint8_t> bytes =
      GgufTestWriter()
          .AddString("tokenizer.text", std::string("q\"b\\s\n\t\x01 \xc3\xa9", 11))
          .AddString("tokenizer.bad", "a\xff")
          .AddStringArray("tokenizer.list", {"x", "\xfe", ""})
          .AddFloat32Array("tokenizer.scores", {0.1f, -2.5f, 1e30f})
          .AddInt32Array("tokenizer.types", {-1, 0, 7})
          .AddFloat32("tokenizer.f", 0.25f)
          .AddBool("tokenizer.flag", false)
          .AddUint64("tokenizer.big", uint64_t{1} << 63)
          .Build();
  auto gguf = ParseGguf(bytes, "t.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto blob = GgufTokenizerBlob(*gguf, "t.gguf", 3);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::string raw((*blob)->raw_size(), '\0');
  ASSERT_EQ(ZSTD_decompress(raw.data(), raw.size(), (*blob)->zstd_data().data(),
                            (*blob)->zstd_data().size()),
            raw.size());
  EXPECT_EQ(raw,
            "{\"tokenizer.bad\":\"a\xef\xbf\xbd\",\"tokenizer.big\":9223372036854775808,"
            "\"tokenizer.f\":0.25,\"tokenizer.flag\":false,"
            "\"tokenizer.list\":[\"x\",\"\xef\xbf\xbd\",\"\"],"
            "\"tokenizer.scores\":[0.1,-2.5,1e+30],"
            "\"tokenizer.text\":\"q\\\"b\\\\s\\n\\t\\u0001 \xc3\xa9\","
            "\"tokenizer.types\":[-1,0,7]}");
  EXPECT_TRUE(nlohmann::json::accept(raw));
}

}  // namespace
}  // namespace zcpack::converter
