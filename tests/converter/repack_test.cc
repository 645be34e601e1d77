// Converting an already-quantized GGUF: its Q4_0, Q8_0 and Q4_K tensors keep
// their exact block bytes (only reordered into row groups), nothing is
// requantized unless asked, and types the runtime cannot run are refused in
// one line.
#include <fstream>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"

namespace zcpack::converter {
namespace {

using ::testing::HasSubstr;

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class RepackTest : public ::testing::TestWithParam<format::DType> {
 protected:
  // Writes a quantized llama GGUF in GetParam() and returns its path.
  std::string WriteSource(const std::map<std::string, uint32_t>& ggml_types = {}) {
    gguf_bytes_ = testing::TinyLlamaGguf(testing::QuantizedLlamaModelInfo(), GetParam(), 7, {},
                                         ggml_types);
    const std::string path = dir_.File("model.gguf");
    WriteBytes(path, gguf_bytes_);
    return path;
  }

  // Each container tensor, put back in ggml's order, equals the GGUF's bytes.
  void ExpectSameBytesAsSource(const std::string& container_path, const std::string& gguf_path) {
    auto gguf = ParseGguf(gguf_bytes_, gguf_path);
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    auto container = format::Container::Open(container_path);
    ASSERT_TRUE(container.ok()) << container.status();
    const format::Container& c = **container;
    ASSERT_EQ(c.num_tensors(), gguf->tensors.size());
    size_t grouped = 0;
    for (const GgufTensorInfo& info : gguf->tensors) {
      const auto index = c.FindTensor(info.name);
      ASSERT_TRUE(index.has_value()) << info.name;
      const format::TensorEntry& t = c.tensor(*index);
      EXPECT_EQ(t.dtype(), info.dtype) << info.name;
      const auto stored = c.TensorData(*index);
      std::vector<uint8_t> bytes(stored.begin(), stored.end());
      if (t.layout() == format::LAYOUT_ROW_GROUPS_16) {
        ++grouped;
        format::FromRowGroups(t.dtype(), t.shape(0), t.nbytes() / t.shape(0), stored.data(),
                              bytes.data());
      }
      const auto source = std::span<const uint8_t>(gguf_bytes_).subspan(info.offset, info.nbytes);
      EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), source.begin(), source.end()))
          << info.name;
    }
    // 7 matrices in each of 2 layers, and the output head.
    EXPECT_EQ(grouped, 15u);
  }

  testing::ScopedTempDir dir_;
  std::vector<uint8_t> gguf_bytes_;
};

TEST_P(RepackTest, DefaultKeepsEveryBlockByteForByte) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  ExpectSameBytesAsSource(options.output, options.source);
  for (const TensorReport& t : report->tensors) {
    EXPECT_EQ(t.dtype, t.source_dtype) << t.name;
    EXPECT_FALSE(t.has_stats) << t.name;  // kept: no error figures
  }
  auto container = format::Container::Open(options.output);
  ASSERT_TRUE(container.ok()) << container.status();
  std::string quant;
  for (const auto& kv : (*container)->manifest().provenance().options()) {
    if (kv.key() == "quant") quant = kv.value();
  }
  EXPECT_EQ(quant, "keep");
}

TEST_P(RepackTest, SameBytesForAnyChunkingAndThreadCount) {
  const std::string source = WriteSource();
  std::string reference;
  for (const uint64_t chunk : {uint64_t{4} << 20, uint64_t{1000}}) {
    for (const int threads : {1, 3}) {
      ConvertOptions options;
      options.source = source;
      options.output = dir_.File("out.zcpack");
      options.keep_source_dtypes = true;
      options.threads = threads;
      options.chunk_bytes = chunk;
      options.overwrite = true;
      ASSERT_TRUE(Convert(options).ok());
      std::ifstream in(options.output, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      if (reference.empty()) reference = bytes;
      EXPECT_EQ(bytes, reference) << "chunk " << chunk << ", threads " << threads;
    }
  }
  ExpectSameBytesAsSource(dir_.File("out.zcpack"), source);
}

TEST_P(RepackTest, RowMajorLayoutKeepsGgmlOrder) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.matrix_layout = format::LAYOUT_ROW_MAJOR;
  ASSERT_TRUE(Convert(options).ok());
  auto container = format::Container::Open(options.output);
  ASSERT_TRUE(container.ok()) << container.status();
  for (size_t i = 0; i < (*container)->num_tensors(); ++i) {
    EXPECT_EQ((*container)->tensor(i).layout(), format::LAYOUT_ROW_MAJOR);
  }
}

TEST_P(RepackTest, RequantizingIsRefusedNamingTheTensors) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.quant = GetParam() == format::DTYPE_Q8_0 ? format::DTYPE_Q4_0 : format::DTYPE_Q8_0;
  auto report = Convert(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("blk.0.attn_q.weight"));
  EXPECT_THAT(report.status().message(), HasSubstr("requantize"));
  EXPECT_THAT(report.status().message(), HasSubstr("--quant keep"));
  EXPECT_EQ(report.status().message().find('\n'), absl::string_view::npos);
  EXPECT_TRUE(dir_.List().size() == 1) << "only the source is left";
}

TEST_P(RepackTest, ExplicitSourceTypeEverywhereKeepsTheBytes) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.quant = GetParam();
  options.output_quant = GetParam();  // else the head would become q8_0
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  ExpectSameBytesAsSource(options.output, options.source);
}

TEST_P(RepackTest, TypeTheRuntimeCannotRunIsRefusedInOneLine) {
  ConvertOptions options;
  options.source = WriteSource({{"output.weight", 11}, {"blk.1.ffn_down.weight", 10}});
  options.output = dir_.File("out.zcpack");
  auto report = Convert(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(report.status().message(),
            options.source + ": 2 tensors have a type zcpack cannot run yet: "
                             "blk.1.ffn_down.weight (Q2_K), output.weight (Q3_K)");
}

INSTANTIATE_TEST_SUITE_P(QuantizedSources, RepackTest,
                         ::testing::Values(format::DTYPE_Q4_0, format::DTYPE_Q8_0,
                                           format::DTYPE_Q4_K),
                         [](const ::testing::TestParamInfo<format::DType>& p) {
                           return std::string(format::DTypeName(p.param));
                         });

TEST(RepackOptions, KeepOnAFloatSourceKeepsItsFloats) {
  testing::ScopedTempDir dir;
  ConvertOptions options;
  options.source = dir.File("model.gguf");
  WriteBytes(options.source, testing::TinyLlamaGguf(testing::TinyLlamaModelInfo(),
                                                    format::DTYPE_F16));
  options.output = dir.File("out.zcpack");
  options.keep_source_dtypes = true;
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  for (const TensorReport& t : report->tensors) {
    EXPECT_EQ(t.dtype, t.source_dtype) << t.name;
    EXPECT_EQ(t.layout, format::LAYOUT_ROW_MAJOR) << t.name;
  }
}

TEST(RepackOptions, FloatSourceStillDefaultsToQ4_0) {
  testing::ScopedTempDir dir;
  ConvertOptions options;
  options.source = dir.File("model.gguf");
  format::ModelInfo model = testing::TinyLlamaModelInfo();
  model.set_hidden_size(32);  // rows of whole q4_0 blocks
  model.set_head_dim(8);
  WriteBytes(options.source, testing::TinyLlamaGguf(model, format::DTYPE_F16));
  options.output = dir.File("out.zcpack");
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  size_t q4_0 = 0;
  for (const TensorReport& t : report->tensors) q4_0 += t.dtype == format::DTYPE_Q4_0;
  EXPECT_GT(q4_0, 0u);
}

TEST(RepackOptions, KeepWithAHeadTypeOrKeepF16IsRefused) {
  ConvertOptions options;
  options.output = "/nonexistent/out.zcpack";
  options.keep_source_dtypes = true;
  options.output_quant = format::DTYPE_Q8_0;
  EXPECT_EQ(CheckConvertOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options.output_quant = format::DTYPE_UNSPECIFIED;
  options.keep_f16 = {"output.weight"};
  EXPECT_EQ(CheckConvertOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options.keep_f16.clear();
  EXPECT_TRUE(CheckConvertOptions(options).ok());
}

}  // namespace
}  // namespace zcpack::converter
