// Session: one sequence being decoded by a Model — the KV cache, scratch
// buffers and a thread pool — plus sampling and generation.
//
// The forward pass is the llama-family decoder: RMSNorm, RoPE in the row
// layout the container records (half-split for Hugging Face sources,
// interleaved for GGUF ones), grouped-query attention with optional Q/K/V
// biases, SwiGLU MLP, tied or separate output head. Weights are read in
// place from the mapping by the kernels (kernels.h); float work (norms, RoPE,
// softmax, the batched attention products) uses Eigen. The KV cache holds
// keys and values in binary16, as llama.cpp does by default: reading it is
// what grows with the context, and half precision halves it.
//
// Determinism: results do not depend on the thread count (kernels split work
// by rows; attention splits by heads), so greedy generation gives the same
// tokens for any `threads`.
// Thread-safety: a Session is used by one thread at a time. Memory: the KV
// cache is allocated untouched (pages become resident as positions fill), so
// anonymous memory grows with the tokens actually processed.
#ifndef ZCPACK_RUNTIME_SESSION_H_
#define ZCPACK_RUNTIME_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/thread_pool.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime {

struct SessionOptions {
  // Positions the KV cache holds; 0 means min(max_position_embeddings, 2048).
  // At most the model's max_position_embeddings (when it records one),
  // unless allow_longer_context is set.
  int max_context = 0;
  // Accept a max_context longer than the model's max_position_embeddings, as
  // llama.cpp's -c does: RoPE runs at any position, but nothing says the
  // model's output stays useful past the length it was trained for. The KV
  // cache stays bounded by the memory available. Benchmarks of random
  // weights use it; applications should leave it off.
  bool allow_longer_context = false;
  // Threads for the kernels and attention; 0 means one per available CPU
  // (ThreadPool::AvailableCpus()). More than that is capped at it, with a
  // note: extra threads only wait for a core.
  int threads = 0;
};

class Session {
 public:
  // Create(): a session on `model`, which must outlive it. InvalidArgument
  // for a non-positive context after defaults, or one longer than the
  // model's (CheckContextLength()); ResourceExhausted when the KV cache and
  // scratch for the context need more memory than the system has available
  // (MemAvailable) or the allocation fails. Never throws.
  static absl::StatusOr<std::unique_ptr<Session>> Create(const Model& model,
                                                         const SessionOptions& options = {});
  ~Session();

  // Evaluate(): runs `tokens` at positions [position(), position() + n) and
  // returns the logits after the last one (vocab_size floats, valid until the
  // next call). A batch is processed with matrix-matrix kernels, each weight
  // row read once for all its tokens. InvalidArgument for an empty batch or a
  // token id outside the vocabulary; OutOfRange when the context would
  // overflow; Aborted when the model's file was truncated or became
  // unreadable while mapped (Model::CheckMapping(); the model is then
  // unusable). On error the session is unchanged.
  absl::StatusOr<std::span<const float>> Evaluate(std::span<const int32_t> tokens);

  // Forget every position (the cache is reused).
  void Reset();
  int position() const { return position_; }
  int max_context() const { return max_context_; }
  // Threads the session computes with (after the cap).
  int threads() const { return pool_.num_threads(); }
  // What Create() adjusted (one line each), e.g. a capped thread count.
  const std::vector<std::string>& notes() const { return notes_; }
  // Bytes the KV cache may occupy at max_context (resident only as filled).
  uint64_t kv_cache_bytes() const;
  const Model& model() const { return model_; }

 private:
  Session(const Model& model, int max_context, int threads);
  void EnsureScratch(size_t n);
  void Attention(int layer, size_t n);

  const Model& model_;
  const int max_context_;
  ThreadPool pool_;
  std::vector<std::string> notes_;
  int position_ = 0;
  // KV cache: [layer][kv_head][position][head_dim] in IEEE binary16, K then V.
  std::unique_ptr<uint16_t[]> k_cache_;
  std::unique_ptr<uint16_t[]> v_cache_;
  // RoPE tables: cos/sin per position and frequency, filled lazily.
  std::vector<float> rope_cos_, rope_sin_;
  int rope_filled_ = 0;
  // Scratch, sized for the largest batch seen.
  size_t scratch_tokens_ = 0;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, ffn_gate_, ffn_up_, ffn_out_, logits_, norm_w_,
      bias_q_, bias_k_, bias_v_, scores_;
};

// ContextForGeneration(): the positions a session needs to evaluate a prompt
// of `prompt_tokens` and generate `max_tokens` after it (their sum), computed
// without overflow. InvalidArgument when `max_tokens` is negative or the sum
// is more than a session can hold (INT_MAX positions).
absl::StatusOr<int> ContextForGeneration(uint64_t prompt_tokens, int64_t max_tokens);

// CheckContextLength(): InvalidArgument, naming `file`, when `context`
// positions are more than the model's max_position_embeddings (0, "not
// recorded", allows any).
absl::Status CheckContextLength(const format::ModelInfo& model, int64_t context,
                                absl::string_view file);

// CheckPromptTokens(): InvalidArgument naming the first token id that is
// outside the model's vocabulary [0, vocab_size); what Session::Evaluate()
// checks, for a caller that wants to refuse a prompt before opening a model.
absl::Status CheckPromptTokens(const format::ModelInfo& model, std::span<const int32_t> tokens);

struct SamplingOptions {
  // 0 means greedy (argmax; ties go to the lowest id). Any positive value
  // works, however small: the weights are computed as exp((logit - max) / T),
  // so a tiny T tends to greedy instead of overflowing.
  float temperature = 0.0f;
  int top_k = 40;       // 0 disables; never negative
  float top_p = 0.95f;  // in [0, 1]; 1 (or 0) disables
  uint64_t seed = 1;
};

// CheckSamplingOptions(): InvalidArgument for a temperature that is not a
// finite number >= 0, a top_p outside [0, 1] (NaN included), or a negative
// top_k.
absl::Status CheckSamplingOptions(const SamplingOptions& options);

// Sampler: picks tokens from logits; deterministic for a seed.
class Sampler {
 public:
  // Options that CheckSamplingOptions() refuses sample greedily.
  explicit Sampler(const SamplingOptions& options);
  // Sample(): `logits` must be finite (Generate() checks).
  int32_t Sample(std::span<const float> logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

struct GenerateStats {
  double first_token_seconds = 0;  // prompt evaluation and the first sample
  double decode_seconds = 0;       // the remaining tokens
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double tokens_per_second() const {
    return decode_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_seconds : 0;
  }
};

// Generate(): evaluates `prompt` from the session's current position, then
// samples up to `max_tokens` tokens, feeding each back. Stops early at the
// model's eos id when `stop_at_eos`, or when `on_token` returns false. The
// logits of every step are finite or the call fails with DataLoss (a broken
// model). InvalidArgument for options CheckSamplingOptions() refuses.
// Returns the generated ids.
absl::StatusOr<std::vector<int32_t>> Generate(Session& session, std::span<const int32_t> prompt,
                                              int max_tokens, const SamplingOptions& sampling,
                                              bool stop_at_eos = false,
                                              GenerateStats* stats = nullptr,
                                              const std::function<bool(int32_t)>& on_token = {});

// Why a text generation stopped: the first that applies, in this order.
enum class StopReason : int {
  kEndOfGeneration = 0,  // the model produced an end-of-generation token
  kCallback = 1,         // the per-token callback asked to stop
  kMaxTokens = 2,        // the max count was generated (or it was 0)
};

// "end_of_generation", "callback" or "max_tokens".
absl::string_view StopReasonName(StopReason reason);

// TextPieceCallback: called once per generated token, in order, with its id
// and `piece`, the text that became complete with it (see GenerateText());
// the piece's bytes are valid until the call returns. Return false to stop.
using TextPieceCallback = std::function<bool(int32_t id, absl::string_view piece)>;

struct TextGeneration {
  std::vector<int32_t> prompt_tokens;
  // Every generated id, the end-of-generation one included.
  std::vector<int32_t> generated_tokens;
  // The generated text: the concatenation of every piece (valid UTF-8).
  std::string text;
  StopReason stop_reason = StopReason::kMaxTokens;
  GenerateStats stats;
};

// GenerateText(): Generate() with text out. Evaluates `prompt` (token ids)
// from the session's current position and samples up to `max_tokens` tokens
// as Generate() does (same sampling, same ids for the same options), but
// stops at the first token `tokenizer` calls end-of-generation
// (Tokenizer::IsEndOfGeneration(): EOS, EOT, EOM, ...), whatever the model
// info's eos id, and turns each token into text as it comes:
//   - each token's bytes are Tokenizer::TokenToPiece(id) (control tokens,
//     the end-of-generation one included, give none);
//   - a piece is always complete, valid UTF-8: the bytes of a character
//     split across tokens are held back and arrive whole in the piece of the
//     token that completes it (the tokens before get an empty piece); a byte
//     that can start or continue no character becomes U+FFFD, as does a
//     character still incomplete when generation ends at end-of-generation or
//     at the max count (flushed in the last token's piece);
//   - `on_piece`, when set, is called for every generated token, the
//     end-of-generation one included; returning false stops after it (bytes
//     held back then are dropped: `text` is exactly what was passed on).
// The session needs room for prompt + max_tokens positions
// (ContextForGeneration()). Errors: Generate()'s. `stats`, when set,
// receives the timings (also in the result).
absl::StatusOr<TextGeneration> GenerateText(Session& session, const Tokenizer& tokenizer,
                                            std::span<const int32_t> prompt, int max_tokens,
                                            const SamplingOptions& sampling,
                                            const TextPieceCallback& on_piece = {});

// GenerateText() from text: tokenizes `prompt` with `tokenize` (give
// add_special to add BOS where the vocabulary does, and parse_special for a
// prompt rendered by a chat template, whose markers are special tokens),
// then generates as above. InvalidArgument when the prompt tokenizes to no
// tokens at all.
absl::StatusOr<TextGeneration> GenerateText(Session& session, const Tokenizer& tokenizer,
                                            absl::string_view prompt, TokenizeOptions tokenize,
                                            int max_tokens, const SamplingOptions& sampling,
                                            const TextPieceCallback& on_piece = {});

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_SESSION_H_
