#include "zcpack/runtime/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "zcpack/format/threads.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace zcpack::runtime {
namespace {

// One iteration of a spin-wait: tells the core (and a hyperthread sibling)
// that this thread is waiting.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// The claim word packs everything a worker needs to take a piece without
// reading the job fields first: [63:32] epoch (one per call), [31:16] the
// number of pieces, [15:0] the next unclaimed piece. kMaxThreads *
// kPiecesPerThread pieces fit in 16 bits.
constexpr uint64_t EpochOf(uint64_t word) { return word >> 32; }
constexpr uint64_t PiecesOf(uint64_t word) { return (word >> 16) & 0xffff; }
constexpr uint64_t NextOf(uint64_t word) { return word & 0xffff; }
static_assert(ThreadPool::kMaxThreads * ThreadPool::kPiecesPerThread <= 0xffff);

// The bounds of piece `piece` of `pieces` over [begin, end), which holds
// `units` grains of `grain` indices (the last possibly partial).
void PieceRange(size_t begin, size_t end, size_t grain, size_t units, size_t piece, size_t pieces,
                size_t* piece_begin, size_t* piece_end) {
  // floor(piece * units / pieces), written so that it cannot overflow.
  const size_t per_piece = units / pieces;
  const size_t extra = units % pieces;
  const size_t first_unit = piece * per_piece + piece * extra / pieces;
  const size_t last_unit = (piece + 1) * per_piece + (piece + 1) * extra / pieces;
  *piece_begin = begin + first_unit * grain;
  *piece_end = std::min(end, begin + last_unit * grain);
}

}  // namespace

struct ThreadPool::Impl {
  int num_threads = 1;
  std::chrono::microseconds spin{0};
  // More threads than CPUs: never spin (see the header).
  bool oversubscribed = false;
  std::vector<std::thread> workers;

  // Serialises callers: one job is in flight at a time.
  std::mutex call_mu;

  // The current job. Written by the caller before it publishes the claim word
  // (release); read by a thread only after it claimed a piece of this epoch
  // (acquire), and not rewritten before every claimed piece is done.
  const absl::FunctionRef<void(size_t, size_t)>* fn = nullptr;
  size_t begin = 0;
  size_t grain = 1;
  size_t units = 0;  // grains in the range; the last may be partial
  size_t end = 0;
  uint64_t epoch = 0;  // written by callers only (under call_mu)

  alignas(64) std::atomic<uint64_t> claim{0};
  alignas(64) std::atomic<size_t> done{0};
  alignas(64) std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;

  // The pool whose piece this thread is running, to detect nesting.
  static thread_local const Impl* running_in;

  // Claims and runs pieces of call `job_epoch` until none are left.
  void RunPieces(uint64_t job_epoch) {
    uint64_t word = claim.load(std::memory_order_acquire);
    for (;;) {
      if (EpochOf(word) != job_epoch || NextOf(word) >= PiecesOf(word)) return;
      if (!claim.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        continue;  // `word` was reloaded
      }
      size_t piece_begin = 0;
      size_t piece_end = 0;
      PieceRange(begin, end, grain, units, NextOf(word), PiecesOf(word), &piece_begin, &piece_end);
      (*fn)(piece_begin, piece_end);
      done.fetch_add(1, std::memory_order_release);
      word = claim.load(std::memory_order_acquire);
    }
  }

  // Returns the epoch of the next call after `seen`, or `seen` when stopping.
  uint64_t WaitForCall(uint64_t seen) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point spin_until = Clock::now() + spin;
    for (uint32_t i = 1; spin.count() > 0; ++i) {
      const uint64_t current = EpochOf(claim.load(std::memory_order_acquire));
      if (current != seen) return current;
      if (stop.load(std::memory_order_relaxed)) return seen;
      CpuRelax();
      if (i % 256 == 0 && Clock::now() >= spin_until) break;
    }
    // Block. A caller stores the claim word and then reads `sleepers` (both
    // seq_cst); this thread increments `sleepers` and then reads the claim
    // word, so either it sees the new call or the caller sees a sleeper and
    // notifies under the mutex.
    std::unique_lock<std::mutex> lock(sleep_mu);
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    uint64_t current = EpochOf(claim.load(std::memory_order_seq_cst));
    while (current == seen && !stop.load(std::memory_order_seq_cst)) {
      sleep_cv.wait(lock);
      current = EpochOf(claim.load(std::memory_order_seq_cst));
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return current;
  }

  void WorkerLoop() {
    running_in = this;
    uint64_t seen = 0;
    for (;;) {
      const uint64_t next = WaitForCall(seen);
      if (next == seen) return;  // stopping
      seen = next;
      RunPieces(seen);
    }
  }
};

thread_local const ThreadPool::Impl* ThreadPool::Impl::running_in = nullptr;

ThreadPool::ThreadPool(int num_threads, std::chrono::microseconds spin)
    : impl_(std::make_unique<Impl>()) {
  const int cpus = AvailableCpus();
  if (num_threads <= 0) num_threads = cpus;
  impl_->num_threads = std::clamp(num_threads, 1, kMaxThreads);
  impl_->oversubscribed = impl_->num_threads > cpus;
  impl_->spin = impl_->oversubscribed ? std::chrono::microseconds(0) : spin;
  impl_->workers.reserve(impl_->num_threads - 1);
  for (int i = 1; i < impl_->num_threads; ++i) {
    impl_->workers.emplace_back([impl = impl_.get()] { impl->WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->sleep_mu);
    impl_->stop.store(true, std::memory_order_seq_cst);
  }
  impl_->sleep_cv.notify_all();
  for (std::thread& worker : impl_->workers) worker.join();
}

int ThreadPool::num_threads() const { return impl_->num_threads; }

int ThreadPool::AvailableCpus() { return format::AvailableCpus(); }

uint64_t ThreadPool::WorkerStackBytes() {
  pthread_attr_t attr;
  if (pthread_getattr_default_np(&attr) != 0) return 0;
  size_t bytes = 0;
  if (pthread_attr_getstacksize(&attr, &bytes) != 0) bytes = 0;
  pthread_attr_destroy(&attr);
  return bytes;
}

void ThreadPool::ParallelFor(size_t begin, size_t end, size_t grain,
                             absl::FunctionRef<void(size_t, size_t)> fn) {
  if (end <= begin) return;
  Impl& impl = *impl_;
  if (grain == 0) grain = 1;
  const size_t count = end - begin;
  const size_t units = count / grain + (count % grain != 0 ? 1 : 0);
  const size_t pieces =
      std::min(units, static_cast<size_t>(impl.num_threads) * kPiecesPerThread);

  if (pieces == 1 || impl.workers.empty() || Impl::running_in == &impl) {
    // Same pieces, run here in order: one piece, no workers, or nesting.
    for (size_t piece = 0; piece < pieces; ++piece) {
      size_t piece_begin = 0;
      size_t piece_end = 0;
      PieceRange(begin, end, grain, units, piece, pieces, &piece_begin, &piece_end);
      fn(piece_begin, piece_end);
    }
    return;
  }

  std::lock_guard<std::mutex> call_lock(impl.call_mu);
  impl.fn = &fn;
  impl.begin = begin;
  impl.end = end;
  impl.grain = grain;
  impl.units = units;
  impl.done.store(0, std::memory_order_relaxed);
  impl.epoch = (impl.epoch + 1) & 0xffffffffu;
  if (impl.epoch == 0) impl.epoch = 1;  // 0 is the workers' initial "seen"
  impl.claim.store((impl.epoch << 32) | (uint64_t{pieces} << 16), std::memory_order_seq_cst);
  if (impl.sleepers.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(impl.sleep_mu); }
    impl.sleep_cv.notify_all();
  }

  const Impl* const outer = Impl::running_in;
  Impl::running_in = &impl;
  impl.RunPieces(impl.epoch);
  Impl::running_in = outer;

  // Wait for pieces other threads claimed. Yield now and then: on a busy
  // machine the thread holding the last piece may need this core; with more
  // threads than cores it surely does, so yield every time.
  const uint32_t yield_every = impl.oversubscribed ? 1 : 1024;
  for (uint32_t i = 1; impl.done.load(std::memory_order_acquire) != pieces; ++i) {
    CpuRelax();
    if (i % yield_every == 0) std::this_thread::yield();
  }
}

}  // namespace zcpack::runtime
