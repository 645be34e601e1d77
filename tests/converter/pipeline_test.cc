// The conversion pipeline through its library API: planning and
// determinism under any chunking and thread count.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/synth.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"

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
  // The container at `path`, every tensor checksum verified.
  static absl::StatusOr<std::unique_ptr<format::Container>> OpenVerified(const std::string& path) {
    format::ReaderOptions reader_options;
    reader_options.verify_checksums = true;
    return format::Container::Open(path, reader_options);
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
  auto container = OpenVerified(options.output);
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

// The default layout is row groups for the matrices the runtime multiplies
// by, in a container that records it; --layout row-major stores ggml's order.
// Both hold the same blocks: put back in order, the bytes are equal.
TEST_F(PipelineTest, RowGroupsByDefaultRowMajorByOption) {
  std::unique_ptr<format::Container> containers[2];
  for (const format::TensorLayout layout : {format::LAYOUT_ROW_GROUPS_16, format::LAYOUT_ROW_MAJOR}) {
    ConvertOptions options;
    options.source = model_;
    options.output = dir_.File(absl::StrCat(format::LayoutName(layout), ".zcpack"));
    if (layout == format::LAYOUT_ROW_MAJOR) options.matrix_layout = layout;  // else the default
    auto report = Convert(options);
    ASSERT_TRUE(report.ok()) << report.status();
    auto container = OpenVerified(options.output);
    ASSERT_TRUE(container.ok()) << container.status();
    const format::Container& c = **container;
    EXPECT_EQ((c.header().required_features & format::kFeatureRowGroups) != 0,
              layout == format::LAYOUT_ROW_GROUPS_16);
    std::string recorded;
    for (const auto& kv : c.manifest().provenance().options()) {
      if (kv.key() == "matrix_layout") recorded = kv.value();
    }
    EXPECT_EQ(recorded, format::LayoutName(layout));
    size_t grouped = 0;
    for (size_t i = 0; i < c.num_tensors(); ++i) {
      const format::TensorEntry& t = c.tensor(i);
      const bool matmul = t.role() != format::ROLE_TOKEN_EMBEDDING && t.shape_size() == 2;
      EXPECT_EQ(t.layout(), matmul ? layout : format::LAYOUT_ROW_MAJOR) << t.name();
      EXPECT_EQ(report->tensors[i].layout, t.layout()) << t.name();
      grouped += t.layout() == format::LAYOUT_ROW_GROUPS_16;
    }
    // 7 matrices in each of 2 layers, and the output head.
    EXPECT_EQ(grouped, layout == format::LAYOUT_ROW_GROUPS_16 ? 15u : 0u);
    containers[layout == format::LAYOUT_ROW_MAJOR] = std::move(*container);
  }
  const format::Container& grouped = *containers[0];
  const format::Container& row_major = *containers[1];
  ASSERT_EQ(grouped.num_tensors(), row_major.num_tensors());
  for (size_t i = 0; i < grouped.num_tensors(); ++i) {
    const format::TensorEntry& t = grouped.tensor(i);
    const auto stored = grouped.TensorData(i);
    std::vector<uint8_t> bytes(stored.begin(), stored.end());
    if (t.layout() == format::LAYOUT_ROW_GROUPS_16) {
      EXPECT_NE(t.xxh3(), row_major.tensor(i).xxh3()) << t.name();
      format::FromRowGroups(t.dtype(), t.shape(0), t.nbytes() / t.shape(0), stored.data(),
                            bytes.data());
    }
    const auto expected = row_major.TensorData(i);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), expected.begin(), expected.end()))
        << t.name();
    EXPECT_DOUBLE_EQ(t.quant_stats().snr_db(), row_major.tensor(i).quant_stats().snr_db())
        << t.name();
  }
}

// AddF16Tensor(): appends an f16 source tensor to `model`.
void AddF16Tensor(SourceModel& model, const std::string& name, format::TensorRole role, int layer,
                  std::vector<uint64_t> shape) {
  SourceTensor t;
  t.name = name;
  t.role = role;
  t.layer = layer;
  t.dtype = format::DTYPE_F16;
  t.shape = std::move(shape);
  model.tensors.push_back(t);
}

// PlanConversion() of `model`, by source tensor name.
std::map<std::string, PlannedTensor> PlanOf(const SourceModel& model, const PlanOptions& options) {
  auto plan = PlanConversion(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, PlannedTensor> by_name;
  if (plan.ok()) {
    for (const PlannedTensor& p : *plan) by_name[model.tensors[p.source_index].name] = p;
  }
  return by_name;
}

// The layout policy of PlanConversion(): which tensors take matrix_layout.
std::map<std::string, PlannedTensor> PlanLayouts(bool tied, format::DType quant,
                                                 format::TensorLayout layout) {
  SourceModel model;
  model.model.set_num_layers(1);
  model.model.set_tied_embeddings(tied);
  AddF16Tensor(model, "token_embd.weight", format::ROLE_TOKEN_EMBEDDING, -1, {100, 256});
  AddF16Tensor(model, "blk.0.attn_norm.weight", format::ROLE_ATTN_NORM, 0, {256});
  for (const auto& [name, role] : std::vector<std::pair<std::string, format::TensorRole>>{
           {"q", format::ROLE_ATTN_Q},        {"k", format::ROLE_ATTN_K},
           {"v", format::ROLE_ATTN_V},        {"o", format::ROLE_ATTN_OUTPUT},
           {"gate", format::ROLE_FFN_GATE},   {"up", format::ROLE_FFN_UP},
           {"down", format::ROLE_FFN_DOWN},   {"other", format::ROLE_OTHER}}) {
    AddF16Tensor(model, "blk.0." + name, role, 0, {48, 256});
  }
  if (!tied) AddF16Tensor(model, "output.weight", format::ROLE_OUTPUT, -1, {100, 256});
  PlanOptions options;
  options.quant = quant;
  options.matrix_layout = layout;
  options.keep_f16 = {"blk.0.up"};
  return PlanOf(model, options);
}

TEST(LayoutPolicy, MatMulWeightsOfQuantizedTypesTakeTheLayout) {
  for (const bool tied : {false, true}) {
    auto plan = PlanLayouts(tied, format::DTYPE_Q4_K, format::LAYOUT_ROW_GROUPS_16);
    for (const char* name : {"blk.0.q", "blk.0.k", "blk.0.v", "blk.0.o", "blk.0.gate",
                             "blk.0.down"}) {
      EXPECT_EQ(plan[name].layout, format::LAYOUT_ROW_GROUPS_16) << name;
    }
    // f16 by --keep-f16, 1-D, or not read as a matrix: row-major.
    EXPECT_EQ(plan["blk.0.up"].layout, format::LAYOUT_ROW_MAJOR);
    EXPECT_EQ(plan["blk.0.attn_norm.weight"].layout, format::LAYOUT_ROW_MAJOR);
    EXPECT_EQ(plan["blk.0.other"].layout, format::LAYOUT_ROW_MAJOR);
    // The head (a tied embedding is the head); an untied embedding is only
    // looked up, row by row.
    EXPECT_EQ(plan["token_embd.weight"].layout,
              tied ? format::LAYOUT_ROW_GROUPS_16 : format::LAYOUT_ROW_MAJOR);
    if (!tied) {
      EXPECT_EQ(plan["output.weight"].layout, format::LAYOUT_ROW_GROUPS_16);
    }
  }
}

TEST(LayoutPolicy, RowMajorOptionAndFloatTargetsKeepGgmlOrder) {
  for (const auto& [quant, layout] : std::vector<std::pair<format::DType, format::TensorLayout>>{
           {format::DTYPE_Q4_0, format::LAYOUT_ROW_MAJOR},
           {format::DTYPE_F16, format::LAYOUT_ROW_GROUPS_16},
           {format::DTYPE_F32, format::LAYOUT_ROW_GROUPS_16}}) {
    for (const auto& [name, p] : PlanLayouts(true, quant, layout)) {
      EXPECT_EQ(p.layout, format::LAYOUT_ROW_MAJOR) << name << " " << format::DTypeName(quant);
    }
  }
}

TEST(LayoutPolicy, UnknownLayoutIsRefused) {
  PlanOptions options;
  options.matrix_layout = static_cast<format::TensorLayout>(5);
  EXPECT_EQ(PlanConversion(SourceModel{}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
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
    AddF16Tensor(model, name, role, layer, std::move(shape));
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
    AddF16Tensor(model, name, role, layer, {512, cols});
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
  return PlanOf(model, options);
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
