// Helpers shared by the benchmark programs that run the zcpack binary in
// child processes and prepare the page cache. Header-only; benchmarks only.
#ifndef ZCPACK_TESTS_BENCHMARKS_CHILD_PROCESS_H_
#define ZCPACK_TESTS_BENCHMARKS_CHILD_PROCESS_H_

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace zcpack::bench {

// Evict(): drops a file's pages from the page cache (fdatasync, then
// POSIX_FADV_DONTNEED): the "cold" preparation.
inline void Evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// RssAnon of a live process in KiB; -1 once it is gone.
inline long RssAnonKib(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "RssAnon: %ld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

struct ChildRun {
  int status = -1;            // exit code, or -1 when killed
  double seconds = 0;         // wall time
  long max_rss_kib = 0;       // ru_maxrss: anonymous + file-backed
  long max_anon_kib = 0;      // sampled RssAnon peak (every 2 ms)
};

// RunChild(): runs argv with stdout to /dev/null and waits, sampling the
// child's anonymous RSS (ru_maxrss also counts mapped file pages).
inline ChildRun RunChild(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ChildRun run;
  while (::wait4(pid, &status, WNOHANG, &usage) == 0) {
    run.max_anon_kib = std::max(run.max_anon_kib, RssAnonKib(pid));
    ::usleep(2000);
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.max_rss_kib = usage.ru_maxrss;
  return run;
}

}  // namespace zcpack::bench

#endif  // ZCPACK_TESTS_BENCHMARKS_CHILD_PROCESS_H_
