// convert_benchmark: end-to-end `zcpack convert` time and peak RSS for
// synthetic models, against reading the input once (`cat FILE > /dev/null`)
// in the same page-cache state.
//
// Usage: convert_benchmark [--dir DIR] [--shapes stories110m,llama-1b]
//                          [--quant q4_0]
// For each shape: synthesize it (once, reused if DIR already has it), then
//   warm: read the input once to warm the cache, time a full read, time the
//         conversion (child process; peak RSS from wait4);
//   cold: evict the input (fsync + posix_fadvise DONTNEED), time a full read;
//         evict again, time the conversion.
// Prints one table row per shape and state. Numbers only; nothing asserted.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/benchmarks/child_process.h"

namespace {

using zcpack::bench::ChildRun;
using zcpack::bench::Evict;
using zcpack::bench::RunChild;
using Clock = std::chrono::steady_clock;

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") files.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  return files;
}

uint64_t TotalSize(const std::vector<std::string>& files) {
  uint64_t total = 0;
  for (const auto& f : files) {
    struct stat st;
    if (::stat(f.c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

double ReadAll(const std::vector<std::string>& files) {
  std::vector<char> buf(1 << 20);
  const auto start = Clock::now();
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) continue;
    while (::read(fd, buf.data(), buf.size()) > 0) {
    }
    ::close(fd);
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/zcpack-convert-bench";
  std::string shapes = "stories110m,llama-1b";
  std::string quant = "q4_0";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
    else if (a == "--quant" && i + 1 < argc) quant = argv[++i];
    else {
      std::fprintf(stderr, "usage: convert_benchmark [--dir DIR] [--shapes a,b] [--quant q]\n");
      return 2;
    }
  }
  ::mkdir(dir.c_str(), 0755);
  std::printf("zcpack convert benchmark: %s, %ld cores; cold = fsync + POSIX_FADV_DONTNEED on "
              "every input file before the run\n",
              quant.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-12s %-5s %10s %10s %10s %8s %8s %13s %14s\n", "shape", "cache", "input_MiB",
              "read_s", "convert_s", "ratio", "MiB/s", "peak_anon_MiB", "peak_total_MiB");
  for (const std::string& shape : std::vector<std::string>(absl::StrSplit(shapes, ','))) {
    const std::string model = dir + "/" + shape;
    struct stat st;
    if (::stat((model + "/config.json").c_str(), &st) != 0) {
      const ChildRun synth = RunChild({ZCPACK_BINARY, "synth", "--shape", shape, "--out", model,
                                       "--force"});
      if (synth.status != 0) {
        std::fprintf(stderr, "synth %s failed\n", shape.c_str());
        return 1;
      }
    }
    const std::vector<std::string> inputs = ListFiles(model);
    const uint64_t bytes = TotalSize(inputs);
    const std::string out = dir + "/" + shape + "." + quant + ".zcpack";
    for (const bool cold : {false, true}) {
      if (cold) {
        for (const auto& f : inputs) Evict(f);
      } else {
        ReadAll(inputs);
      }
      const double read_s = ReadAll(inputs);
      if (cold) {
        for (const auto& f : inputs) Evict(f);
      }
      const ChildRun run = RunChild({ZCPACK_BINARY, "convert", model, "-o", out, "--quant", quant,
                                     "--force", "--quiet"});
      if (run.status != 0) {
        std::fprintf(stderr, "convert %s failed with exit code %d\n", shape.c_str(), run.status);
        return 1;
      }
      Evict(out);
      std::printf("%-12s %-5s %10.1f %10.3f %10.3f %8.2f %8.0f %13.1f %14.1f\n", shape.c_str(),
                  cold ? "cold" : "warm", bytes / 1048576.0, read_s, run.seconds,
                  run.seconds / read_s, bytes / 1048576.0 / run.seconds,
                  run.max_anon_kib / 1024.0, run.max_rss_kib / 1024.0);
      std::fflush(stdout);
    }
    ::unlink(out.c_str());
  }
  std::printf("(synthetic inputs are kept in %s for reuse)\n", dir.c_str());
  return 0;
}
