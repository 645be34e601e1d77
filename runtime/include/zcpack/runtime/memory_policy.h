// How the runtime treats the pages of a mapped container. Every field is a
// hint: when the OS refuses one (an old kernel, RLIMIT_MEMLOCK, a file system
// without readahead), the model still opens and runs, and the refusal is
// reported in Model::notes().
#ifndef ZCPACK_RUNTIME_MEMORY_POLICY_H_
#define ZCPACK_RUNTIME_MEMORY_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zcpack::runtime {

// madvise(2) advice for the whole mapping.
enum class Advice {
  kNone,        // leave the kernel's default
  kSequential,  // MADV_SEQUENTIAL: aggressive readahead, early reclaim
  kRandom,      // MADV_RANDOM: no readahead (each fault reads one page)
  kWillNeed,    // MADV_WILLNEED on the whole file at open
};

struct MemoryPolicy {
  Advice advice = Advice::kNone;
  // Layers read ahead of the forward pass by a background thread, in large
  // requests at queue depth, so that a cold start reads at disk bandwidth
  // instead of faulting 4 KiB at a time. 0 turns prefetch off. The token
  // embedding and the output head are prefetched with the first and last
  // layers.
  int prefetch_layers = 4;
  // Bytes per readahead request issued by the prefetcher.
  uint64_t prefetch_chunk_bytes = uint64_t{2} << 20;
  // Fault every page in during Open() (MADV_POPULATE_READ, else a touch loop):
  // Open() then costs a full read, and the first token none.
  bool populate = false;
  // mlock(2) the mapping so that it is never evicted. Needs RLIMIT_MEMLOCK at
  // least the file size (or CAP_IPC_LOCK); otherwise a note says so.
  bool lock = false;
  // Memory budget in bytes for the weights, the ring streamed weights are read
  // into and the anonymous memory of the process and its session together
  // (memory_plan.h, "Memory budget"); 0: none. Applied when the first Session
  // is created (Session::Create() knows its own memory): when the budget holds
  // the whole file besides, the model is mapped as without one; otherwise
  // part of the weights is kept resident (mlock(2), else touched and left
  // mapped; a note says which) and the rest is read again for every token
  // into a ring of stream_slots buffers, ahead of the forward pass, with
  // O_DIRECT where the file system allows it. Only the zcpack loader takes a
  // budget. With a budget, `prefetch_layers`, `populate` and `lock` apply only
  // when the whole file fits.
  uint64_t budget_bytes = 0;
  // The process's anonymous memory besides the session's, for the budget;
  // nullopt: measured (RssAnon) when the first Session is created.
  std::optional<uint64_t> budget_process_bytes;
  // Units (layers, or the output head) the ring holds: read ahead while
  // earlier ones are computed.
  int stream_slots = 2;
};

// ParseAdvice(): "none", "sequential", "random", "willneed".
absl::StatusOr<Advice> ParseAdvice(absl::string_view name);
absl::string_view AdviceName(Advice advice);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_MEMORY_POLICY_H_
