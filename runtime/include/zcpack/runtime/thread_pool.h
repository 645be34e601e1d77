// ThreadPool: a fixed set of threads for data-parallel loops in the runtime.
//
// The pool is built for many short calls (a few hundred ParallelFor() calls
// per decoded token, each a few to a few hundred microseconds long): worker
// threads are started once, spin briefly between calls so that the next call
// starts without a kernel round trip, and only then block on a condition
// variable. No thread is created and nothing is allocated per call.
//
// Spinning pays only while every thread has a core of its own. A pool with
// more threads than AvailableCpus() would have idle spinners hold the cores
// that the threads with pieces need (a 1000-thread pool on 2 cores took
// seconds per call), so such a pool never spins: its workers block as soon as
// they are idle and a waiting caller yields its core. Callers that size a
// pool from a user's request cap it at AvailableCpus() (Session does).
//
// Determinism: ParallelFor() splits its range into pieces that depend only on
// (begin, end, grain, num_threads()), never on timing. Which thread runs which
// piece does vary; callers that need reproducible results make each piece's
// work independent of the others (the kernels split matrix rows, never a dot
// product).
//
// Thread-safety: ParallelFor() may be called from any thread; calls from
// different threads on one pool are serialised (one runs at a time). A call
// made from inside a piece of the same pool (nesting) runs its pieces on the
// calling thread, in order, instead of deadlocking. Construction and
// destruction are not thread-safe: destroy the pool only when no call is in
// flight.
#ifndef ZCPACK_RUNTIME_THREAD_POOL_H_
#define ZCPACK_RUNTIME_THREAD_POOL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"

namespace zcpack::runtime {

class ThreadPool {
 public:
  // How long an idle worker spins waiting for the next call before it blocks.
  // Decode issues calls back to back with short gaps of single-threaded work
  // in between; 2 ms covers those gaps without burning a core for long once
  // the program goes quiet.
  static constexpr std::chrono::microseconds kDefaultSpin{2000};

  // num_threads: threads that run pieces, the calling thread included, so
  // num_threads - 1 workers are started. 0 means AvailableCpus(). Values are
  // clamped to [1, kMaxThreads]; more than AvailableCpus() is allowed (tests
  // use it to vary the split) but turns spinning off (see above).
  explicit ThreadPool(int num_threads, std::chrono::microseconds spin = kDefaultSpin);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  // Stops and joins the workers. No ParallelFor() call may be in flight.
  ~ThreadPool();

  static constexpr int kMaxThreads = 1024;

  int num_threads() const;

  // AvailableCpus(): the CPUs this process may run on (its sched_getaffinity
  // mask, which also reflects cpusets), else the online CPUs; at least 1.
  // The same as format::AvailableCpus().
  static int AvailableCpus();

  // WorkerStackBytes(): the stack a worker thread gets: std::thread uses the
  // process's default thread attributes (pthread_getattr_default_np(): the
  // RLIMIT_STACK soft limit at startup, unless the program changed them).
  // Address space reserved per worker; its pages become resident only as
  // far as the thread's calls reach.
  static uint64_t WorkerStackBytes();

  // ParallelFor(): calls fn(piece_begin, piece_end) once for each piece of a
  // split of [begin, end) into contiguous, non-overlapping pieces that cover
  // it exactly, and returns when all have returned. Every piece starts at
  // begin + k * grain for some k (so each piece except the last holds a
  // multiple of `grain` indices; grain 0 counts as 1). The split is
  // min(ceil((end - begin) / grain), num_threads() * kPiecesPerThread)
  // pieces of as-equal-as-possible numbers of grains, in increasing order.
  // The calling thread runs pieces too. An empty range calls nothing.
  // fn must not throw.
  void ParallelFor(size_t begin, size_t end, size_t grain,
                   absl::FunctionRef<void(size_t, size_t)> fn);

  // Pieces per thread: more than one lets a thread that finishes early (or a
  // core that is less busy) take more of the work; each piece costs a claim
  // (a contended cache line) and, in the kernels, a cold start of the
  // prefetch stream, so not many more.
  static constexpr size_t kPiecesPerThread = 2;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_THREAD_POOL_H_
