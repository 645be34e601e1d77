// Internal: the thread pool of the validator's data passes (checksums,
// padding, source comparison).
#ifndef ZCPACK_VALIDATOR_SRC_PARALLEL_H_
#define ZCPACK_VALIDATOR_SRC_PARALLEL_H_

#include <cstddef>
#include <functional>

#include "absl/status/status.h"

namespace zcpack::validator::internal {

// A function that processes item k with one thread's own state.
using ItemFn = std::function<absl::Status(size_t k)>;

// ParallelFor(): processes items [0, count) in index order of hand-out on
// min(threads, count) threads, the calling thread included (at least one).
// `make_worker` is called once on each thread and returns that thread's
// ItemFn, so scratch buffers live in its captures. After the first failure no
// further item is started; that status is returned once all threads have
// joined. *threads_used, when given, receives the number of threads.
absl::Status ParallelFor(size_t count, int threads, const std::function<ItemFn()>& make_worker,
                         int* threads_used = nullptr);

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_PARALLEL_H_
