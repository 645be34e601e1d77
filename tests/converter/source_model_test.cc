// OpenSourceModel(): Hugging Face directories (single and sharded), a bare
// .safetensors file, GGUF files, and the ways a directory can be incomplete.
#include "zcpack/converter/source_model.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/architecture.h"

namespace zcpack::converter {
namespace {

using absl::StatusCode;
using testing::ScopedTempDir;
using testing::TinyLlamaModelInfo;
using testing::WriteTinyHfModel;

const SourceTensor* Find(const SourceModel& model, absl::string_view name) {
  for (const SourceTensor& t : model.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

class HfDirectoryTest : public ::testing::TestWithParam<format::DType> {};

TEST_P(HfDirectoryTest, OpensSingleFileModel) {
  ScopedTempDir dir;
  const format::ModelInfo info = TinyLlamaModelInfo();
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), info, GetParam()).ok());
  auto model = OpenSourceModel(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  const SourceModel& m = **model;
  EXPECT_EQ(m.model.hidden_size(), info.hidden_size());
  EXPECT_EQ(m.model.rope_layout(), format::ROPE_LAYOUT_HALF_SPLIT);
  EXPECT_EQ(m.tensors.size(), ExpectedTensors(info)->size());
  EXPECT_TRUE(CheckTensorsAgainstModel(m.model, m.tensors).ok())
      << CheckTensorsAgainstModel(m.model, m.tensors);
  const SourceTensor* q = Find(m, "model.layers.1.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, GetParam());
  EXPECT_EQ(q->role, format::ROLE_ATTN_Q);
  EXPECT_EQ(q->layer, 1);
  EXPECT_EQ(q->data.size(), 16 * 16 * (GetParam() == format::DTYPE_F32 ? 4u : 2u));
  EXPECT_EQ(q->file, dir.File("model.safetensors"));
  ASSERT_EQ(m.tokenizers.size(), 1u);
  EXPECT_EQ(m.tokenizers[0].kind(), "tokenizer.json");
  EXPECT_GT(m.tokenizers[0].raw_size(), 0u);
  ASSERT_EQ(m.sources.size(), 3u);
  EXPECT_EQ(m.sources[0].name(), "config.json");
  EXPECT_EQ(m.sources[1].name(), "model.safetensors");
  EXPECT_EQ(m.sources[2].name(), "tokenizer.json");
}

INSTANTIATE_TEST_SUITE_P(DTypes, HfDirectoryTest,
                         ::testing::Values(format::DTYPE_F32, format::DTYPE_F16,
                                           format::DTYPE_BF16),
                         [](const auto& p) {
                           return testing::SafetensorsDTypeName(p.param);
                         });

TEST(SourceModelTest, OpensShardedModelAndKeepsDataAlive) {
  ScopedTempDir dir;
  format::ModelInfo info = TinyLlamaModelInfo();
  info.set_architecture("qwen2");
  info.set_attention_bias(true);
  info.set_tied_embeddings(true);
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), info, format::DTYPE_BF16, 3, 7).ok());
  std::unique_ptr<SourceModel> model;
  {
    auto opened = OpenSourceModel(dir.path());
    ASSERT_TRUE(opened.ok()) << opened.status();
    model = *std::move(opened);
  }
  EXPECT_TRUE(model->model.attention_bias());
  EXPECT_TRUE(model->model.tied_embeddings());
  EXPECT_TRUE(CheckTensorsAgainstModel(model->model, model->tensors).ok());
  EXPECT_EQ(model->mappings.size(), 1 + 1 + 3 + 1u);  // config, index, shards, tokenizer
  const SourceTensor* norm = Find(*model, "model.norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_NE(norm->file.find("model-00003-of-00003.safetensors"), std::string::npos);
  // The views point into mappings the model owns.
  uint64_t sum = 0;
  for (const SourceTensor& t : model->tensors) {
    for (uint8_t b : t.data) sum += b;
  }
  EXPECT_GT(sum, 0u);
}

TEST(SourceModelTest, MissingShardIsNotFoundNamingShardAndTensor) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F16, 2).ok());
  std::filesystem::remove(dir.File("model-00002-of-00002.safetensors"));
  auto model = OpenSourceModel(dir.path());
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
  EXPECT_NE(model.status().message().find("model-00002-of-00002.safetensors"),
            absl::string_view::npos)
      << model.status();
  EXPECT_NE(model.status().message().find("maps tensor '"), absl::string_view::npos)
      << model.status();
}

TEST(SourceModelTest, TensorListedButAbsentFromShardIsDataLoss) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F16, 2).ok());
  // Rewrite the second shard without its first tensor.
  auto bytes = testing::ReadFileBytes(dir.File("model-00002-of-00002.safetensors"));
  ASSERT_TRUE(bytes.ok());
  auto header = ParseSafetensors(*bytes, "shard");
  ASSERT_TRUE(header.ok());
  testing::SafetensorsTestWriter w;
  for (size_t i = 1; i < header->tensors.size(); ++i) {
    const SafetensorsEntry& e = header->tensors[i];
    w.AddTensor(e.name, e.dtype_name, e.shape,
                std::vector<uint8_t>(bytes->begin() + static_cast<ptrdiff_t>(e.offset),
                                     bytes->begin() + static_cast<ptrdiff_t>(e.offset + e.nbytes)));
  }
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("model-00002-of-00002.safetensors"), w.Build()).ok());
  auto model = OpenSourceModel(dir.path());
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(model.status().message().find(header->tensors[0].name), absl::string_view::npos)
      << model.status();
}

TEST(SourceModelTest, ShardTensorMissingFromIndexIsDataLoss) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F16, 2).ok());
  const std::string index = R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})";
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("model.safetensors.index.json"),
                                      std::vector<uint8_t>(index.begin(), index.end()))
                  .ok());
  auto model = OpenSourceModel(dir.path());
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss) << model.status();
}

TEST(SourceModelTest, OpensBareSafetensorsFileWithConfigBeside) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F32).ok());
  auto model = OpenSourceModel(dir.File("model.safetensors"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->model.architecture(), "llama");
  EXPECT_EQ((*model)->tokenizers.size(), 1u);
}

TEST(SourceModelTest, MissingConfigIsNotFound) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F32).ok());
  std::filesystem::remove(dir.File("config.json"));
  EXPECT_EQ(OpenSourceModel(dir.path()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenSourceModel(dir.File("model.safetensors")).status().code(), StatusCode::kNotFound);
}

TEST(SourceModelTest, EmptyDirectoryAndMissingPathAreNotFound) {
  ScopedTempDir dir;
  EXPECT_EQ(OpenSourceModel(dir.path()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenSourceModel(dir.File("nope.gguf")).status().code(), StatusCode::kNotFound);
}

TEST(SourceModelTest, UnsupportedSafetensorsDTypeIsUnimplementedNamingTheTensor) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteTinyHfModel(dir.path(), TinyLlamaModelInfo(), format::DTYPE_F32).ok());
  testing::SafetensorsTestWriter w;
  w.AddTensor("model.embed_tokens.weight", "I32", {2}, std::vector<uint8_t>(8));
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("model.safetensors"), w.Build()).ok());
  auto model = OpenSourceModel(dir.path());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("'model.embed_tokens.weight' has dtype I32"),
            absl::string_view::npos)
      << model.status();
}

TEST(SourceModelTest, OpensGgufFile) {
  ScopedTempDir dir;
  const format::ModelInfo info = TinyLlamaModelInfo();
  const std::string path = dir.File("tiny.gguf");
  ASSERT_TRUE(testing::WriteFileBytes(path, testing::TinyLlamaGguf(info, format::DTYPE_F16)).ok());
  auto model = OpenSourceModel(path);
  ASSERT_TRUE(model.ok()) << model.status();
  const SourceModel& m = **model;
  EXPECT_EQ(m.model.rope_layout(), format::ROPE_LAYOUT_INTERLEAVED);
  EXPECT_TRUE(CheckTensorsAgainstModel(m.model, m.tensors).ok())
      << CheckTensorsAgainstModel(m.model, m.tensors);
  const SourceTensor* up = Find(m, "blk.1.ffn_up.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->role, format::ROLE_FFN_UP);
  EXPECT_EQ(up->layer, 1);
  EXPECT_EQ(up->shape, (std::vector<uint64_t>{32, 16}));
  EXPECT_EQ(up->dtype, format::DTYPE_F16);
  EXPECT_EQ(Find(m, "blk.0.attn_norm.weight")->dtype, format::DTYPE_F32);
  ASSERT_EQ(m.tokenizers.size(), 1u);
  EXPECT_EQ(m.tokenizers[0].kind(), "gguf-metadata");
  EXPECT_EQ(m.tokenizers[0].file_name(), "tiny.gguf");
  ASSERT_EQ(m.sources.size(), 1u);
  EXPECT_EQ(m.sources[0].name(), "tiny.gguf");
  for (size_t i = 1; i < m.tensors.size(); ++i) {
    EXPECT_LT(m.tensors[i - 1].data.data(), m.tensors[i].data.data());
  }
}

TEST(SourceModelTest, NeitherFormatIsInvalidArgument) {
  ScopedTempDir dir;
  const std::string path = dir.File("notes.txt");
  const std::string text = "this is not a model, just some text that is long enough";
  ASSERT_TRUE(testing::WriteFileBytes(path, std::vector<uint8_t>(text.begin(), text.end())).ok());
  // The first 8 bytes read as a huge header length.
  EXPECT_NE(OpenSourceModel(path).status().code(), StatusCode::kOk);
}

TEST(MappedFileTest, MapsAndMoves) {
  ScopedTempDir dir;
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("f"), bytes).ok());
  auto file = MappedFile::Open(dir.File("f"));
  ASSERT_TRUE(file.ok()) << file.status();
  const std::span<const uint8_t> view = file->bytes();
  MappedFile moved = *std::move(file);
  EXPECT_EQ(moved.bytes().data(), view.data());
  EXPECT_EQ(std::vector<uint8_t>(view.begin(), view.end()), bytes);
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("empty"), {}).ok());
  auto empty = MappedFile::Open(dir.File("empty"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->bytes().empty());
  EXPECT_EQ(MappedFile::Open(dir.File("absent")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::Open(dir.path()).status().code(), StatusCode::kFailedPrecondition);
}

// ReadInto() gives a range's bytes from the file; a file cut short since it
// was mapped is Aborted with the mapping's message.
TEST(MappedFileTest, ReadIntoReadsTheRangeAndReportsATruncatedFile) {
  ScopedTempDir dir;
  std::vector<uint8_t> bytes(10000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 13);
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("f"), bytes).ok());
  auto file = MappedFile::Open(dir.File("f"));
  ASSERT_TRUE(file.ok()) << file.status();
  const std::span<const uint8_t> range = file->bytes().subspan(4097, 3000);
  EXPECT_TRUE(file->Contains(range));
  EXPECT_FALSE(file->Contains(std::span<const uint8_t>(bytes).subspan(0, 10)));
  std::vector<uint8_t> out(range.size());
  ASSERT_TRUE(file->ReadInto(range, out.data()).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes.begin() + 4097));
  MappedFile moved = *std::move(file);  // the descriptor moves with it
  ASSERT_TRUE(moved.ReadInto(range, out.data()).ok());
  ASSERT_EQ(::truncate(dir.File("f").c_str(), 5000), 0);
  const absl::Status cut = moved.ReadInto(range, out.data());
  EXPECT_EQ(cut.code(), StatusCode::kAborted);
  EXPECT_EQ(cut.message(), dir.File("f") + ": truncated or unreadable while mapped");
}

}  // namespace
}  // namespace zcpack::converter
