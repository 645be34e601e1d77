#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace zcpack::validator::internal {

absl::Status ParallelFor(size_t count, int threads, const std::function<ItemFn()>& make_worker,
                         int* threads_used) {
  const size_t pool_size =
      std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), count));
  if (threads_used != nullptr) *threads_used = static_cast<int>(pool_size);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status failure;
  auto run = [&] {
    const ItemFn process = make_worker();
    for (size_t k = next.fetch_add(1); k < count && !failed; k = next.fetch_add(1)) {
      if (absl::Status s = process(k); !s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failure.ok()) failure = std::move(s);
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < pool_size; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  return failure;
}

ByteProgress::ByteProgress(const std::function<void(const VerifyProgress&)>& callback,
                           std::string stage, uint64_t bytes_total)
    : callback_(callback),
      stage_(std::move(stage)),
      total_(bytes_total),
      start_(std::chrono::steady_clock::now()) {}

void ByteProgress::Add(uint64_t bytes) {
  done_.fetch_add(bytes);
  if (callback_) Report(false);
}

void ByteProgress::Finish() {
  if (callback_) Report(true);
}

void ByteProgress::Report(bool final_call) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t ms = static_cast<int64_t>(seconds * 1000);
  if (!final_call) {
    int64_t last = last_ms_.load();
    if (ms - last < 100 || !last_ms_.compare_exchange_strong(last, ms)) return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  callback_({stage_, done_.load(), total_, seconds});
}

}  // namespace zcpack::validator::internal
