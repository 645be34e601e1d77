// The memory plan against sizes worked out here from the model's shape and
// the container's tensor table, independently of the runtime's functions.
#include "zcpack/runtime/memory_plan.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime/tiny_model.h"
#include "zcpack/runtime/session.h"

namespace zcpack::runtime {
namespace {

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

class MemoryPlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir();
    auto model = Model::Open(testing::ConvertTinyModel(*dir_, "tiny"));
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static const format::ModelInfo& info() { return model_->info(); }
  static SessionMemory Plan(int context, int batch, int threads) {
    MemoryPlanOptions options;
    options.context = context;
    options.batch = batch;
    options.threads = threads;
    absl::StatusOr<SessionMemory> plan = PlanSessionMemory(*model_, options);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.value_or(SessionMemory());
  }

  static testing::ScopedTempDir* dir_;
  static Model* model_;
};
testing::ScopedTempDir* MemoryPlanTest::dir_ = nullptr;
Model* MemoryPlanTest::model_ = nullptr;

TEST_F(MemoryPlanTest, KvCacheIsKeysAndValuesInHalfPrecisionForEveryLayerAndPosition) {
  const uint64_t kv_dim = uint64_t{info().num_kv_heads()} * info().head_dim();
  for (int context : {1, 100, 256}) {
    EXPECT_EQ(Plan(context, 1, 1).kv_cache_bytes, 2 * info().num_layers() * context * kv_dim * 2)
        << context;
  }
}

TEST_F(MemoryPlanTest, KvCacheIsWhatTheSessionAllocates) {
  SessionOptions options;
  options.max_context = 200;
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(*model_, options);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(Plan(200, 1, 1).kv_cache_bytes, (*session)->kv_cache_bytes());
}

TEST_F(MemoryPlanTest, BatchScratchHoldsEveryActivationOfEveryToken) {
  const uint64_t hidden = info().hidden_size();
  const uint64_t q_dim = uint64_t{info().num_heads()} * info().head_dim();
  const uint64_t kv_dim = uint64_t{info().num_kv_heads()} * info().head_dim();
  const uint64_t ffn = info().intermediate_size();
  // x, xn and ffn_out of hidden; q and attn of q_dim; k and v of kv_dim;
  // gate and up of ffn; all float.
  const uint64_t per_token = 4 * (3 * hidden + 2 * q_dim + 2 * kv_dim + 2 * ffn);
  for (int batch : {1, 10, 64, 256}) {
    EXPECT_EQ(Plan(256, batch, 1).batch_scratch_bytes, batch * per_token) << batch;
  }
}

TEST_F(MemoryPlanTest, SessionBuffersScaleWithTheContext) {
  const SessionMemory plan = Plan(128, 1, 1);
  EXPECT_EQ(plan.rope_tables_bytes, 2 * 128 * (info().head_dim() / 2) * 4);
  EXPECT_EQ(plan.logits_bytes, uint64_t{info().vocab_size()} * 4);
  const uint64_t q_dim = uint64_t{info().num_heads()} * info().head_dim();
  const uint64_t kv_dim = uint64_t{info().num_kv_heads()} * info().head_dim();
  EXPECT_EQ(plan.small_buffers_bytes,
            4 * (info().hidden_size() + q_dim + 2 * kv_dim + uint64_t{info().num_heads()} * 128));
}

TEST_F(MemoryPlanTest, AttentionBuffersAreOnEveryThreadAndWidenTheCacheForLargeBatches) {
  const uint64_t hd = info().head_dim();
  // Small batches and decoding: one query, and scores, maxima and sums over
  // the whole context, plus a binary16 query.
  const uint64_t decode = 4 * hd + 3 * 4 * 256 + 2 * hd;
  EXPECT_EQ(Plan(256, 10, 1).attention_scratch_bytes, decode);
  EXPECT_EQ(Plan(256, 10, 2).attention_scratch_bytes, 2 * decode);
  // A batch of 64 or more: the cache widened to float for its keys, the
  // scores and the queries, too; the rounding buffer holds a row of
  // probabilities.
  const uint64_t n = 100;
  const uint64_t batch = 2 * 4 * n * hd + 4 * n * n + 4 * n * hd;
  const uint64_t both = 4 * hd + 3 * 4 * 256 + batch + 2 * std::max<uint64_t>(hd, n);
  EXPECT_EQ(Plan(256, n, 1).attention_scratch_bytes, both);
}

TEST_F(MemoryPlanTest, TotalIsTheSumAndStacksAreReservedApart) {
  const SessionMemory plan = Plan(256, 32, 2);
  EXPECT_EQ(plan.total_bytes, plan.kv_cache_bytes + plan.rope_tables_bytes + plan.logits_bytes +
                                  plan.small_buffers_bytes + plan.batch_scratch_bytes +
                                  plan.attention_scratch_bytes + plan.activation_scratch_bytes);
  EXPECT_GT(plan.activation_scratch_bytes, 0u);
  EXPECT_EQ(plan.thread_stacks_reserved_bytes,
            static_cast<uint64_t>(plan.threads - 1) * ThreadPool::WorkerStackBytes());
  EXPECT_GT(ThreadPool::WorkerStackBytes(), 0u);
}

TEST_F(MemoryPlanTest, KernelActivationsGrowWithTheBatch) {
  // The int8 activations of the widest quantized input, n at a time: at
  // least n bytes per element.
  const uint64_t widest = std::max(info().hidden_size(), info().intermediate_size());
  const SessionMemory one = Plan(256, 1, 1), many = Plan(256, 200, 1);
  EXPECT_GE(many.activation_scratch_bytes - one.activation_scratch_bytes, 199 * widest);
}

TEST_F(MemoryPlanTest, DefaultsAreTheSessionsDefaults) {
  MemoryPlanOptions options;  // context 0, batch 0, threads 0
  absl::StatusOr<SessionMemory> plan = PlanSessionMemory(*model_, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->context, std::min<int>(static_cast<int>(info().max_position_embeddings()), 2048));
  EXPECT_EQ(plan->batch, plan->context);
  EXPECT_EQ(plan->threads, ThreadPool::AvailableCpus());
}

TEST_F(MemoryPlanTest, RefusesABatchLongerThanTheContextAndAnImpossibleContext) {
  MemoryPlanOptions options;
  options.context = 16;
  options.batch = 17;
  EXPECT_EQ(PlanSessionMemory(*model_, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.context = -1;
  options.batch = 1;
  EXPECT_EQ(PlanSessionMemory(*model_, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.context = std::numeric_limits<int>::max();
  options.batch = std::numeric_limits<int>::max();
  // 2^31 tokens of activations in one batch, each widened against 2^31 keys.
  EXPECT_EQ(PlanSessionMemory(*model_, options).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(MemoryPlanTest, CopyingLoadersHoldTheTensorsAndClassicTheFileBesides) {
  const format::Container& c = model_->container();
  uint64_t tensors = 0, extents = 0;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    tensors += RoundUp(c.tensor(i).nbytes(), 4096);
    extents += RoundUp(c.tensor(i).nbytes(), c.alignment());
  }
  const LoaderMemory classic = PlanLoaderMemory(c, Loader::kClassic);
  EXPECT_EQ(classic.weights_anon_bytes, tensors);
  EXPECT_EQ(classic.open_peak_anon_bytes, tensors + RoundUp(c.file_size(), 4096));
  EXPECT_FALSE(classic.mapped);
  const LoaderMemory pread = PlanLoaderMemory(c, Loader::kPread);
  EXPECT_EQ(pread.weights_anon_bytes, tensors);
  EXPECT_EQ(pread.open_peak_anon_bytes, tensors);
  EXPECT_EQ(PlanLoaderMemory(c, Loader::kDirect).weights_anon_bytes, extents);
  EXPECT_LT(classic.weights_file_bytes, c.file_size());
}

TEST_F(MemoryPlanTest, MappedLoadersHoldNoCopyAndMapTheWholeFile) {
  for (Loader loader : {Loader::kZcpack, Loader::kMmapNaive}) {
    const LoaderMemory plan = PlanLoaderMemory(model_->container(), loader);
    EXPECT_TRUE(plan.mapped);
    EXPECT_EQ(plan.open_peak_anon_bytes, 0u);
    EXPECT_EQ(plan.weights_anon_bytes, 0u);
    EXPECT_EQ(plan.weights_file_bytes, model_->container().file_size());
  }
}

TEST_F(MemoryPlanTest, ATokenReadsEveryTensorButAllButOneEmbeddingRow) {
  const format::Container& c = model_->container();
  uint64_t all = 0, embedding = 0, parameters = 0;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const format::TensorEntry& t = c.tensor(i);
    all += t.nbytes();
    uint64_t elements = 1;
    for (uint64_t d : t.shape()) elements *= d;
    parameters += elements;
    if (t.role() == format::ROLE_TOKEN_EMBEDDING) embedding = t.nbytes();
  }
  ASSERT_GT(embedding, 0u);
  const WeightsFootprint w = PlanWeights(*model_);
  EXPECT_EQ(w.tensor_bytes, all);
  EXPECT_EQ(w.parameters, parameters);
  EXPECT_DOUBLE_EQ(w.bits_per_weight, 8.0 * static_cast<double>(all) / static_cast<double>(parameters));
  const bool tied = model_->output().data == model_->token_embedding().data;
  EXPECT_EQ(w.token_read_bytes,
            tied ? all : all - embedding + embedding / info().vocab_size());
}

}  // namespace
}  // namespace zcpack::runtime
