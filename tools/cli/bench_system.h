// The operating-system probes behind `zcpack bench`: page-cache eviction and
// residency, /proc memory counters, read timing, memory cgroups (v1 and v2)
// for the memory-budget row, and child processes sampled every millisecond.
//
// Linux only. Every function reports failure as a status or a note; none
// exits or throws. Not thread-safe unless stated (the benchmark drives them
// from one thread).
#ifndef ZCPACK_TOOLS_CLI_BENCH_SYSTEM_H_
#define ZCPACK_TOOLS_CLI_BENCH_SYSTEM_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tools/cli/units.h"

namespace zcpack::cli::bench {

// MonotonicNanos(): CLOCK_MONOTONIC in nanoseconds; the same clock in every
// process, so a child's timestamps line up with its parent's samples.
int64_t MonotonicNanos();

// EvictFromPageCache(): fsync(2) the file, then posix_fadvise(DONTNEED) over
// all of it, so that its clean pages leave the page cache. Pages that some
// process has mapped and touched stay (the kernel does not drop mapped
// pages); check with ResidentFraction(). Errors carry errno and the path.
absl::Status EvictFromPageCache(const std::string& path);

// ResidentFraction(): the fraction (0..1) of the file's pages in the page
// cache, from mincore(2) over a fresh read-only mapping (which faults
// nothing in). 1 for an empty file.
absl::StatusOr<double> ResidentFraction(const std::string& path);

// ReadWholeFile(): read(2) the whole file front to back in 1 MiB requests
// (as `cat FILE > /dev/null` does, with POSIX_FADV_SEQUENTIAL) and return the
// seconds it took. Leaves the file in the page cache if it fits.
absl::StatusOr<double> ReadWholeFile(const std::string& path);

// ReadWholeFileParallel(): the same, but `threads` threads pread(2) the file
// in `chunk_bytes` pieces taken in order from a shared cursor: many requests
// in flight, as a prefetcher keeps them. Returns the seconds it took.
absl::StatusOr<double> ReadWholeFileParallel(const std::string& path, int threads,
                                             uint64_t chunk_bytes);

// The system-wide memory figures of /proc/meminfo, in bytes.
struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};
absl::StatusOr<MemInfo> ReadMemInfo();

// One reading of /proc/PID/status, in KiB. `valid` is false when the text
// had no VmRSS line (a zombie, a kernel thread, or an empty read).
struct ProcMemory {
  uint64_t rss_anon_kib = 0;   // RssAnon: private anonymous pages
  uint64_t rss_file_kib = 0;   // RssFile: file-backed pages mapped
  uint64_t rss_shmem_kib = 0;  // RssShmem
  uint64_t vm_rss_kib = 0;     // VmRSS = RssAnon + RssFile + RssShmem
  uint64_t vm_hwm_kib = 0;     // VmHWM: the kernel's peak of VmRSS
  bool valid = false;
};
ProcMemory ParseProcStatus(absl::string_view text);

// The byte-size helpers every command uses (units.h), by the names bench's
// code has always called them.
using ::zcpack::cli::FormatBytes;
using ::zcpack::cli::ParseByteSize;

// ParseMemoryBudget(): the value of --memory-budget (run, bench): a byte size
// as ParseByteSize() reads it, above 0; "" (the flag not given) is 0, no
// budget. InvalidArgument naming the flag otherwise.
absl::StatusOr<uint64_t> ParseMemoryBudget(absl::string_view text);

// MemoryCgroup: a fresh memory cgroup with a hard limit, for running one
// process under a memory budget. Create() prefers the cgroup v1 memory
// hierarchy (memory.limit_in_bytes, plus memory.memsw.limit_in_bytes where
// swap accounting exists, so that swap cannot hide an overrun), else cgroup
// v2 (memory.max and memory.swap.max = 0) where the memory controller is
// enabled or can be enabled at the unified root. The destructor removes the
// cgroup (rmdir); its member processes must have exited by then.
class MemoryCgroup {
 public:
  struct Stats {
    uint64_t peak_bytes = 0;  // memory.max_usage_in_bytes (v1) / memory.peak (v2)
    uint64_t failcnt = 0;     // memory.failcnt (v1) / memory.events "max" (v2)
    uint64_t oom_kills = 0;   // "oom_kill" in memory.oom_control (v1) / memory.events (v2)
  };

  // Create(): Unavailable, with a sentence saying why, when no memory
  // controller is mounted or the hierarchy is not writable (not root, a
  // read-only /sys/fs/cgroup, a v2 root without the memory controller).
  static absl::StatusOr<std::unique_ptr<MemoryCgroup>> Create(uint64_t limit_bytes);
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;
  ~MemoryCgroup();

  // AddProcess(): moves `pid` into the cgroup (write to cgroup.procs).
  absl::Status AddProcess(pid_t pid) const;
  Stats ReadStats() const;
  int version() const { return version_; }
  const std::string& path() const { return path_; }
  uint64_t limit_bytes() const { return limit_bytes_; }
  // One line: version, path and the limit files written.
  const std::string& description() const { return description_; }

 private:
  MemoryCgroup(int version, std::string path, uint64_t limit_bytes, std::string description)
      : version_(version),
        path_(std::move(path)),
        limit_bytes_(limit_bytes),
        description_(std::move(description)) {}
  int version_;
  std::string path_;
  uint64_t limit_bytes_;
  std::string description_;
};

// One reading of a sampled process's memory, for the timeline.
struct MemorySample {
  int64_t t_ns = 0;  // MonotonicNanos() when read
  uint64_t anon_kib = 0;
  uint64_t file_kib = 0;
  uint64_t rss_kib = 0;
};

// What RunSampled() saw of one process.
struct SampledProcess {
  int exit_code = -1;  // the exit status; -1 when a signal ended it
  int signal = 0;      // the signal that ended it, or 0
  std::string stdout_text;
  std::string stderr_text;
  // Peaks over the samples; VmHWM is the kernel's own peak of VmRSS.
  uint64_t peak_anon_kib = 0, peak_file_kib = 0, peak_rss_kib = 0, hwm_kib = 0;
  long major_faults = 0, minor_faults = 0;  // wait4() rusage
  int samples = 0;
  double max_gap_ms = 0;  // the longest time between two samples
  int64_t exec_ns = 0;    // MonotonicNanos() once its exec had succeeded
  std::vector<MemorySample> timeline;  // every sample, when asked for
};

// RunSampled(): runs `exe args...` as a child with stdout and stderr
// captured. With `cgroup`, the child joins it before exec (it waits on a pipe
// until this process has written its pid into cgroup.procs). From the moment
// its exec succeeded (so that no sample sees the pre-exec copy of this
// process) until it exits, reads /proc/PID/status every millisecond for the
// peaks and, with `keep_timeline`, the timeline. Errors: fork, pipe or exec
// failures, and a cgroup that refuses the process; the child's own failure
// is not an error (see exit_code and signal).
absl::StatusOr<SampledProcess> RunSampled(const std::string& exe,
                                          const std::vector<std::string>& args,
                                          const MemoryCgroup* cgroup, bool keep_timeline);

}  // namespace zcpack::cli::bench

#endif  // ZCPACK_TOOLS_CLI_BENCH_SYSTEM_H_
