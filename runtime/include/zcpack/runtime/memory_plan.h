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

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_MEMORY_PLAN_H_
