// Converting an already-quantized GGUF: its Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
// Q4_K tensors keep their exact block bytes (Q4_0, Q8_0 and Q4_K only
// reordered into row groups; the others stay row-major), nothing is
// requantized unless asked, and types the runtime cannot run are refused in
// one line.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/format/row_groups.h"

namespace zcpack::converter {
namespace {

using ::testing::HasSubstr;

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

bool IsQuantizeTarget(format::DType dtype) {
  return dtype == format::DTYPE_Q4_0 || dtype == format::DTYPE_Q4_K ||
         dtype == format::DTYPE_Q8_0;
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
    // 7 matrices in each of 2 layers, and the output head, for the types that
    // have row groups.
    EXPECT_EQ(grouped, format::SupportsRowGroups(GetParam()) ? 15u : 0u);
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

// Kept blocks are read with pread, not through the mapping: a source cut
// short while it is read is the same error as a truncated mapping, and
// leaves nothing at the destination.
TEST_P(RepackTest, SourceTruncatedWhileReadIsAnErrorAndLeavesNothing) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.threads = 1;
  options.chunk_bytes = 256;  // many chunks after the truncation
  bool truncated = false;
  options.progress = [&](const ConvertProgress&) {
    if (!truncated) {
      ASSERT_EQ(::truncate(options.source.c_str(), 0), 0);
    }
    truncated = true;
  };
  const auto report = Convert(options);
  ASSERT_TRUE(truncated);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(report.status().message(), options.source + ": truncated or unreadable while mapped");
  EXPECT_FALSE(std::filesystem::exists(options.output));
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(left, ::testing::ElementsAre("model.gguf"));  // no temporary file either
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

// An explicit --quant of another type requantizes: every quantized tensor of
// another type is decoded and quantized again, its error figures are against
// the source's decoded values, and one warning gives the largest of them.
TEST_P(RepackTest, ExplicitQuantRequantizesWithOneWarning) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.quant = GetParam() == format::DTYPE_Q8_0 ? format::DTYPE_Q4_K : format::DTYPE_Q8_0;
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->warnings.size(), 1u);
  const std::string& warning = report->warnings[0];
  EXPECT_THAT(warning, HasSubstr("requantiz"));
  EXPECT_THAT(warning, HasSubstr(absl::StrCat(format::DTypeName(GetParam()), " to ",
                                              format::DTypeName(options.quant))));
  EXPECT_EQ(warning.find('\n'), std::string::npos);

  // The largest RMS error relative to the tensor's RMS, measured here from
  // the container and the GGUF, is the warning's figure and tensor.
  auto gguf = ParseGguf(gguf_bytes_, options.source);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto container = format::Container::Open(options.output);
  ASSERT_TRUE(container.ok()) << container.status();
  double worst = -1;
  std::string worst_name;
  size_t requantized = 0;
  for (const GgufTensorInfo& info : gguf->tensors) {
    if (!format::IsQuantized(info.dtype)) continue;
    const format::TensorEntry& t = (*container)->tensor(*(*container)->FindTensor(info.name));
    if (t.dtype() == info.dtype) {  // a q8_0 source's head: already q8_0
      EXPECT_FALSE(t.has_quant_stats()) << info.name;
      continue;
    }
    EXPECT_TRUE(t.has_quant_stats()) << info.name;
    ++requantized;
    const uint64_t n = info.nbytes / format::BlockBytes(info.dtype) * format::BlockElements(info.dtype);
    std::vector<float> source(n), stored(n);
    ASSERT_TRUE(format::ConvertToFloat(info.dtype, gguf_bytes_.data() + info.offset, n,
                                       source.data())
                    .ok());
    const auto data = (*container)->TensorData(*(*container)->FindTensor(info.name));
    std::vector<uint8_t> row_major(data.begin(), data.end());
    if (t.layout() == format::LAYOUT_ROW_GROUPS_16) {
      format::FromRowGroups(t.dtype(), t.shape(0), t.nbytes() / t.shape(0), data.data(),
                            row_major.data());
    }
    ASSERT_TRUE(format::ConvertToFloat(t.dtype(), row_major.data(), n, stored.data()).ok());
    double error = 0, energy = 0;
    for (uint64_t i = 0; i < n; ++i) {
      error += (double{stored[i]} - source[i]) * (double{stored[i]} - source[i]);
      energy += double{source[i]} * source[i];
    }
    const double relative = std::sqrt(error / energy);
    EXPECT_GT(relative, 0.0) << info.name;
    if (relative > worst) {
      worst = relative;
      worst_name = info.name;
    }
  }
  EXPECT_THAT(warning, HasSubstr(absl::StrCat("requantized ", requantized, " ")));
  EXPECT_THAT(warning, HasSubstr(absl::StrCat(" in ", worst_name, ": RMS error ",
                                              absl::StrFormat("%.3g%%", 100 * worst))));
}

// Tensors already of the asked type keep their bytes; only the others (here
// the output head, which the policy makes q8_0) are requantized.
TEST_P(RepackTest, ExplicitQuantOfTheSourceTypeKeepsItsTensors) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.quant = GetParam();
  if (!IsQuantizeTarget(GetParam())) {
    // zcpack has no quantizer for the type, so --quant cannot name it.
    EXPECT_EQ(Convert(options).status().code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const bool head_changes = GetParam() != kQuantizedHeadDType;
  if (head_changes) {
    ASSERT_EQ(report->warnings.size(), 1u);
    EXPECT_THAT(report->warnings[0], HasSubstr("requantized 1 already-quantized tensor ("));
    EXPECT_THAT(report->warnings[0], HasSubstr(" in output.weight: "));
  } else {
    EXPECT_TRUE(report->warnings.empty());
  }
  for (const TensorReport& t : report->tensors) {
    if (!format::IsQuantized(t.source_dtype)) continue;
    if (t.name == "output.weight" && head_changes) {
      EXPECT_EQ(t.dtype, kQuantizedHeadDType);
      EXPECT_TRUE(t.has_stats);
    } else {
      EXPECT_EQ(t.dtype, t.source_dtype) << t.name;
      EXPECT_FALSE(t.has_stats) << t.name;  // kept byte for byte
    }
  }
}

// The planner alone still refuses to requantize unless asked to.
TEST_P(RepackTest, PlanWithoutRequantizeRefusesNamingTheTensors) {
  auto source = OpenSourceModel(WriteSource());
  ASSERT_TRUE(source.ok()) << source.status();
  PlanOptions options;
  options.quant = GetParam() == format::DTYPE_Q8_0 ? format::DTYPE_Q4_0 : format::DTYPE_Q8_0;
  auto plan = PlanConversion(**source, options);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("blk.0.attn_q.weight"));
  EXPECT_THAT(plan.status().message(), HasSubstr("requantize"));
  options.requantize = true;
  EXPECT_TRUE(PlanConversion(**source, options).ok());
}

TEST_P(RepackTest, ExplicitSourceTypeEverywhereKeepsTheBytes) {
  ConvertOptions options;
  options.source = WriteSource();
  options.output = dir_.File("out.zcpack");
  options.quant = GetParam();
  options.output_quant = GetParam();  // else the head would become q8_0
  if (!IsQuantizeTarget(GetParam())) {
    // zcpack has no quantizer for the type, so --quant cannot name it.
    EXPECT_EQ(Convert(options).status().code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->warnings.empty());
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
                                           format::DTYPE_Q4_K, format::DTYPE_Q4_1,
                                           format::DTYPE_Q5_0, format::DTYPE_Q5_1),
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
