// validator_benchmark: how fast `zcpack verify` is on a model-sized container.
//
// Usage: validator_benchmark [--dir DIR] [--shape llama-7b] [--quant q4_0]
//                            [--repeat N] [--cold]
// Creates DIR/SHAPE (zcpack synth) and DIR/SHAPE.QUANT.zcpack (zcpack convert)
// when absent and reuses them otherwise. Then prints:
//   - the structure level: Verify() in this process, best and median of N,
//     and `zcpack verify --level structure` as a child process (wall time);
//   - reference speeds with a warm page cache: XXH3-64 over a buffer in cache
//     (one core), and pread of the whole file into a 1 MiB buffer (1 and 2
//     threads, nothing else done);
//   - the full level with a warm page cache, for each data access mode,
//     chunk size and thread count, plus the reader's own
//     Container::VerifyChecksums(), each in a fresh child process: the first
//     run (what one `zcpack verify` sees), best and median of N more,
//     throughput over the bytes checked (tensor data and padding), and the
//     child's peak resident set;
//   - `zcpack verify FILE` with its defaults, wall time per process;
//   - with --cold: one full-level run after evicting the file (fdatasync, then
//     posix_fadvise(POSIX_FADV_DONTNEED)), with the default settings.
// Numbers only; nothing is asserted.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "xxhash.h"
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
// Both entry points are measured, so neither replaces the other.
#define XXH_DISPATCH_DISABLE_REPLACE 1
#include "xxh_x86dispatch.h"
#define ZCPACK_XXH3_DISPATCH 1
#endif
#include "tests/benchmarks/child_process.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/validator/verify.h"

namespace {

using Clock = std::chrono::steady_clock;
using zcpack::validator::DataAccess;
using zcpack::validator::VerifyLevel;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Runs argv as a child with stdout to /dev/null; returns its exit status and
// wall time.
int RunChild(std::vector<std::string> args, double* seconds = nullptr) {
  const zcpack::bench::ChildRun run = zcpack::bench::RunChild(std::move(args));
  if (seconds != nullptr) *seconds = run.seconds;
  return run.status;
}

struct Timing {
  double first = 0;     // the first run in the process (the warm-up)
  double best = 0;
  double median = 0;
  uint64_t bytes = 0;   // bytes checked per run
  int ok = 1;           // every run verified sound
  long max_rss_kib = 0; // peak RSS of the child that measured it
};

// Calls `run` once to warm up, then `repeat` times, timing each; `run`
// returns the bytes it checked, or 0 on failure.
Timing Time(int repeat, const std::function<uint64_t()>& run) {
  Timing t;
  const auto first_start = Clock::now();
  t.ok = run() > 0;
  t.first = Seconds(first_start);
  std::vector<double> runs;
  for (int i = 0; i < repeat; ++i) {
    const auto start = Clock::now();
    const uint64_t bytes = run();
    runs.push_back(Seconds(start));
    t.bytes = bytes;
    t.ok = t.ok && bytes > 0;
  }
  std::sort(runs.begin(), runs.end());
  t.best = runs.front();
  t.median = runs[runs.size() / 2];
  return t;
}

// Time() in a forked child, so that each measurement has its own peak RSS.
// Called only while this process runs no other threads.
Timing TimeInChild(int repeat, const std::function<uint64_t()>& run) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const Timing t = Time(repeat, run);
    (void)::write(fds[1], &t, sizeof(t));
    ::_exit(0);
  }
  ::close(fds[1]);
  Timing t;
  if (::read(fds[0], &t, sizeof(t)) != static_cast<ssize_t>(sizeof(t))) t.ok = 0;
  ::close(fds[0]);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  t.max_rss_kib = usage.ru_maxrss;
  return t;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Reads [0, size) with `threads` threads, each a contiguous slice, through a
// 1 MiB buffer; returns the bytes read.
uint64_t ReadAll(const std::string& path, int threads) {
  const uint64_t size = FileSize(path);
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  std::atomic<uint64_t> total{0};
  auto slice = [&](int t) {
    std::vector<char> buf(1 << 20);
    const uint64_t begin = size / threads * t;
    const uint64_t end = t + 1 == threads ? size : size / threads * (t + 1);
    for (uint64_t at = begin; at < end;) {
      const ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), end - at), at);
      if (n <= 0) break;
      at += static_cast<uint64_t>(n);
      total += static_cast<uint64_t>(n);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(slice, t);
  slice(0);
  for (auto& t : pool) t.join();
  ::close(fd);
  return total;
}

using zcpack::bench::Evict;

const char* AccessName(DataAccess a) {
  switch (a) {
    case DataAccess::kPread: return "pread";
    case DataAccess::kMmap: return "mmap+SEQUENTIAL";
    case DataAccess::kMmapPopulate: return "mmap+POPULATE_READ";
  }
  return "?";
}

void PrintRow(const std::string& what, int threads, const Timing& t) {
  std::printf("%-34s %7d %8.3f %8.3f %8.3f %8.2f %8.2f %12.1f%s\n", what.c_str(), threads, t.first,
              t.best, t.median, t.bytes / t.first / 1e9, t.bytes / t.best / 1e9,
              t.max_rss_kib / 1024.0, t.ok ? "" : "  (NOT SOUND / failed)");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/zcpack-verify-bench";
  std::string shape = "llama-7b";
  std::string quant = "q4_0";
  int repeat = 3;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--shape" && i + 1 < argc) shape = argv[++i];
    else if (a == "--quant" && i + 1 < argc) quant = argv[++i];
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else if (a == "--cold") cold = true;
    else {
      std::fprintf(stderr,
                   "usage: validator_benchmark [--dir DIR] [--shape SHAPE] [--quant Q] "
                   "[--repeat N] [--cold]\n");
      return 2;
    }
  }
  ::mkdir(dir.c_str(), 0755);
  const std::string model = dir + "/" + shape;
  const std::string container = dir + "/" + shape + "." + quant + ".zcpack";
  if (!Exists(model + "/config.json")) {
    std::printf("creating %s (zcpack synth)...\n", model.c_str());
    std::fflush(stdout);
    if (RunChild({ZCPACK_BINARY, "synth", "--shape", shape, "--out", model, "--force"}) != 0) {
      std::fprintf(stderr, "synth failed\n");
      return 1;
    }
  }
  if (!Exists(container)) {
    std::printf("creating %s (zcpack convert)...\n", container.c_str());
    std::fflush(stdout);
    if (RunChild({ZCPACK_BINARY, "convert", model, "-o", container, "--quant", quant,
                  "--quiet"}) != 0) {
      std::fprintf(stderr, "convert failed\n");
      return 1;
    }
  }
  const uint64_t file_size = FileSize(container);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("zcpack verify benchmark: %s (%.2f GiB), %u cores, best and median of %d runs "
              "after one warm-up\n\n",
              container.c_str(), file_size / double(uint64_t{1} << 30), cores, repeat);

  // Structure level.
  {
    zcpack::validator::VerifyOptions options;
    options.level = VerifyLevel::kStructure;
    int tensors = 0;
    const Timing t = Time(std::max(repeat, 10), [&]() -> uint64_t {
      auto r = zcpack::validator::Verify(container, options);
      if (!r.ok() || !r->sound()) return 0;
      tensors = static_cast<int>(r->tensor_count);
      return r->file_size;
    });
    std::printf("structure level (%d tensors, Verify() in process): best %.2f ms, median %.2f ms%s\n",
                tensors, t.best * 1e3, t.median * 1e3, t.ok ? "" : "  (NOT SOUND)");
    std::vector<double> cli;
    for (int i = 0; i < 5; ++i) {
      double s = 0;
      if (RunChild({ZCPACK_BINARY, "verify", container, "--level", "structure"}, &s) != 0) {
        std::printf("  zcpack verify --level structure failed\n");
      }
      cli.push_back(s);
    }
    std::sort(cli.begin(), cli.end());
    std::printf("structure level, `zcpack verify --level structure` as a process: best %.2f ms, "
                "median %.2f ms\n\n",
                cli.front() * 1e3, cli[cli.size() / 2] * 1e3);
  }

  // References, warm.
  ReadAll(container, 2);
  {
    // XXH3 over a buffer in cache: the library's portable entry point (as the
    // format reader calls it) and, on x86-64, its run-time dispatch to
    // AVX2/AVX-512 (as the validator calls it).
    std::vector<uint8_t> buf(256 << 10, 0x5A);
    XXH3_state_t* state = XXH3_createState();
    auto hash_all = [&](bool dispatch) -> uint64_t {
      uint64_t sink = 0;
      for (int i = 0; i < 4000; ++i) {
        XXH3_64bits_reset(state);
#if defined(ZCPACK_XXH3_DISPATCH)
        if (dispatch) {
          XXH3_64bits_update_dispatch(state, buf.data(), buf.size());
        } else {
          XXH3_64bits_update(state, buf.data(), buf.size());
        }
#else
        (void)dispatch;
        XXH3_64bits_update(state, buf.data(), buf.size());
#endif
        sink += XXH3_64bits_digest(state);
      }
      return sink != 1 ? uint64_t{4000} * buf.size() : 0;
    };
    const Timing plain = Time(repeat, [&] { return hash_all(false); });
    const Timing dispatch = Time(repeat, [&] { return hash_all(true); });
    XXH3_freeState(state);
    std::printf("reference: XXH3-64 over a 256 KiB buffer in cache, 1 core: %.2f GB/s portable, "
                "%.2f GB/s dispatched\n",
                plain.bytes / plain.best / 1e9, dispatch.bytes / dispatch.best / 1e9);
  }
  for (const int threads : {1, 2}) {
    const Timing t = Time(repeat, [&] { return ReadAll(container, threads); });
    std::printf("reference: pread of the whole file into 1 MiB buffers, %d thread%s: %.2f GB/s "
                "(best %.3f s)\n",
                threads, threads == 1 ? "" : "s", t.bytes / t.best / 1e9, t.best);
  }

  std::printf("\nfull level, warm page cache; GB/s over the tensor and padding bytes checked, for\n"
              "the first run in a fresh process (as `zcpack verify` runs) and the best later one\n");
  std::printf("%-34s %7s %8s %8s %8s %8s %8s %12s\n", "data access, chunk", "threads", "first_s",
              "best_s", "median_s", "GB/s_1st", "GB/s", "peak_RSS_MiB");
  struct Config {
    DataAccess access;
    size_t chunk;
  };
  const std::vector<Config> configs = {
      {DataAccess::kPread, size_t{256} << 10},        {DataAccess::kPread, size_t{1} << 20},
      {DataAccess::kPread, size_t{4} << 20},          {DataAccess::kMmap, 0},
      {DataAccess::kMmapPopulate, size_t{1} << 20},   {DataAccess::kMmapPopulate, size_t{4} << 20},
  };
  std::vector<int> thread_counts = {1, static_cast<int>(cores)};
  if (cores == 1) thread_counts = {1};
  for (const Config& c : configs) {
    for (const int threads : thread_counts) {
      zcpack::validator::VerifyOptions options;
      options.level = VerifyLevel::kFull;
      options.data_access = c.access;
      options.threads = threads;
      if (c.chunk > 0) options.chunk_bytes = c.chunk;
      const Timing t = TimeInChild(repeat, [&]() -> uint64_t {
        auto r = zcpack::validator::Verify(container, options);
        if (!r.ok() || !r->sound()) return 0;
        return r->checksummed_bytes + r->padding_bytes;
      });
      const std::string what =
          c.chunk > 0 ? absl::StrFormat("%s, %d KiB", AccessName(c.access), c.chunk >> 10)
                      : std::string(AccessName(c.access));
      PrintRow(what, threads, t);
    }
  }
  {
    // The reader's checksum pass: mmap, no advice, one tensor per task.
    const Timing t = TimeInChild(repeat, [&]() -> uint64_t {
      auto c = zcpack::format::Container::Open(container);
      if (!c.ok() || !(*c)->VerifyChecksums(static_cast<int>(cores)).ok()) return 0;
      uint64_t bytes = 0;
      for (size_t i = 0; i < (*c)->num_tensors(); ++i) bytes += (*c)->tensor(i).nbytes();
      return bytes;
    });
    PrintRow("Container::VerifyChecksums (mmap)", static_cast<int>(cores), t);
  }
  {
    std::vector<double> runs;
    int code = 0;
    for (int i = 0; i < repeat; ++i) {
      double s = 0;
      code = std::max(code, RunChild({ZCPACK_BINARY, "verify", container}, &s));
      runs.push_back(s);
    }
    std::sort(runs.begin(), runs.end());
    std::printf("`zcpack verify FILE` (defaults) as a process, wall time: best %.3f s (%.2f GB/s "
                "of file), median %.3f s, exit %d\n",
                runs.front(), file_size / runs.front() / 1e9, runs[runs.size() / 2], code);
  }
  if (cold) {
    Evict(container);
    zcpack::validator::VerifyOptions options;
    const auto start = Clock::now();
    auto r = zcpack::validator::Verify(container, options);
    const double s = Seconds(start);
    std::printf("\ncold (fdatasync + POSIX_FADV_DONTNEED first), defaults: %.3f s, %.2f GB/s%s\n", s,
                file_size / s / 1e9, r.ok() && r->sound() ? "" : "  (NOT SOUND / failed)");
  }
  std::printf("\n(the model and the container are kept in %s for reuse)\n", dir.c_str());
  return 0;
}
