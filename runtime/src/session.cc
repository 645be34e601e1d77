#include "zcpack/runtime/session.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <new>
#include <optional>
#include <string>

#include <Eigen/Core>

#include "absl/strings/str_cat.h"
#include "activation_kernels.h"
#include "attention_kernels.h"
#include "session_buffers.h"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/status_macros.h"

namespace zcpack::runtime {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMatrixMap = Eigen::Map<const RowMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

// Batches of at least this many tokens spread their element-wise work over
// the pool's threads.
constexpr size_t kParallelTokens = 4;

// y = W x for a batch of n rows of x (n x cols), through the in-place kernels.
void Project(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool) {
  MatMul(w, x, n, y, pool);
}

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, for n rows of `dim`.
void RmsNorm(const float* x, const float* weight, size_t n, size_t dim, float eps, float* out) {
  const ConstVectorMap w(weight, static_cast<Eigen::Index>(dim));
  for (size_t t = 0; t < n; ++t) {
    const float* in = x + t * dim;
    // ggml's order: float squares summed in double, the mean rounded to
    // float. Another order can move the scale by an ulp, and that can move
    // an activation across an 8-bit rounding boundary downstream.
    double sum = 0.0;
    for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(in[i] * in[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(dim));
    const float scale = 1.0f / std::sqrt(mean + eps);
    VectorMap(out + t * dim, static_cast<Eigen::Index>(dim)) =
        (ConstVectorMap(in, static_cast<Eigen::Index>(dim)) * scale).cwiseProduct(w);
  }
}

}  // namespace

Session::Session(const Model& model, int max_context, int threads)
    : model_(model), max_context_(max_context), pool_(threads) {
  // Create() planned these sizes (PlanSessionMemory()), so they fit.
  const internal::SessionBufferSizes sizes =
      *internal::SessionBuffersFor(model.info(), static_cast<uint64_t>(max_context));
  // new uint16_t[] leaves the pages untouched: they become resident as filled.
  k_cache_.reset(new uint16_t[sizes.kv_cache]);
  v_cache_.reset(new uint16_t[sizes.kv_cache]);
  rope_cos_.resize(sizes.rope_table);
  rope_sin_.resize(sizes.rope_table);
  logits_.resize(sizes.logits);
  norm_w_.resize(sizes.norm_weights);
  bias_q_.resize(sizes.bias_q);
  bias_k_.resize(sizes.bias_kv);
  bias_v_.resize(sizes.bias_kv);
  scores_.resize(sizes.scores);
}

Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const Model& model,
                                                         const SessionOptions& options) {
  const format::ModelInfo& m = model.info();
  const std::string& file = model.container().path();
  const int context = options.max_context == 0 ? DefaultContext(m) : options.max_context;
  if (context <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("context of ", context, " positions"));
  }
  if (!options.allow_longer_context) {
    ZCPACK_RETURN_IF_ERROR(CheckContextLength(m, context, file));
  }
  // What the session holds once its KV cache is full, for one token at a
  // time (a longer batch adds its scratch when it comes).
  MemoryPlanOptions plan_options;
  plan_options.context = context;
  plan_options.batch = 1;
  plan_options.threads = options.threads;
  const absl::StatusOr<SessionMemory> plan = PlanSessionMemory(model, plan_options);
  const uint64_t available = AvailableMemoryBytes();
  if (!plan.ok() || plan->total_bytes > available) {
    return absl::ResourceExhaustedError(absl::StrCat(
        file, ": a context of ", context, " positions needs ",
        plan.ok() ? absl::StrCat(plan->total_bytes) : std::string("more than 2^64"),
        " bytes of KV cache and scratch, more than the ", available,
        " bytes of memory available"));
  }
  const uint64_t bytes = plan->total_bytes;
  // A memory budget holds this session's memory besides the weights.
  ZCPACK_RETURN_IF_ERROR(model.ApplyBudget(bytes));
  int threads = options.threads;
  std::string threads_note;
  if (const int cpus = ThreadPool::AvailableCpus(); threads > cpus) {
    threads_note = absl::StrCat(threads, " threads requested, more than the ", cpus,
                                " CPUs available: using ", cpus);
    threads = cpus;
  }
  std::unique_ptr<Session> session;
  try {
    session.reset(new Session(model, context, threads));
  } catch (const std::bad_alloc&) {  // e.g. RLIMIT_AS, or overcommit refused
    return absl::ResourceExhaustedError(absl::StrCat(
        file, ": cannot allocate ", bytes, " bytes of KV cache and scratch for a context of ",
        context, " positions"));
  }
  if (!threads_note.empty()) session->notes_.push_back(std::move(threads_note));
  return session;
}

absl::StatusOr<int> ContextForGeneration(uint64_t prompt_tokens, int64_t max_tokens) {
  if (max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(max_tokens, " tokens to generate"));
  }
  constexpr uint64_t kMaxPositions = std::numeric_limits<int>::max();
  if (prompt_tokens > kMaxPositions || static_cast<uint64_t>(max_tokens) > kMaxPositions - prompt_tokens) {
    // Both terms are below 2^63 here only when the prompt fits: sum them then.
    const std::string needed =
        prompt_tokens <= kMaxPositions
            ? absl::StrCat(prompt_tokens + static_cast<uint64_t>(max_tokens), " positions")
            : std::string("more positions");
    return absl::InvalidArgumentError(absl::StrCat(
        "a prompt of ", prompt_tokens, " tokens and ", max_tokens, " tokens to generate need ",
        needed, ", more than the ", kMaxPositions, " a session can hold"));
  }
  return static_cast<int>(prompt_tokens + static_cast<uint64_t>(max_tokens));
}

absl::Status CheckPromptTokens(const format::ModelInfo& model, std::span<const int32_t> tokens) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || static_cast<uint32_t>(tokens[t]) >= model.vocab_size()) {
      return absl::InvalidArgumentError(absl::StrCat("token ", tokens[t], " at index ", t,
                                                     " is outside the vocabulary of ",
                                                     model.vocab_size()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckContextLength(const format::ModelInfo& model, int64_t context,
                                absl::string_view file) {
  const uint32_t limit = model.max_position_embeddings();
  if (limit != 0 && context > static_cast<int64_t>(limit)) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": a context of ", context,
                                                   " positions is longer than the model's ", limit,
                                                   " (max_position_embeddings)"));
  }
  return absl::OkStatus();
}

uint64_t Session::kv_cache_bytes() const {
  return 2 * sizeof(uint16_t) *
         internal::SessionBuffersFor(model_.info(), static_cast<uint64_t>(max_context_))->kv_cache;
}

void Session::Reset() { position_ = 0; }

void Session::EnsureScratch(size_t n) {
  if (n <= scratch_tokens_) return;
  // n is at most the context, whose buffers Create() planned.
  const internal::BatchScratchSizes sizes = *internal::BatchScratchFor(model_.info(), n);
  x_.resize(sizes.hidden);
  xn_.resize(sizes.hidden);
  q_.resize(sizes.q);
  k_.resize(sizes.kv);
  v_.resize(sizes.kv);
  attn_.resize(sizes.q);
  ffn_gate_.resize(sizes.ffn);
  ffn_up_.resize(sizes.ffn);
  ffn_out_.resize(sizes.hidden);
  scratch_tokens_ = n;
}

void Session::Attention(int layer, size_t n) {
  const format::ModelInfo& m = model_.info();
  const size_t hd = m.head_dim();
  const size_t heads = m.num_heads();
  const size_t kv_heads = m.num_kv_heads();
  const size_t group = heads / kv_heads;
  const size_t ctx = static_cast<size_t>(max_context_);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t q_dim = heads * hd;
  const size_t total = static_cast<size_t>(position_) + n;  // keys after this batch
  using StridedRowsOut = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
  const attention::AttentionKernels& kernels = attention::AttentionKernelsFor(format::DetectSimdLevel());
  // Queries (and, for large batches, probabilities) are rounded to binary16,
  // the cache's type, as llama.cpp rounds them before its products.
  // What each thread's buffers below hold (also what PlanSessionMemory()
  // counts).
  const internal::AttentionScratchSizes sizes = *internal::AttentionScratchFor(m, n, total);
  auto round_to_half = [&kernels](const float* src, size_t count, float* dst) {
    thread_local std::vector<uint16_t> half;
    half.resize(count);  // at most sizes.half
    kernels.to_half(src, count, half.data());
    kernels.to_float(half.data(), count, dst);
  };
  pool_.ParallelFor(0, heads, 1, [&](size_t begin, size_t end) {
    for (size_t h = begin; h < end; ++h) {
      const size_t kvh = h / group;
      const size_t base = ((static_cast<size_t>(layer) * kv_heads + kvh) * ctx) * hd;
      const uint16_t* keys = k_cache_.get() + base;
      const uint16_t* values = v_cache_.get() + base;
      if (n < internal::kOnlineAttentionBatch) {
        // Each query against the keys it sees, with llama.cpp's flash
        // attention arithmetic (attention_kernels.h): the cache is read
        // straight from binary16, once per query.
        thread_local std::vector<float> query, scores, ms, vs;
        query.resize(sizes.query);
        scores.resize(sizes.per_key);
        ms.resize(sizes.per_key);
        vs.resize(sizes.per_key);
        for (size_t t = 0; t < n; ++t) {
          const size_t len = static_cast<size_t>(position_) + t + 1;
          float* out = attn_.data() + t * q_dim + h * hd;
          round_to_half(q_.data() + t * q_dim + h * hd, hd, query.data());
          kernels.key_scores(keys, len, hd, query.data(), scale, scores.data());
          const float sum = attention::OnlineSoftmax(scores.data(), len, ms.data(), vs.data());
          kernels.online_values(values, len, hd, ms.data(), vs.data(), out);
          const float inverse = sum == 0.0f ? 0.0f : 1.0f / sum;
          for (size_t i = 0; i < hd; ++i) out[i] *= inverse;
        }
        continue;
      }
      // A large batch: widen the head's cache once, then all queries against
      // all keys in two matrix products, with the causal mask: query t sees
      // keys [0, position_ + t]. (llama.cpp switches to a tiled float path
      // here too; the two agree to float rounding, not bit for bit.)
      thread_local RowMatrix keys_f, values_f, scores, queries;
      // sizes.widened = total * hd, sizes.batch_scores = n * total,
      // sizes.batch_queries = n * hd.
      keys_f.resize(static_cast<Eigen::Index>(total), static_cast<Eigen::Index>(hd));
      values_f.resize(static_cast<Eigen::Index>(total), static_cast<Eigen::Index>(hd));
      kernels.to_float(keys, sizes.widened, keys_f.data());
      kernels.to_float(values, sizes.widened, values_f.data());
      scores.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(total));
      queries.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(hd));
      for (size_t t = 0; t < n; ++t) {
        round_to_half(q_.data() + t * q_dim + h * hd, hd, queries.data() + t * hd);
      }
      scores.noalias() = (queries * keys_f.transpose()) * scale;
      for (size_t t = 0; t < n; ++t) {
        const Eigen::Index len = static_cast<Eigen::Index>(position_) + static_cast<Eigen::Index>(t) + 1;
        auto row = scores.row(static_cast<Eigen::Index>(t));
        auto visible = row.head(len);
        const float max = visible.maxCoeff();
        visible = (visible.array() - max).exp();
        visible /= visible.sum();
        round_to_half(visible.data(), static_cast<size_t>(len), visible.data());
        row.tail(static_cast<Eigen::Index>(total) - len).setZero();
      }
      StridedRowsOut(attn_.data() + h * hd, static_cast<Eigen::Index>(n),
                     static_cast<Eigen::Index>(hd), Eigen::OuterStride<>(q_dim))
          .noalias() = scores * values_f;
    }
  });
}

absl::StatusOr<std::span<const float>> Session::Evaluate(std::span<const int32_t> tokens) {
  const format::ModelInfo& m = model_.info();
  const size_t n = tokens.size();
  if (n == 0) return absl::InvalidArgumentError("no tokens to evaluate");
  ZCPACK_RETURN_IF_ERROR(CheckPromptTokens(m, tokens));
  if (static_cast<size_t>(position_) + n > static_cast<size_t>(max_context_)) {
    return absl::OutOfRangeError(absl::StrCat("context full: ", position_, " + ", n,
                                              " tokens exceed ", max_context_, " positions"));
  }
  // A fault in the mapping (the file truncated under us) reads zeros from
  // there on; stop at the next layer boundary and report it. position_ moves
  // only at the end, so the session is unchanged (the cache slots written
  // past it are overwritten by the next call).
  ZCPACK_RETURN_IF_ERROR(model_.CheckMapping());
  EnsureScratch(n);
  const size_t hidden = m.hidden_size();
  const size_t hd = m.head_dim();
  const size_t heads = m.num_heads();
  const size_t kv_heads = m.num_kv_heads();
  const size_t q_dim = heads * hd;
  const size_t kv_dim = kv_heads * hd;
  const size_t ffn = m.intermediate_size();
  const size_t ctx = static_cast<size_t>(max_context_);
  const float eps = static_cast<float>(m.rms_norm_eps());
  const bool interleaved = m.rope_layout() == format::ROPE_LAYOUT_INTERLEAVED;
  ThreadPool* pool = &pool_;
  const attention::AttentionKernels& cache_kernels =
      attention::AttentionKernelsFor(format::DetectSimdLevel());
  const activation::SwiGluFn swiglu = activation::SwiGluFor(format::DetectSimdLevel());

  // RoPE tables through the last position of this batch.
  const size_t half = hd / 2;
  // The angles are computed in float as ggml computes them (the ratio
  // powf(theta, -2 / dim), each angle the previous one times it), so the
  // rotated vectors equal llama.cpp's bit for bit.
  const float theta_scale =
      std::pow(static_cast<float>(m.rope_theta()), -2.0f / static_cast<float>(hd));
  for (int p = rope_filled_; p < position_ + static_cast<int>(n); ++p) {
    float angle = static_cast<float>(p);
    for (size_t i = 0; i < half; ++i) {
      rope_cos_[static_cast<size_t>(p) * half + i] = std::cos(angle);
      rope_sin_[static_cast<size_t>(p) * half + i] = std::sin(angle);
      angle *= theta_scale;
    }
    rope_filled_ = p + 1;
  }
  auto rope = [&](float* vec, size_t count, int pos) {  // count heads of hd
    const float* c = rope_cos_.data() + static_cast<size_t>(pos) * half;
    const float* s = rope_sin_.data() + static_cast<size_t>(pos) * half;
    for (size_t h = 0; h < count; ++h) {
      float* v = vec + h * hd;
      for (size_t i = 0; i < half; ++i) {
        const size_t a = interleaved ? 2 * i : i;
        const size_t b = interleaved ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        // Fused as GCC fuses ggml's x0 * c - x1 * s and x0 * s + x1 * c.
        v[a] = std::fma(x0, c[i], -(x1 * s[i]));
        v[b] = std::fma(x0, s[i], x1 * c[i]);
      }
    }
  };
  // Element-wise work runs per token: split between the pool's threads for
  // a batch, on this thread for a single token (where waking the workers
  // would cost more than the work).
  auto for_tokens = [&](auto&& fn) {
    if (n >= kParallelTokens) {
      pool->ParallelFor(0, n, 1, [&](size_t begin, size_t end) {
        for (size_t t = begin; t < end; ++t) fn(t);
      });
    } else {
      for (size_t t = 0; t < n; ++t) fn(t);
    }
  };
  auto add_residual = [&](size_t t) {  // x += ffn_out, for token t
    VectorMap(x_.data() + t * hidden, static_cast<Eigen::Index>(hidden)) +=
        ConstVectorMap(ffn_out_.data() + t * hidden, static_cast<Eigen::Index>(hidden));
  };

  for_tokens([&](size_t t) {
    DequantizeRow(model_.token_embedding(), static_cast<uint64_t>(tokens[t]), x_.data() + t * hidden);
  });
  for (int l = 0; l < model_.num_layers(); ++l) {
    model_.WillCompute(l);
    ZCPACK_ASSIGN_OR_RETURN(const WeightLease lease, model_.AcquireLayer(l));
    const LayerWeights& w = lease.layer();
    DequantizeRow(w.attn_norm, 0, norm_w_.data());
    for_tokens([&](size_t t) {
      if (l > 0) add_residual(t);  // the previous layer's FFN output
      RmsNorm(x_.data() + t * hidden, norm_w_.data(), 1, hidden, eps, xn_.data() + t * hidden);
    });
    {
      const Projection qkv[] = {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}};
      MatMulMany(qkv, xn_.data(), n, pool);
    }
    // Biases, RoPE, and the keys and values into the cache.
    if (w.bq) DequantizeRow(*w.bq, 0, bias_q_.data());
    if (w.bk) DequantizeRow(*w.bk, 0, bias_k_.data());
    if (w.bv) DequantizeRow(*w.bv, 0, bias_v_.data());
    for_tokens([&](size_t t) {
      float* q = q_.data() + t * q_dim;
      float* k = k_.data() + t * kv_dim;
      float* v = v_.data() + t * kv_dim;
      auto add = [](float* y, const std::vector<float>& b, size_t dim) {
        VectorMap(y, static_cast<Eigen::Index>(dim)) += ConstVectorMap(b.data(), static_cast<Eigen::Index>(dim));
      };
      if (w.bq) add(q, bias_q_, q_dim);
      if (w.bk) add(k, bias_k_, kv_dim);
      if (w.bv) add(v, bias_v_, kv_dim);
      const int pos = position_ + static_cast<int>(t);
      rope(q, heads, pos);
      rope(k, kv_heads, pos);
      for (size_t h = 0; h < kv_heads; ++h) {
        const size_t at = (((static_cast<size_t>(l) * kv_heads + h) * ctx) + static_cast<size_t>(pos)) * hd;
        cache_kernels.to_half(k + h * hd, hd, k_cache_.get() + at);
        cache_kernels.to_half(v + h * hd, hd, v_cache_.get() + at);
      }
    });
    Attention(l, n);
    Project(w.wo, attn_.data(), n, ffn_out_.data(), pool);

    DequantizeRow(w.ffn_norm, 0, norm_w_.data());
    for_tokens([&](size_t t) {
      add_residual(t);
      RmsNorm(x_.data() + t * hidden, norm_w_.data(), 1, hidden, eps, xn_.data() + t * hidden);
    });
    {
      const Projection gate_up[] = {{&w.w_gate, ffn_gate_.data()}, {&w.w_up, ffn_up_.data()}};
      MatMulMany(gate_up, xn_.data(), n, pool);
    }
    for_tokens([&](size_t t) {  // SwiGLU: silu(gate) * up
      swiglu(ffn_gate_.data() + t * ffn, ffn_up_.data() + t * ffn, ffn);
    });
    Project(w.w_down, ffn_gate_.data(), n, ffn_out_.data(), pool);
    ZCPACK_RETURN_IF_ERROR(model_.CheckMapping());
  }
  // Only the last token's residual is needed from here on.
  add_residual(n - 1);
  model_.WillCompute(model_.num_layers());
  DequantizeRow(model_.output_norm(), 0, norm_w_.data());
  RmsNorm(x_.data() + (n - 1) * hidden, norm_w_.data(), 1, hidden, eps, xn_.data());
  {
    ZCPACK_ASSIGN_OR_RETURN(const WeightLease head, model_.AcquireOutput());
    MatVec(head.output(), xn_.data(), logits_.data(), pool);
  }
  ZCPACK_RETURN_IF_ERROR(model_.CheckMapping());
  position_ += static_cast<int>(n);
  return std::span<const float>(logits_);
}

absl::Status CheckSamplingOptions(const SamplingOptions& options) {
  if (!std::isfinite(options.temperature) || options.temperature < 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature ", options.temperature, " is not a finite number >= 0 (0 is greedy)"));
  }
  if (!(options.top_p >= 0.0f && options.top_p <= 1.0f)) {  // NaN included
    return absl::InvalidArgumentError(
        absl::StrCat("top_p ", options.top_p, " is not a number from 0 to 1 (1 turns it off)"));
  }
  if (options.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k ", options.top_k, " is negative (0 turns it off)"));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

int32_t Sampler::Sample(std::span<const float> logits) {
  const float temperature = options_.temperature;
  if (!(temperature > 0.0f) || !std::isfinite(temperature)) {  // NaN included
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Rank by logit (dividing by a positive temperature keeps the order), and
  // scale only differences from the maximum: logit / T overflows to inf for
  // a tiny T, and inf - inf is NaN; (logit - max) / T is <= 0, at worst -inf,
  // whose exp() is 0.
  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.push_back({logits[i], static_cast<int32_t>(i)});
  }
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
  }
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                    candidates_.end(), better);
  candidates_.resize(keep);
  const float max = candidates_.front().first;
  double total = 0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max) / temperature);
    total += c.first;
  }
  if (options_.top_p > 0.0f && options_.top_p < 1.0f) {
    double cumulative = 0;
    size_t cut = 0;
    while (cut < candidates_.size()) {
      cumulative += candidates_[cut++].first / total;
      if (cumulative >= options_.top_p) break;
    }
    candidates_.resize(cut);
    total = 0;
    for (const auto& c : candidates_) total += c.first;
  }
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0;
  for (const auto& c : candidates_) {
    cumulative += c.first;
    if (u < cumulative) return c.second;
  }
  return candidates_.back().second;
}

absl::StatusOr<std::vector<int32_t>> Generate(Session& session, std::span<const int32_t> prompt,
                                              int max_tokens, const SamplingOptions& sampling,
                                              bool stop_at_eos, GenerateStats* stats,
                                              const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  GenerateStats local;
  GenerateStats& s = stats != nullptr ? *stats : local;
  s = GenerateStats();
  s.prompt_tokens = static_cast<int>(prompt.size());
  ZCPACK_RETURN_IF_ERROR(CheckSamplingOptions(sampling));
  Sampler sampler(sampling);
  std::vector<int32_t> out;
  if (max_tokens <= 0) return out;
  const auto start = Clock::now();
  std::span<const int32_t> next = prompt;
  int32_t token = 0;
  const int32_t eos = session.model().info().eos_token_id();
  Clock::time_point first_done;
  for (int i = 0; i < max_tokens; ++i) {
    ZCPACK_ASSIGN_OR_RETURN(std::span<const float> logits, session.Evaluate(next));
    for (size_t v = 0; v < logits.size(); ++v) {
      if (!std::isfinite(logits[v])) {
        return absl::DataLossError(absl::StrCat(session.model().container().path(),
                                                ": non-finite logit at position ",
                                                session.position() - 1, " (token id ", v, ")"));
      }
    }
    token = sampler.Sample(logits);
    out.push_back(token);
    if (i == 0) {
      first_done = Clock::now();
      s.first_token_seconds = std::chrono::duration<double>(first_done - start).count();
    }
    s.generated_tokens = static_cast<int>(out.size());
    if (on_token && !on_token(token)) break;
    if (stop_at_eos && token == eos) break;
    next = std::span<const int32_t>(&token, 1);
  }
  s.decode_seconds = std::chrono::duration<double>(Clock::now() - first_done).count();
  return out;
}

namespace {

// Where the incomplete UTF-8 character that `text` ends with starts: the
// position of its lead byte when the bytes from there are a proper prefix of
// a well-formed sequence (format/utf8.h's rules: the second byte's range
// depends on the first), else text.size() (nothing to hold back).
size_t IncompleteUtf8Tail(absl::string_view text) {
  const size_t n = text.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    const auto b = static_cast<uint8_t>(text[n - k]);
    if (b >= 0x80 && b <= 0xbf) continue;  // a continuation byte: look further back
    size_t length = 0;
    uint8_t low = 0x80, high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      length = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b == 0xe0) low = 0xa0;
      if (b == 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b == 0xf0) low = 0x90;
      if (b == 0xf4) high = 0x8f;
    }
    if (length <= k) return n;  // ASCII, an invalid byte, or a complete sequence
    if (k >= 2) {
      const auto second = static_cast<uint8_t>(text[n - k + 1]);
      if (second < low || second > high) return n;
    }
    return n - k;
  }
  return n;
}

}  // namespace

absl::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kEndOfGeneration: return "end_of_generation";
    case StopReason::kCallback: return "callback";
    default: return "max_tokens";
  }
}

absl::StatusOr<TextGeneration> GenerateText(Session& session, const Tokenizer& tokenizer,
                                            std::span<const int32_t> prompt, int max_tokens,
                                            const SamplingOptions& sampling,
                                            const TextPieceCallback& on_piece) {
  TextGeneration result;
  result.prompt_tokens.assign(prompt.begin(), prompt.end());
  std::string pending;  // bytes not yet passed on: an incomplete character
  std::optional<StopReason> stop;
  int count = 0;
  const auto on_token = [&](int32_t id) {
    ++count;
    std::string piece;
    const bool end = tokenizer.IsEndOfGeneration(id);
    if (!end) pending += tokenizer.TokenToPiece(id);
    // The last token flushes what is held back: no later one can complete it.
    const size_t keep = end || count == max_tokens ? pending.size() : IncompleteUtf8Tail(pending);
    piece = format::ReplaceInvalidUtf8(absl::string_view(pending).substr(0, keep));
    pending.erase(0, keep);
    result.text += piece;
    const bool go_on = !on_piece || on_piece(id, piece);
    if (end) {
      stop = StopReason::kEndOfGeneration;
      return false;
    }
    if (!go_on) stop = StopReason::kCallback;
    return go_on;
  };
  ZCPACK_ASSIGN_OR_RETURN(result.generated_tokens,
                          Generate(session, prompt, max_tokens, sampling, /*stop_at_eos=*/false,
                                   &result.stats, on_token));
  result.stop_reason = stop.value_or(StopReason::kMaxTokens);
  return result;
}

absl::StatusOr<TextGeneration> GenerateText(Session& session, const Tokenizer& tokenizer,
                                            absl::string_view prompt, TokenizeOptions tokenize,
                                            int max_tokens, const SamplingOptions& sampling,
                                            const TextPieceCallback& on_piece) {
  const std::vector<int32_t> ids = tokenizer.Tokenize(prompt, tokenize);
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        "the prompt is empty after tokenizing: give some text (or add_special with a vocabulary "
        "that adds BOS)");
  }
  return GenerateText(session, tokenizer, ids, max_tokens, sampling, on_piece);
}

}  // namespace zcpack::runtime
