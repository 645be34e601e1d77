// Decoding under a memory budget (MemoryPolicy::budget_bytes): the plan's
// split between resident and streamed weights, identical logits with and
// without streaming, and the budgets that are too small or large enough to
// change nothing.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"

namespace zcpack::runtime {
namespace {

using ::testing::HasSubstr;

constexpr int kContext = 16;
constexpr int kThreads = 2;
const std::vector<int32_t> kPrompt = {1, 17, 42, 5};

class MemoryBudgetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir();
    path_ = new std::string(testing::ConvertTinyModel(*dir_, "tiny"));
  }
  static void TearDownTestSuite() {
    delete path_;
    delete dir_;
  }

  // The byte ranges the budget divides, from the container itself.
  struct Units {
    std::vector<format::ByteRange> layers;
    format::ByteRange output, output_norm;
    uint64_t largest_layer = 0;
  };
  static Units UnitsOf(const Model& model) {
    const format::Container& c = model.container();
    Units u;
    for (int l = 0; l < model.num_layers(); ++l) {
      u.layers.push_back(*c.LayerRange(l));
      u.largest_layer = std::max(u.largest_layer, u.layers.back().size);
    }
    for (size_t i = 0; i < c.num_tensors(); ++i) {
      const format::TensorEntry& t = c.tensor(i);
      if (t.layer() >= 0) continue;
      const format::TensorRole head =
          model.info().tied_embeddings() ? format::ROLE_TOKEN_EMBEDDING : format::ROLE_OUTPUT;
      if (t.role() == head) u.output = c.TensorExtent(i);
      if (t.role() == format::ROLE_OUTPUT_NORM) u.output_norm = c.TensorExtent(i);
    }
    return u;
  }

  // The anonymous memory the plan counts for a session of kContext on
  // kThreads, one token at a time, as Session::Create() plans it; the
  // process's own part is fixed at 0 (MemoryPolicy::budget_process_bytes)
  // so that the budgets below do not depend on the test runner's heap.
  static uint64_t SessionBytes(const Model& model) {
    MemoryPlanOptions options;
    options.context = kContext;
    options.batch = 1;
    options.threads = kThreads;
    return PlanSessionMemory(model, options)->total_bytes;
  }

  static std::unique_ptr<Model> Open(uint64_t budget, int slots = 2) {
    OpenOptions options;
    options.memory.budget_bytes = budget;
    options.memory.stream_slots = slots;
    options.memory.budget_process_bytes = 0;
    auto model = Model::Open(*path_, options);
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? std::move(*model) : nullptr;
  }

  // Every logit of the prompt's evaluation and of three greedy steps.
  static std::vector<std::vector<float>> Logits(const Model& model) {
    SessionOptions options;
    options.max_context = kContext;
    options.threads = kThreads;
    auto session = Session::Create(model, options);
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return {};
    std::vector<std::vector<float>> out;
    std::vector<int32_t> next = kPrompt;
    for (int step = 0; step < 4; ++step) {
      auto logits = (*session)->Evaluate(next);
      EXPECT_TRUE(logits.ok()) << logits.status();
      if (!logits.ok()) return out;
      out.emplace_back(logits->begin(), logits->end());
      next = {static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin())};
    }
    return out;
  }

  static testing::ScopedTempDir* dir_;
  static std::string* path_;
};
testing::ScopedTempDir* MemoryBudgetTest::dir_ = nullptr;
std::string* MemoryBudgetTest::path_ = nullptr;

// Bit for bit: the streamed views read the same bytes from the ring as the
// mapped ones from the page cache.
void ExpectSameLogits(const std::vector<std::vector<float>>& a,
                      const std::vector<std::vector<float>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t step = 0; step < a.size(); ++step) {
    ASSERT_EQ(a[step].size(), b[step].size());
    EXPECT_EQ(0, std::memcmp(a[step].data(), b[step].data(), a[step].size() * sizeof(float)))
        << "step " << step;
  }
}

TEST_F(MemoryBudgetTest, EverythingStreamedGivesIdenticalLogits) {
  const std::unique_ptr<Model> plain = Open(0);
  ASSERT_NE(plain, nullptr);
  const Units u = UnitsOf(*plain);
  ASSERT_LT(u.output.size, u.largest_layer) << "the tiny shape's head is smaller than a layer";
  // Room for the output norm and a ring of two layers only: every layer and
  // the head stream.
  const uint64_t budget =
      SessionBytes(*plain) + kBudgetMarginBytes + u.output_norm.size + 2 * u.largest_layer;
  const std::unique_ptr<Model> streamed = Open(budget);
  ASSERT_NE(streamed, nullptr);
  const std::vector<std::vector<float>> expected = Logits(*plain);
  const std::vector<std::vector<float>> got = Logits(*streamed);
  ExpectSameLogits(expected, got);

  const BudgetPlan* plan = streamed->budget_plan();
  ASSERT_NE(plan, nullptr);
  EXPECT_TRUE(plan->streams);
  EXPECT_TRUE(plan->output_streamed);
  EXPECT_EQ(plan->streamed_layers.size(), static_cast<size_t>(streamed->num_layers()));
  EXPECT_LE(plan->planned_bytes(), budget);
  uint64_t per_token = u.output.size;
  for (const format::ByteRange& r : u.layers) per_token += r.size;
  EXPECT_EQ(plan->streamed_bytes_per_token, per_token);
  // Four evaluations read every unit at least four times (the reader may
  // have started on a fifth).
  EXPECT_GE(streamed->streamed_bytes(), 4 * per_token);
  EXPECT_LE(streamed->streamed_bytes(), 5 * per_token);
  EXPECT_EQ(plain->streamed_bytes(), 0u);
}

TEST_F(MemoryBudgetTest, PartlyResidentGivesIdenticalLogits) {
  const std::unique_ptr<Model> plain = Open(0);
  ASSERT_NE(plain, nullptr);
  const Units u = UnitsOf(*plain);
  // The head, a ring of one layer and one layer resident: one of the two
  // layers streams (a ring of two and a layer would hold more than the file).
  const uint64_t budget = SessionBytes(*plain) + kBudgetMarginBytes + u.output_norm.size +
                          u.output.size + 2 * u.largest_layer;
  ASSERT_LT(budget, SessionBytes(*plain) + kBudgetMarginBytes + plain->container().file_size());
  const std::unique_ptr<Model> mixed = Open(budget, /*slots=*/1);
  ASSERT_NE(mixed, nullptr);
  ExpectSameLogits(Logits(*plain), Logits(*mixed));
  const BudgetPlan* plan = mixed->budget_plan();
  ASSERT_NE(plan, nullptr);
  EXPECT_TRUE(plan->streams);
  EXPECT_FALSE(plan->output_streamed);
  EXPECT_EQ(plan->streamed_layers.size(), 1u);
  EXPECT_LE(plan->planned_bytes(), budget);
  EXPECT_GT(mixed->streamed_bytes(), 0u);
}

TEST_F(MemoryBudgetTest, PlanStaysWithinEveryBudgetAndCoversEveryUnit) {
  const std::unique_ptr<Model> model = Open(0);
  ASSERT_NE(model, nullptr);
  const Units u = UnitsOf(*model);
  const uint64_t anon = 1 << 20;
  uint64_t units = u.output.size + u.output_norm.size;
  for (const format::ByteRange& r : u.layers) units += r.size;
  const uint64_t file = model->container().file_size();
  size_t previous_streamed = model->num_layers() + 1;
  for (uint64_t extra = 2 * u.largest_layer; extra < file + u.largest_layer; extra += 4096) {
    const uint64_t budget = anon + kBudgetMarginBytes + u.output_norm.size + extra;
    const absl::StatusOr<BudgetPlan> plan = PlanMemoryBudget(*model, budget, anon, 2);
    ASSERT_TRUE(plan.ok()) << plan.status();
    if (!plan->streams) {
      EXPECT_GE(budget, anon + kBudgetMarginBytes + file);
      continue;
    }
    EXPECT_LE(plan->planned_bytes(), budget) << "budget " << budget;
    EXPECT_EQ(plan->resident_bytes + plan->streamed_bytes_per_token, units);
    // More budget never streams more.
    const size_t streamed = plan->streamed_layers.size() + plan->output_streamed;
    EXPECT_LE(streamed, previous_streamed);
    previous_streamed = streamed;
  }
}

TEST_F(MemoryBudgetTest, BudgetHoldingTheFileMapsAsWithout) {
  const std::unique_ptr<Model> plain = Open(0);
  ASSERT_NE(plain, nullptr);
  const uint64_t budget = SessionBytes(*plain) + kBudgetMarginBytes + plain->container().file_size();
  const std::unique_ptr<Model> model = Open(budget);
  ASSERT_NE(model, nullptr);
  ExpectSameLogits(Logits(*plain), Logits(*model));
  const BudgetPlan* plan = model->budget_plan();
  ASSERT_NE(plan, nullptr);
  EXPECT_FALSE(plan->streams);
  EXPECT_EQ(plan->ring_bytes, 0u);
  EXPECT_TRUE(plan->streamed_layers.empty());
  EXPECT_EQ(model->streamed_bytes(), 0u);
  EXPECT_GT(model->prefetched_units(), 0u);  // the default policy's prefetcher, as without
}

TEST_F(MemoryBudgetTest, TooSmallBudgetIsAResourceErrorNamingTheFigures) {
  const std::unique_ptr<Model> model = Open(16 << 20);  // below the margin alone
  ASSERT_NE(model, nullptr);
  SessionOptions options;
  options.max_context = kContext;
  options.threads = kThreads;
  const auto session = Session::Create(*model, options);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(session.status().message(), HasSubstr(*path_));
  EXPECT_THAT(session.status().message(), HasSubstr("a memory budget of 16777216 bytes is too small"));
  EXPECT_THAT(session.status().message(), HasSubstr(absl::StrCat("a margin of ", kBudgetMarginBytes)));
  // The same answer for the next session: the budget is applied once.
  EXPECT_EQ(Session::Create(*model, options).status(), session.status());
}

TEST_F(MemoryBudgetTest, BudgetNeedsTheZcpackLoader) {
  OpenOptions options;
  options.loader = Loader::kPread;
  options.memory.budget_bytes = 1 << 30;
  const auto model = Model::Open(*path_, options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("zcpack loader only"));
}

TEST_F(MemoryBudgetTest, FileTruncatedWhileStreamingIsAbortedNotACrash) {
  const std::string copy = dir_->File("truncated.zcpack");
  std::filesystem::copy_file(*path_, copy, std::filesystem::copy_options::overwrite_existing);
  OpenOptions open;
  open.memory.budget_process_bytes = 0;
  open.memory.budget_bytes = 1;  // replaced below, once the units are known
  std::unique_ptr<Model> probe = Open(0);
  ASSERT_NE(probe, nullptr);
  const Units u = UnitsOf(*probe);
  open.memory.budget_bytes =
      SessionBytes(*probe) + kBudgetMarginBytes + u.output_norm.size + 2 * u.largest_layer;
  auto model = Model::Open(copy, open);
  ASSERT_TRUE(model.ok()) << model.status();
  SessionOptions options;
  options.max_context = kContext;
  options.threads = kThreads;
  auto session = Session::Create(**model, options);
  ASSERT_TRUE(session.ok()) << session.status();
  std::filesystem::resize_file(copy, 4096);
  // The reader may have read the first units before the truncation; the
  // second pass reads every unit again, after it.
  absl::Status status = (*session)->Evaluate(kPrompt).status();
  if (status.ok()) status = (*session)->Evaluate(std::vector<int32_t>{3}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(status.message(), HasSubstr(copy));
}

}  // namespace
}  // namespace zcpack::runtime
