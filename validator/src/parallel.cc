#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
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

}  // namespace zcpack::validator::internal
