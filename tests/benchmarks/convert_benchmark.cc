// convert_benchmark: end-to-end `zcpack convert` time and peak RSS for
// synthetic models, against reading the input once (`cat FILE > /dev/null`)
// in the same page-cache state.
//
// Usage: convert_benchmark [--dir DIR] [--shapes stories110m,llama-1b]
//                          [--quant q4_0] [--gguf A.gguf,B.gguf] [--runs N]
//                          [--zcpack PATH]
// --gguf: convert these GGUF files instead of synthetic shapes, with the
// default quantization (a quantized GGUF is repacked byte for byte: --quant
// keep), so the row measures repack speed against reading the file.
// --runs N: N alternating read/convert pairs per state; each column is the
// median, with [min-max] of the convert time. With --gguf, copy_s is a
// durable copy of the same file in the same cache state (read, write,
// fsync): the bound for a repack, which is a copy plus the layout.
// --zcpack PATH: the zcpack binary to time (default: the one built with this
// benchmark), so that two builds can be compared run for run.
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

#include "absl/strings/str_cat.h"
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

// CopyFile(): seconds to copy `from` to `to` with read()/write() in 1 MiB
// pieces and fsync() the copy: what any durable copy of the file costs here.
double CopyFile(const std::string& from, const std::string& to) {
  std::vector<char> buf(1 << 20);
  const auto start = Clock::now();
  const int in = ::open(from.c_str(), O_RDONLY);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) return -1;
  for (ssize_t n; (n = ::read(in, buf.data(), buf.size())) > 0;) {
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w <= 0) return -1;
      done += w;
    }
  }
  ::fsync(out);
  ::close(in);
  ::close(out);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/zcpack-convert-bench";
  std::string shapes = "stories110m,llama-1b";
  std::string quant = "q4_0";
  std::string gguf;
  int runs = 1;
  std::string binary = ZCPACK_BINARY;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
    else if (a == "--quant" && i + 1 < argc) quant = argv[++i];
    else if (a == "--gguf" && i + 1 < argc) gguf = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--zcpack" && i + 1 < argc) binary = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: convert_benchmark [--dir DIR] [--shapes a,b] [--quant q] "
                   "[--gguf a.gguf,b.gguf] [--runs N] [--zcpack PATH]\n");
      return 2;
    }
  }
  const bool repack = !gguf.empty();
  if (repack) quant = "keep";
  ::mkdir(dir.c_str(), 0755);
  std::printf("zcpack convert benchmark: %s, %ld cores; cold = fsync + POSIX_FADV_DONTNEED on "
              "every input file before the run\n",
              quant.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-12s %-5s %10s %10s %10s %8s %8s %13s %14s %16s %8s\n", "shape", "cache",
              "input_MiB", "read_s", "convert_s", "ratio", "MiB/s", "peak_anon_MiB",
              "peak_total_MiB", "convert_s_range", "copy_s");
  for (const std::string& shape :
       std::vector<std::string>(absl::StrSplit(repack ? gguf : shapes, ','))) {
    const std::string model = repack ? shape : dir + "/" + shape;
    struct stat st;
    if (!repack && ::stat((model + "/config.json").c_str(), &st) != 0) {
      const ChildRun synth = RunChild({binary, "synth", "--shape", shape, "--out", model,
                                       "--force"});
      if (synth.status != 0) {
        std::fprintf(stderr, "synth %s failed\n", shape.c_str());
        return 1;
      }
    }
    const std::vector<std::string> inputs = repack ? std::vector<std::string>{model} : ListFiles(model);
    const uint64_t bytes = TotalSize(inputs);
    const std::string base = repack ? model.substr(model.find_last_of('/') + 1) : shape;
    const std::string out = dir + "/" + base + "." + quant + ".zcpack";
    for (const bool cold : {false, true}) {
      std::vector<double> reads, converts, anon, total, copies;
      for (int r = 0; r < runs; ++r) {
        if (cold) {
          for (const auto& f : inputs) Evict(f);
        } else {
          ReadAll(inputs);
        }
        reads.push_back(ReadAll(inputs));
        if (repack) {
          if (cold) Evict(model);
          const std::string copy = out + ".copy";
          copies.push_back(CopyFile(model, copy));
          ::unlink(copy.c_str());
        }
        if (cold) {
          for (const auto& f : inputs) Evict(f);
        }
        // A new file, as for the copy: replacing the last run's output would
        // add freeing its pages to the time.
        ::unlink(out.c_str());
        const ChildRun run = RunChild({binary, "convert", model, "-o", out, "--quant",
                                       quant, "--force", "--quiet"});
        if (run.status != 0) {
          std::fprintf(stderr, "convert %s failed with exit code %d\n", shape.c_str(), run.status);
          return 1;
        }
        Evict(out);
        converts.push_back(run.seconds);
        anon.push_back(run.max_anon_kib / 1024.0);
        total.push_back(run.max_rss_kib / 1024.0);
      }
      const double read_s = Median(reads), convert_s = Median(converts);
      const std::string range = absl::StrFormat(
          "[%.3f-%.3f]", *std::min_element(converts.begin(), converts.end()),
          *std::max_element(converts.begin(), converts.end()));
      std::printf("%-12s %-5s %10.1f %10.3f %10.3f %8.2f %8.0f %13.1f %14.1f %16s %8s\n",
                  base.c_str(), cold ? "cold" : "warm", bytes / 1048576.0, read_s, convert_s,
                  convert_s / read_s, bytes / 1048576.0 / convert_s, Median(anon), Median(total),
                  range.c_str(),
                  copies.empty() ? "-" : absl::StrFormat("%.3f", Median(copies)).c_str());
      std::fflush(stdout);
    }
    ::unlink(out.c_str());
  }
  std::printf("(synthetic inputs are kept in %s for reuse)\n", dir.c_str());
  return 0;
}
