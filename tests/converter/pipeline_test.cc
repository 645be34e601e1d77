// The conversion pipeline through its library API: planning and
// determinism under any chunking and thread count.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/synth.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"

namespace zcpack::converter {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthOptions synth;
    synth.shape = "tiny";
    synth.out_dir = dir_.path() + "/tiny";
    ASSERT_TRUE(Synthesize(synth).ok());
    model_ = synth.out_dir;
  }
  testing::ScopedTempDir dir_;
  std::string model_;
};

TEST_F(PipelineTest, SameBytesForAnyChunkingAndThreadCount) {
  std::map<format::DType, std::string> reference;
  for (const uint64_t chunk : {uint64_t{4} << 20, uint64_t{1000}, uint64_t{70000}}) {
    for (const int threads : {1, 2, 4}) {
      for (const format::DType quant :
           {format::DTYPE_Q4_0, format::DTYPE_Q4_K, format::DTYPE_Q8_0}) {
        ConvertOptions options;
        options.source = model_;
        options.output = dir_.path() + "/out.zcpack";
        options.quant = quant;
        options.threads = threads;
        options.chunk_bytes = chunk;
        options.overwrite = true;
        auto report = Convert(options);
        ASSERT_TRUE(report.ok()) << report.status();
        const std::string bytes = ReadFile(options.output);
        std::string& want = reference[quant];
        if (want.empty()) want = bytes;
        EXPECT_EQ(bytes, want) << format::DTypeName(quant) << ", chunk " << chunk << ", threads "
                               << threads;
      }
    }
  }
}

TEST_F(PipelineTest, ReportMatchesTheContainer) {
  ConvertOptions options;
  options.source = model_;
  options.output = dir_.path() + "/out.zcpack";
  auto report = Convert(options);
  ASSERT_TRUE(report.ok()) << report.status();
  format::ReaderOptions reader_options;
  reader_options.verify_checksums = true;
  auto container = format::Container::Open(options.output, reader_options);
  ASSERT_TRUE(container.ok()) << container.status();
  ASSERT_EQ(report->tensors.size(), (*container)->num_tensors());
  for (size_t i = 0; i < report->tensors.size(); ++i) {
    const auto& t = report->tensors[i];
    const auto& e = (*container)->tensor(i);
    EXPECT_EQ(t.name, e.name());
    EXPECT_EQ(t.offset, e.offset());
    EXPECT_EQ(t.nbytes, e.nbytes());
    EXPECT_EQ(t.has_stats, e.has_quant_stats());
    if (t.has_stats) {
      EXPECT_DOUBLE_EQ(t.stats.snr_db(), e.quant_stats().snr_db());
    }
  }
  EXPECT_EQ(report->output_bytes, (*container)->file_size());
  // q4_0 layers (4.5 bits per weight) and the q8_0 head (8.5 bits).
  uint64_t q4_weights = 0, q8_weights = 0;
  for (const auto& t : report->tensors) {
    const uint64_t n = t.shape[0] * t.shape[1];
    if (t.dtype == format::DTYPE_Q4_0) q4_weights += n;
    if (t.dtype == format::DTYPE_Q8_0) q8_weights += n;
  }
  ASSERT_GT(q8_weights, 0u);
  EXPECT_NEAR(report->quantized_bits_per_weight,
              (4.5 * q4_weights + 8.5 * q8_weights) / (q4_weights + q8_weights), 1e-9);
  const auto& provenance = (*container)->manifest().provenance();
  EXPECT_THAT(provenance.converter_version(), ::testing::StartsWith("zcpack "));
  ASSERT_EQ(provenance.sources_size(), 2);
  EXPECT_EQ(provenance.sources(0).name(), "config.json");
}

// A source truncated while convert reads it used to kill the process with
// SIGBUS and leave the full-size temporary file behind. The mapping guard
// turns the fault into zeros and the pipeline into an error naming the file.
TEST_F(PipelineTest, SourceTruncatedWhileMappedIsAnErrorAndLeavesNothing) {
  const std::string weights = model_ + "/model.safetensors";
  ConvertOptions options;
  options.source = model_;
  options.output = dir_.path() + "/out.zcpack";
  options.threads = 1;
  options.chunk_bytes = 4096;  // many chunks after the truncation
  bool truncated = false;
  options.progress = [&](const ConvertProgress&) {
    if (!truncated) {
      ASSERT_EQ(::truncate(weights.c_str(), 0), 0);
    }
    truncated = true;
  };
  const auto report = Convert(options);
  ASSERT_TRUE(truncated);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(report.status().message(), weights + ": truncated or unreadable while mapped");
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(left, ::testing::ElementsAre("tiny"));  // no output, no temporary file
}

TEST(PlanTest, UnusedTensorsAreKeptInTheirLayerOrAtTheEnd) {
  SourceModel model;
  model.model.set_num_layers(2);
  auto add = [&](const std::string& name, format::TensorRole role, int layer,
                 std::vector<uint64_t> shape) {
    SourceTensor t;
    t.name = name;
    t.role = role;
    t.layer = layer;
    t.dtype = format::DTYPE_F16;
    t.shape = std::move(shape);
    model.tensors.push_back(t);
  };
  add("head", format::ROLE_OUTPUT, -1, {64, 64});
  add("l1.rotary", format::ROLE_OTHER, 1, {32});
  add("l1.q", format::ROLE_ATTN_Q, 1, {64, 64});
  add("loose", format::ROLE_OTHER, -1, {8});
  add("l0.norm", format::ROLE_ATTN_NORM, 0, {64});
  add("embed", format::ROLE_TOKEN_EMBEDDING, -1, {64, 64});
  add("l1.norm", format::ROLE_ATTN_NORM, 1, {64});
  auto plan = PlanConversion(model, {});
  ASSERT_TRUE(plan.ok());
  std::vector<std::string> order;
  for (const auto& p : *plan) order.push_back(model.tensors[p.source_index].name);
  EXPECT_THAT(order, ::testing::ElementsAre("embed", "l0.norm", "l1.norm", "l1.q", "l1.rotary",
                                            "head", "loose"));
  EXPECT_EQ((*plan)[0].dtype, format::DTYPE_Q4_0);
  EXPECT_EQ((*plan)[5].dtype, format::DTYPE_Q8_0);  // output head
  EXPECT_EQ((*plan)[1].dtype, format::DTYPE_F16);   // 1-D keeps its dtype
}

// A llama with an untied output head: embedding, one attention matrix, head.
// Rows of `cols` elements; every tensor f16.
SourceModel HeadPolicyModel(uint64_t cols, bool tied) {
  SourceModel model;
  model.model.set_num_layers(1);
  model.model.set_tied_embeddings(tied);
  auto add = [&](const std::string& name, format::TensorRole role, int layer) {
    SourceTensor t;
    t.name = name;
    t.role = role;
    t.layer = layer;
    t.dtype = format::DTYPE_F16;
    t.shape = {512, cols};
    model.tensors.push_back(t);
  };
  add("token_embd.weight", format::ROLE_TOKEN_EMBEDDING, -1);
  add("blk.0.attn_q.weight", format::ROLE_ATTN_Q, 0);
  if (!tied) add("output.weight", format::ROLE_OUTPUT, -1);
  return model;
}

// PlanConversion() of HeadPolicyModel(cols, tied) for `quant`, by tensor name.
std::map<std::string, PlannedTensor> PlanByName(
    uint64_t cols, bool tied, format::DType quant, std::vector<std::string> keep_f16 = {},
    format::DType output_quant = format::DTYPE_UNSPECIFIED) {
  const SourceModel model = HeadPolicyModel(cols, tied);
  PlanOptions options;
  options.quant = quant;
  options.keep_f16 = std::move(keep_f16);
  options.output_quant = output_quant;
  auto plan = PlanConversion(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, PlannedTensor> by_name;
  if (plan.ok()) {
    for (const PlannedTensor& p : *plan) by_name[model.tensors[p.source_index].name] = p;
  }
  return by_name;
}

class HeadPolicyTest : public ::testing::TestWithParam<format::DType> {};

TEST_P(HeadPolicyTest, HeadIsQ8_0ByDefault) {
  auto plan = PlanByName(256, /*tied=*/false, GetParam());
  EXPECT_EQ(plan["output.weight"].dtype, format::DTYPE_Q8_0);
  EXPECT_EQ(plan["token_embd.weight"].dtype, GetParam());
  EXPECT_EQ(plan["blk.0.attn_q.weight"].dtype, GetParam());
  for (const auto& [name, p] : plan) EXPECT_EQ(p.fallback_reason, "") << name;
}

TEST_P(HeadPolicyTest, TiedEmbeddingIsTheHeadAndBecomesQ8_0) {
  auto plan = PlanByName(256, /*tied=*/true, GetParam());
  EXPECT_EQ(plan["token_embd.weight"].dtype, format::DTYPE_Q8_0);
  EXPECT_EQ(plan["blk.0.attn_q.weight"].dtype, GetParam());
}

TEST_P(HeadPolicyTest, KeepF16MatchingTheHeadKeepsItF16) {
  auto plan = PlanByName(256, /*tied=*/false, GetParam(), {"output*"});
  EXPECT_EQ(plan["output.weight"].dtype, format::DTYPE_F16);
  EXPECT_EQ(plan["blk.0.attn_q.weight"].dtype, GetParam());
}

TEST_P(HeadPolicyTest, OutputQuantChoosesTheHeadsDType) {
  for (format::DType head : {format::DTYPE_Q4_0, format::DTYPE_Q4_K, format::DTYPE_F16}) {
    auto plan = PlanByName(256, /*tied=*/false, GetParam(), {}, head);
    EXPECT_EQ(plan["output.weight"].dtype, head) << format::DTypeName(head);
    EXPECT_EQ(plan["blk.0.attn_q.weight"].dtype, GetParam());
    auto tied = PlanByName(256, /*tied=*/true, GetParam(), {}, head);
    EXPECT_EQ(tied["token_embd.weight"].dtype, head) << format::DTypeName(head);
  }
  // --keep-f16 still wins over it.
  auto kept = PlanByName(256, /*tied=*/false, GetParam(), {"output*"}, format::DTYPE_Q4_0);
  EXPECT_EQ(kept["output.weight"].dtype, format::DTYPE_F16);
}

TEST(HeadPolicy, OutputQuantMustBeAStorableType) {
  PlanOptions options;
  options.output_quant = format::DTYPE_BF16;
  auto plan = PlanConversion(HeadPolicyModel(256, false), options);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()), ::testing::HasSubstr("output head as bf16"));
}

TEST_P(HeadPolicyTest, HeadRowsNotWholeQ8_0BlocksStayF16WithAReason) {
  // 48 columns: not a multiple of 32 (nor of q4_k's 256).
  auto plan = PlanByName(48, /*tied=*/false, GetParam());
  EXPECT_EQ(plan["output.weight"].dtype, format::DTYPE_F16);
  EXPECT_THAT(plan["output.weight"].fallback_reason, ::testing::HasSubstr("q8_0 block size 32"));
}

INSTANTIATE_TEST_SUITE_P(QuantizedTargets, HeadPolicyTest,
                         ::testing::Values(format::DTYPE_Q4_0, format::DTYPE_Q4_K,
                                           format::DTYPE_Q8_0),
                         [](const ::testing::TestParamInfo<format::DType>& param_info) {
                           return std::string(format::DTypeName(param_info.param));
                         });

TEST(PlanTest, FloatTargetsStoreTheHeadInThatType) {
  for (const format::DType quant : {format::DTYPE_F16, format::DTYPE_F32}) {
    EXPECT_EQ(PlanByName(256, /*tied=*/false, quant)["output.weight"].dtype, quant);
  }
}

TEST(PlanTest, RejectsTargetTypesItCannotProduce) {
  SourceModel model;
  PlanOptions options;
  options.quant = format::DTYPE_BF16;
  EXPECT_EQ(PlanConversion(model, options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zcpack::converter
