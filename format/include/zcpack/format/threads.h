// How many threads a piece of zcpack work uses. One rule for every module:
// a request of 0 means one thread per available CPU, and a request for more
// threads than CPUs is capped at the CPU count (extra threads only wait for a
// core, and each holds its own buffers: synth's are 6 MiB a thread).
//
// Thread-safe; no state.
#ifndef ZCPACK_FORMAT_THREADS_H_
#define ZCPACK_FORMAT_THREADS_H_

namespace zcpack::format {

// The largest thread count a command line may ask for (--threads). Larger
// requests are usage errors rather than silently capped: they are typos.
inline constexpr int kMaxRequestedThreads = 1024;

// AvailableCpus(): the CPUs this process may run on (its sched_getaffinity
// mask, which also reflects cpusets), else the online CPUs; at least 1.
int AvailableCpus();

// ThreadsFor(): the threads to use for a request of `requested` threads:
// AvailableCpus() when requested <= 0, else min(requested, AvailableCpus()).
// Always at least 1.
int ThreadsFor(int requested);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_THREADS_H_
