#include "tools/cli/bench_system.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/cli/interrupt.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli::bench {
namespace {

using format::ErrnoError;

bool ReadSmallFile(const std::string& path, std::string* text) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *text = ss.str();
  return true;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status WriteControlFile(const std::string& path, absl::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, path, "open");
  format::ScopedFd owned(fd);
  const ssize_t n = ::write(fd, value.data(), value.size());
  if (n < 0) return ErrnoError(errno, path, absl::StrCat("write '", value, "'"));
  return absl::OkStatus();
}

// The value of `key` in a "key value" per line file (memory.events,
// memory.oom_control), or 0.
uint64_t KeyedValue(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (f.size() == 2 && f[0] == key && absl::SimpleAtoi(f[1], &v)) return v;
  }
  return 0;
}

uint64_t NumberIn(const std::string& path) {
  std::string text;
  uint64_t v = 0;
  if (ReadSmallFile(path, &text)) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v);
  return v;
}

// Where the cgroup hierarchies are mounted, from /proc/self/mountinfo.
struct CgroupMounts {
  std::string v1_memory;  // a cgroup (v1) mount with the memory controller
  std::string v2;         // the cgroup2 (unified) mount
};

CgroupMounts FindCgroupMounts() {
  CgroupMounts mounts;
  std::string text;
  if (!ReadSmallFile("/proc/self/mountinfo", &text)) return mounts;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
    const std::vector<absl::string_view> halves = absl::StrSplit(line, absl::MaxSplits(" - ", 1));
    if (halves.size() != 2) continue;
    const std::vector<absl::string_view> left = absl::StrSplit(halves[0], ' ');
    const std::vector<absl::string_view> right = absl::StrSplit(halves[1], ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    if (right[0] == "cgroup" && mounts.v1_memory.empty()) {
      for (absl::string_view option : absl::StrSplit(right[2], ',')) {
        if (option == "memory") mounts.v1_memory = std::string(left[4]);
      }
    } else if (right[0] == "cgroup2" && mounts.v2.empty()) {
      mounts.v2 = std::string(left[4]);
    }
  }
  return mounts;
}

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("zcpack-bench-", ::getpid(), "-", counter++);
}

}  // namespace

int64_t MonotonicNanos() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

absl::Status EvictFromPageCache(const std::string& path) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  // Dirty pages cannot be dropped: write them back first (a freshly
  // converted file may still be dirty).
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, path, "fsync");
  const int e = ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  if (e != 0) return ErrnoError(e, path, "posix_fadvise(DONTNEED)");
  return absl::OkStatus();
}

absl::StatusOr<double> ResidentFraction(const std::string& path) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t size, format::FileSize(fd.get(), path));
  if (size == 0) return 1.0;
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return ErrnoError(errno, path, "mmap");
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  const int rc = ::mincore(base, size, vec.data());
  const int e = errno;
  ::munmap(base, size);
  if (rc != 0) return ErrnoError(e, path, "mincore");
  uint64_t resident = 0;
  for (unsigned char v : vec) resident += v & 1u;
  return static_cast<double>(resident) / static_cast<double>(vec.size());
}

absl::StatusOr<double> ReadWholeFile(const std::string& path) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buffer(size_t{1} << 20);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, path, "read");
    if (n == 0) break;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::StatusOr<double> ReadWholeFileParallel(const std::string& path, int threads,
                                             uint64_t chunk_bytes) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t size, format::FileSize(fd.get(), path));
  std::atomic<uint64_t> cursor{0};
  std::atomic<int> error{0};
  auto worker = [&] {
    // A descriptor per thread: one shared file's readahead state would see
    // the interleaved offsets as random access and stop reading ahead.
    auto own = format::OpenReadOnly(path);
    if (!own.ok()) {
      error.store(EBADF);
      return;
    }
    const int own_fd = own->get();
    std::vector<char> buffer(chunk_bytes);
    for (;;) {
      const uint64_t offset = cursor.fetch_add(chunk_bytes);
      if (offset >= size || error.load() != 0) return;
      const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, size - offset));
      size_t done = 0;
      while (done < want) {
        const ssize_t n = ::pread(own_fd, buffer.data() + done, want - done,
                                  static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          error.store(n < 0 ? errno : EIO);
          return;
        }
        done += static_cast<size_t>(n);
      }
    }
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int i = 0; i < std::max(threads, 1); ++i) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  if (error.load() != 0) return ErrnoError(error.load(), path, "pread");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::StatusOr<MemInfo> ReadMemInfo() {
  std::string text;
  if (!ReadSmallFile("/proc/meminfo", &text)) {
    return absl::UnavailableError("/proc/meminfo: cannot read");
  }
  MemInfo info;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &kib)) continue;
    if (f[0] == "MemTotal:") info.total = kib << 10;
    if (f[0] == "MemAvailable:") info.available = kib << 10;
  }
  if (info.total == 0) return absl::UnavailableError("/proc/meminfo: no MemTotal");
  return info;
}

ProcMemory ParseProcStatus(absl::string_view text) {
  ProcMemory m;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, colon);
    uint64_t* field = key == "VmRSS"     ? &m.vm_rss_kib
                      : key == "VmHWM"   ? &m.vm_hwm_kib
                      : key == "RssAnon" ? &m.rss_anon_kib
                      : key == "RssFile" ? &m.rss_file_kib
                      : key == "RssShmem" ? &m.rss_shmem_kib
                                          : nullptr;
    if (field == nullptr) continue;
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    absl::ConsumeSuffix(&value, " kB");
    if (absl::SimpleAtoi(value, field) && field == &m.vm_rss_kib) m.valid = true;
  }
  return m;
}

absl::StatusOr<uint64_t> ParseMemoryBudget(absl::string_view text) {
  if (text.empty()) return 0;
  absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--memory-budget: ", bytes.status().message()));
  }
  if (*bytes == 0) {
    return absl::InvalidArgumentError("--memory-budget: give a size above 0 (or leave it out)");
  }
  return bytes;
}

absl::StatusOr<std::unique_ptr<MemoryCgroup>> MemoryCgroup::Create(uint64_t limit_bytes) {
  const CgroupMounts mounts = FindCgroupMounts();
  if (!mounts.v1_memory.empty()) {
    const std::string path = absl::StrCat(mounts.v1_memory, "/", UniqueName());
    if (::mkdir(path.c_str(), 0755) != 0) {
      return absl::UnavailableError(absl::StrCat("cgroup v1 memory hierarchy at ", mounts.v1_memory,
                                                 " is not writable: mkdir ", path, ": ",
                                                 std::strerror(errno)));
    }
    std::unique_ptr<MemoryCgroup> group(new MemoryCgroup(1, path, limit_bytes, ""));
    const std::string limit = absl::StrCat(limit_bytes);
    ZCPACK_RETURN_IF_ERROR(WriteControlFile(path + "/memory.limit_in_bytes", limit));
    group->description_ = absl::StrCat("cgroup v1 ", path, ": memory.limit_in_bytes=", limit);
    // memsw (memory + swap) must be >= the memory limit: set after it.
    if (FileExists(path + "/memory.memsw.limit_in_bytes")) {
      ZCPACK_RETURN_IF_ERROR(WriteControlFile(path + "/memory.memsw.limit_in_bytes", limit));
      absl::StrAppend(&group->description_, ", memory.memsw.limit_in_bytes=", limit);
    } else {
      absl::StrAppend(&group->description_, " (no swap accounting: memsw absent)");
    }
    return group;
  }
  if (mounts.v2.empty()) {
    return absl::UnavailableError("no cgroup memory controller is mounted (neither v1 nor v2)");
  }
  std::string controllers;
  ReadSmallFile(mounts.v2 + "/cgroup.controllers", &controllers);
  if (!absl::StrContains(controllers, "memory")) {
    return absl::UnavailableError(absl::StrCat("cgroup v2 at ", mounts.v2,
                                               " has no memory controller (cgroup.controllers: '",
                                               absl::StripAsciiWhitespace(controllers), "')"));
  }
  std::string subtree;
  ReadSmallFile(mounts.v2 + "/cgroup.subtree_control", &subtree);
  if (!absl::StrContains(subtree, "memory")) {
    if (absl::Status s = WriteControlFile(mounts.v2 + "/cgroup.subtree_control", "+memory");
        !s.ok()) {
      return absl::UnavailableError(absl::StrCat("cgroup v2: cannot enable the memory controller: ",
                                                 s.message()));
    }
  }
  const std::string path = absl::StrCat(mounts.v2, "/", UniqueName());
  if (::mkdir(path.c_str(), 0755) != 0) {
    return absl::UnavailableError(absl::StrCat("cgroup v2 at ", mounts.v2, " is not writable: mkdir ",
                                               path, ": ", std::strerror(errno)));
  }
  std::unique_ptr<MemoryCgroup> group(new MemoryCgroup(2, path, limit_bytes, ""));
  const std::string limit = absl::StrCat(limit_bytes);
  ZCPACK_RETURN_IF_ERROR(WriteControlFile(path + "/memory.max", limit));
  group->description_ = absl::StrCat("cgroup v2 ", path, ": memory.max=", limit);
  if (FileExists(path + "/memory.swap.max")) {
    ZCPACK_RETURN_IF_ERROR(WriteControlFile(path + "/memory.swap.max", "0"));
    absl::StrAppend(&group->description_, ", memory.swap.max=0");
  }
  return group;
}

MemoryCgroup::~MemoryCgroup() {
  // The members have exited; charges left by page cache are moved to the
  // parent by the kernel. EBUSY right after a reap is retried briefly.
  for (int attempt = 0; attempt < 50 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++attempt) {
    ::usleep(20000);
  }
}

absl::Status MemoryCgroup::AddProcess(pid_t pid) const {
  return WriteControlFile(path_ + "/cgroup.procs", absl::StrCat(pid));
}

MemoryCgroup::Stats MemoryCgroup::ReadStats() const {
  Stats stats;
  std::string text;
  if (version_ == 1) {
    stats.peak_bytes = NumberIn(path_ + "/memory.max_usage_in_bytes");
    stats.failcnt = NumberIn(path_ + "/memory.failcnt");
    if (ReadSmallFile(path_ + "/memory.oom_control", &text)) {
      stats.oom_kills = KeyedValue(text, "oom_kill");
    }
  } else {
    stats.peak_bytes = NumberIn(path_ + "/memory.peak");
    if (ReadSmallFile(path_ + "/memory.events", &text)) {
      stats.failcnt = KeyedValue(text, "max");
      stats.oom_kills = KeyedValue(text, "oom_kill");
    }
  }
  return stats;
}

namespace {

void DrainNonBlocking(int fd, std::string* text) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text->append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // EOF, EAGAIN or an error
    }
  }
}

absl::Status ChildError(const std::string& exe, absl::string_view what) {
  return ErrnoError(errno, exe, what);
}

}  // namespace

absl::StatusOr<SampledProcess> RunSampled(const std::string& exe,
                                          const std::vector<std::string>& args,
                                          const MemoryCgroup* cgroup, bool keep_timeline) {
  std::vector<std::string> storage = {exe};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  // go: closed by this process once the child may exec. exec: closed by a
  // successful exec (O_CLOEXEC), or carries errno when exec fails.
  int out_pipe[2], err_pipe[2], go_pipe[2], exec_pipe[2];
  for (int* p : {out_pipe, err_pipe, go_pipe, exec_pipe}) {
    if (::pipe2(p, O_CLOEXEC) != 0) return ChildError(exe, "pipe");
  }
  const pid_t pid = ::fork();
  if (pid < 0) return ChildError(exe, "fork");
  if (pid == 0) {
    // Async-signal-safe calls only until exec. This process blocks SIGINT
    // and friends (HandleInterrupts()); the child must not inherit that.
    UnblockInterruptsInChild();
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(go_pipe[1]);
    char c;
    while (::read(go_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::execv(argv[0], argv.data());
    const int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(go_pipe[0]);
  ::close(exec_pipe[1]);
  format::ScopedFd out_fd(out_pipe[0]), err_fd(err_pipe[0]), go_fd(go_pipe[1]),
      exec_fd(exec_pipe[0]);
  if (cgroup != nullptr) {
    if (absl::Status s = cgroup->AddProcess(pid); !s.ok()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return s;
    }
  }
  const std::string status_path = absl::StrCat("/proc/", pid, "/status");
  format::ScopedFd status_fd(::open(status_path.c_str(), O_RDONLY | O_CLOEXEC));
  ::fcntl(out_fd.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_fd.get(), F_SETFL, O_NONBLOCK);

  SampledProcess run;
  go_fd.reset();  // the child may exec now
  int exec_errno = 0;
  ssize_t got;
  while ((got = ::read(exec_fd.get(), &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  if (got > 0) {
    ::waitpid(pid, nullptr, 0);
    return ErrnoError(exec_errno, exe, "exec");
  }
  run.exec_ns = MonotonicNanos();
  int64_t next = run.exec_ns;
  int64_t last_sample = 0;
  int wait_status = 0;
  rusage usage{};
  char buf[8192];
  for (;;) {
    const pid_t r = ::wait4(pid, &wait_status, WNOHANG, &usage);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return ChildError(exe, "wait4");
    if (status_fd.valid() && ::lseek(status_fd.get(), 0, SEEK_SET) == 0) {
      const ssize_t n = ::read(status_fd.get(), buf, sizeof buf);
      const int64_t now = MonotonicNanos();
      const ProcMemory m =
          n > 0 ? ParseProcStatus(absl::string_view(buf, static_cast<size_t>(n))) : ProcMemory();
      if (m.valid) {
        run.peak_anon_kib = std::max(run.peak_anon_kib, m.rss_anon_kib);
        run.peak_file_kib = std::max(run.peak_file_kib, m.rss_file_kib);
        run.peak_rss_kib = std::max(run.peak_rss_kib, m.vm_rss_kib);
        run.hwm_kib = std::max(run.hwm_kib, m.vm_hwm_kib);
        if (last_sample != 0) {
          run.max_gap_ms = std::max(run.max_gap_ms, static_cast<double>(now - last_sample) * 1e-6);
        }
        last_sample = now;
        ++run.samples;
        if (keep_timeline) run.timeline.push_back({now, m.rss_anon_kib, m.rss_file_kib, m.vm_rss_kib});
      }
    }
    DrainNonBlocking(out_fd.get(), &run.stdout_text);
    DrainNonBlocking(err_fd.get(), &run.stderr_text);
    next += 1000000;
    const int64_t now = MonotonicNanos();
    if (next < now) next = now;  // fell behind: do not burst to catch up
    const timespec until = {static_cast<time_t>(next / 1000000000),
                            static_cast<long>(next % 1000000000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
    }
  }
  // The child is gone, so every write end is closed: read to EOF.
  DrainNonBlocking(out_fd.get(), &run.stdout_text);
  DrainNonBlocking(err_fd.get(), &run.stderr_text);
  if (WIFEXITED(wait_status)) run.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) run.signal = WTERMSIG(wait_status);
  run.major_faults = usage.ru_majflt;
  run.minor_faults = usage.ru_minflt;
  return run;
}

}  // namespace zcpack::cli::bench
