// Memory plan: what a model will hold in memory, worked out before anything
// is allocated, from the same size functions the Session and the loaders
// allocate with (so a plan cannot drift from the code it describes).
//
// Three parts, each in bytes:
//   - SessionMemory: the anonymous memory of one Session once its KV cache is
//     full (every position of the context evaluated) and its largest batch
//     has gone through Evaluate(): the KV cache (binary16), the RoPE tables,
//     the logits, the batch's activations, the attention buffers of every
//     thread, the kernels' int8 activations, and the address space reserved
//     for the pool's thread stacks (reserved, not resident: reported apart).
//   - LoaderMemory: what each Loader holds for the weights: anonymous copies
//     (the copying loaders, with the classic loader's peak inside Open()),
//     or file-backed pages of the mapping (the mapped loaders: shared with
//     every process that maps the file, and reclaimable).
//   - WeightsFootprint: the file, its parameters and bits per weight, and the
//     bytes one decoded token reads (the physical limit of decode speed is
//     memory bandwidth / these bytes).
// What a plan leaves out: the process itself (code, libraries, the parsed
// manifest; a caller adds a measured baseline, as `zcpack plan` does), the
// tokenizer (decoded on first use), and the memory allocators keep beyond
// what is asked of them.
//
// Thread-safety: the functions are pure apart from reading /proc and the
// CPU count; any thread may call them.
#ifndef ZCPACK_RUNTIME_MEMORY_PLAN_H_
#define ZCPACK_RUNTIME_MEMORY_PLAN_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/runtime/model.h"

namespace zcpack::runtime {

// AvailableMemoryBytes(): memory the system can give without swapping:
// MemAvailable from /proc/meminfo, else all physical memory, else
// UINT64_MAX. What Session::Create() checks a context against.
uint64_t AvailableMemoryBytes();

// DefaultContext(): the context a SessionOptions::max_context of 0 means:
// min(max_position_embeddings, 2048), or 2048 when the model records none.
int DefaultContext(const format::ModelInfo& model);

// SessionThreads(): the threads a session computes with for a requested
// count (SessionOptions::threads): 0 means AvailableCpus(); more than that
// is capped at it; at least 1.
int SessionThreads(int requested);

struct MemoryPlanOptions {
  // KV cache positions (SessionOptions::max_context); 0: DefaultContext().
  int context = 0;
  // Tokens of the largest single Evaluate() call: a prompt evaluated at once
  // (Generate() and `zcpack run` evaluate the whole prompt in one call).
  // 0: the whole context. At most the context.
  int batch = 0;
  // As SessionOptions::threads (SessionThreads()).
  int threads = 0;
};

// SessionMemory: one Session's anonymous memory at its peak (see the file
// comment), in bytes.
struct SessionMemory {
  int context = 0;  // after defaults
  int batch = 0;
  int threads = 0;
  uint64_t kv_cache_bytes = 0;     // K and V, binary16, every position
  uint64_t rope_tables_bytes = 0;  // cos and sin per position
  uint64_t logits_bytes = 0;
  uint64_t small_buffers_bytes = 0;       // a norm's weights, biases, a score row per head
  uint64_t batch_scratch_bytes = 0;       // the batch's activations (x, q, k, v, ffn, ...)
  uint64_t attention_scratch_bytes = 0;   // per-thread attention buffers, all threads
  uint64_t activation_scratch_bytes = 0;  // int8 activations and float row buffers of the kernels
  // The sum of the above: resident once the context is full.
  uint64_t total_bytes = 0;
  // Address space of the pool's worker stacks ((threads - 1) x the stack size
  // a new thread gets): reserved, resident only as far as a thread's calls
  // reach, so not part of total_bytes.
  uint64_t thread_stacks_reserved_bytes = 0;
};

// PlanSessionMemory(): the memory of a Session on `model` with `options`.
// InvalidArgument for a context or batch that is not positive after
// defaults, or a batch longer than the context; OutOfRange when a size does
// not fit in 64 bits. Does not check the context against the model's
// max_position_embeddings (CheckContextLength() does).
absl::StatusOr<SessionMemory> PlanSessionMemory(const Model& model,
                                                const MemoryPlanOptions& options);

// LoaderMemory: what a loader holds for the weights, in bytes.
struct LoaderMemory {
  Loader loader = Loader::kZcpack;
  // Anonymous memory at the peak of Model::Open(): the classic loader's
  // whole-file buffer plus its per-tensor copies; the copies alone for pread
  // and direct; 0 for the mapped loaders.
  uint64_t open_peak_anon_bytes = 0;
  // Anonymous memory the weights hold after Open() returns (the copies).
  uint64_t weights_anon_bytes = 0;
  // File-backed pages mapped once a forward pass has read every weight: the
  // whole file for the mapped loaders (page cache, shared and reclaimable);
  // only the header and manifest for the copying ones.
  uint64_t weights_file_bytes = 0;
  // Whether the weights are file-backed: a mapped loader still runs when
  // they do not all fit in memory (pages are re-read from disk), a copying
  // loader does not.
  bool mapped = false;
};

// PlanLoaderMemory(): `loader`'s memory for `container`, from its tensor
// table and the loaders' own allocation sizes.
LoaderMemory PlanLoaderMemory(const format::Container& container, Loader loader);

// WeightsFootprint: the weights themselves.
struct WeightsFootprint {
  uint64_t file_bytes = 0;
  uint64_t tensor_bytes = 0;  // the tensors' bytes, padding excluded
  uint64_t parameters = 0;    // elements of every tensor
  double bits_per_weight = 0;  // 8 * tensor_bytes / parameters
  // Bytes one decoding step reads: every layer's tensors, the final norm,
  // the output head and one row of the token embedding (all of it when the
  // head is the tied embedding).
  uint64_t token_read_bytes = 0;
};

WeightsFootprint PlanWeights(const Model& model);

// ProcessAnonBytes(): this process's resident anonymous memory now (RssAnon
// of /proc/self/status), in bytes; 0 where /proc does not say.
uint64_t ProcessAnonBytes();

// Memory budget (MemoryPolicy::budget_bytes): how a mapped model runs in
// less memory than its file. The budget holds the anonymous memory (the
// process and its session, as measured and planned above, plus
// kBudgetMarginBytes), a ring of buffers that streamed weights are read into,
// and the weights kept resident (locked, else touched, in the mapping). The
// weights that do not fit are read from the file again for every token.
//
// Units: each decoder layer's byte range and the output head's (the token
// embedding when tied), the ranges one forward pass reads in that order. The
// output norm is always resident. Of the token embedding only one row per
// token is read, through the mapping; the margin covers those pages.
//
// Which units stay resident: the output head first when that leaves more
// bytes resident (it is read whole every token), then as many layers as fit,
// spread evenly over the depth (layer l is resident when
// floor((l + 1) R / L) > floor(l R / L) for R of L resident). Spread rather
// than a prefix, so that the reader streams the next unit while a resident
// layer computes, instead of idling through a prefix of resident layers and
// then making the forward pass wait for every streamed one.
inline constexpr uint64_t kBudgetMarginBytes = uint64_t{64} << 20;

struct BudgetPlan {
  uint64_t budget_bytes = 0;
  uint64_t anon_bytes = 0;    // the process and the session (given)
  uint64_t margin_bytes = 0;  // kBudgetMarginBytes
  uint64_t file_bytes = 0;
  // false: the budget holds the anonymous part, the margin and the whole
  // file, and the model is mapped as without a budget (nothing below).
  bool streams = false;
  int ring_slots = 0;
  uint64_t ring_bytes = 0;      // ring_slots x the largest streamed unit
  uint64_t resident_bytes = 0;  // weights kept in memory
  // Bytes read from the file per token: the streamed units' sizes.
  uint64_t streamed_bytes_per_token = 0;
  std::vector<int> streamed_layers;  // ascending
  bool output_streamed = false;
  // anon + margin + ring + resident: at most the budget.
  uint64_t planned_bytes() const {
    return anon_bytes + margin_bytes + ring_bytes + resident_bytes;
  }
};

// PlanMemoryBudget(): how `model` runs within `budget_bytes` next to
// `anon_bytes` of anonymous memory, with a ring of `ring_slots` units.
// ResourceExhausted, naming the file and the figures, when the budget cannot
// hold the anonymous part, the margin, the output norm and the smallest ring
// (ring_slots x the largest layer, the head resident, or x the head
// streamed); InvalidArgument for ring_slots < 1.
absl::StatusOr<BudgetPlan> PlanMemoryBudget(const Model& model, uint64_t budget_bytes,
                                            uint64_t anon_bytes, int ring_slots);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_MEMORY_PLAN_H_
