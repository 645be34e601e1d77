// Internal: the thread pool of the validator's data passes (checksums,
// padding, source comparison).
#ifndef ZCPACK_VALIDATOR_SRC_PARALLEL_H_
#define ZCPACK_VALIDATOR_SRC_PARALLEL_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "zcpack/validator/verify.h"

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

// ByteProgress: the bytes a data pass has processed, reported through
// VerifyOptions::progress. Add() may be called from any worker thread; the
// callback runs at most every 100 ms and never on two threads at once.
class ByteProgress {
 public:
  ByteProgress(const std::function<void(const VerifyProgress&)>& callback, std::string stage,
               uint64_t bytes_total);
  void Add(uint64_t bytes);
  // Finish(): one last report (all bytes done or not), whatever the time.
  void Finish();

 private:
  void Report(bool final_call);
  const std::function<void(const VerifyProgress&)>& callback_;
  const std::string stage_;
  const uint64_t total_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> done_{0};
  std::atomic<int64_t> last_ms_{-1000};
  std::mutex mu_;
};

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_PARALLEL_H_
