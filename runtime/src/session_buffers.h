// Internal: the sizes of every buffer a Session allocates, in elements, in
// one place. Session sizes its buffers with these functions and
// PlanSessionMemory() (memory_plan.h) counts their bytes with the same ones,
// so the plan cannot drift from what is allocated.
//
// Every function multiplies with overflow checks and returns nullopt when a
// count does not fit in 64 bits (a context no machine could hold); callers
// that allocate check the plan first (Session::Create()).
#ifndef ZCPACK_RUNTIME_SRC_SESSION_BUFFERS_H_
#define ZCPACK_RUNTIME_SRC_SESSION_BUFFERS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>

#include <vector>

#include "zcpack/format/container_reader.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/runtime/model.h"

namespace zcpack::runtime::internal {

// The product of `factors`, or nullopt if it does not fit in 64 bits.
std::optional<uint64_t> CheckedProduct(std::initializer_list<uint64_t> factors);

// The sum of `terms`, or nullopt if any is nullopt or the sum overflows.
std::optional<uint64_t> CheckedSum(std::initializer_list<std::optional<uint64_t>> terms);

// What the Session constructor allocates for a context of `context`
// positions, whatever is evaluated later.
struct SessionBufferSizes {
  // binary16 elements in each of the K and V caches:
  // [layer][kv_head][position][head_dim]. Allocated untouched (new[]), so
  // resident only as positions fill.
  uint64_t kv_cache = 0;
  // floats in each of the RoPE cos and sin tables: [position][head_dim / 2].
  uint64_t rope_table = 0;
  uint64_t logits = 0;        // vocab_size floats
  uint64_t norm_weights = 0;  // hidden_size floats: a norm's weights, decoded
  uint64_t bias_q = 0;        // num_heads * head_dim floats
  uint64_t bias_kv = 0;       // num_kv_heads * head_dim floats, each of K and V
  uint64_t scores = 0;        // num_heads * context floats
};
std::optional<SessionBufferSizes> SessionBuffersFor(const format::ModelInfo& model,
                                                    uint64_t context);

// What Session::EnsureScratch(n) holds for a batch of `n` tokens, in floats
// per buffer.
struct BatchScratchSizes {
  uint64_t hidden = 0;  // each of x_, xn_, ffn_out_: n * hidden_size
  uint64_t q = 0;       // each of q_, attn_: n * num_heads * head_dim
  uint64_t kv = 0;      // each of k_, v_: n * num_kv_heads * head_dim
  uint64_t ffn = 0;     // each of ffn_gate_, ffn_up_: n * intermediate_size
};
std::optional<BatchScratchSizes> BatchScratchFor(const format::ModelInfo& model, uint64_t n);

// Batches of fewer tokens than this (and every decoding step) attend one
// query at a time with llama.cpp's flash-attention arithmetic; larger ones go
// through two matrix products. llama.cpp's own threshold for its tiled path.
inline constexpr uint64_t kOnlineAttentionBatch = 64;

// The thread-local buffers of one thread running Session::Attention() for a
// batch of `n` tokens that ends with `total` keys in the cache. Sizes in
// elements; a thread keeps the largest it has seen.
struct AttentionScratchSizes {
  // n < kOnlineAttentionBatch: one query (floats) and scores, running
  // maxima and sums over the keys (floats, `total` each).
  uint64_t query = 0;
  uint64_t per_key = 0;
  // n >= kOnlineAttentionBatch: the head's keys and values widened to float
  // (total x head_dim each), the scores (n x total) and queries (n x head_dim).
  uint64_t widened = 0;
  uint64_t batch_scores = 0;
  uint64_t batch_queries = 0;
  // binary16 elements of the rounding buffer (a query, or a row of
  // probabilities).
  uint64_t half = 0;
};
std::optional<AttentionScratchSizes> AttentionScratchFor(const format::ModelInfo& model, uint64_t n,
                                                         uint64_t total);

// The byte ranges a memory budget keeps resident or streams (memory_plan.h,
// "Memory budget"): every layer's, the output head's (the token embedding's
// when tied) and the output norm's.
struct BudgetUnits {
  std::vector<format::ByteRange> layers;
  format::ByteRange output;
  format::ByteRange output_norm;
};
BudgetUnits BudgetUnitsOf(const Model& model);

// ResidentInSpread(): whether `layer` is one of `resident` of `layers`
// spread evenly (floor((layer + 1) resident / layers) > floor(layer resident
// / layers)).
bool ResidentInSpread(int layer, int resident, int layers);

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_SESSION_BUFFERS_H_
