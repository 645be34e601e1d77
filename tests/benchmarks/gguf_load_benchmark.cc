// llama.cpp's cold load plus first token on GGUF files side by side (the
// original and what `zcpack export` or `zcpack convert --to gguf` wrote from
// it): each run a fresh `llama_greedy FILE PROMPT 0 THREADS` process (load
// the model, evaluate the prompt, print the first-token logits; no decode
// step), timed from fork to exit, after the file's pages were evicted as
// `zcpack bench` evicts them (fsync, posix_fadvise(DONTNEED); the residency
// left is checked with mincore and printed). Files alternate within each
// round (A B, then B A, ...), so that a slow stretch of the machine falls on
// both. Prints, per file: median, min and max seconds, the ratio of medians
// to the first file, the cold sequential read time of the file (the
// physical floor), and whether its first-token logits equal the first
// file's. Numbers only, never an assertion.
//
//   gguf_load_benchmark --greedy $LLAMA_GREEDY [--runs 7] [--threads 2]
//                       [--prompt 1,450,2,100] ORIGINAL.gguf EXPORTED.gguf...
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "tools/cli/bench_system.h"

namespace {

using namespace zcpack::cli::bench;

struct FileRuns {
  std::string path;
  std::vector<double> seconds;
  std::vector<double> residency;  // before each run, after eviction
  double cold_read_seconds = 0;
  std::string logits;  // the "logits0" line of the last run
  uint64_t peak_rss_kib = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string LogitsLine(const std::string& out) {
  const size_t at = out.find("logits0");
  if (at == std::string::npos) return "";
  return out.substr(at, out.find('\n', at) - at);
}

int Usage() {
  std::fprintf(stderr,
               "usage: gguf_load_benchmark --greedy LLAMA_GREEDY [--runs N] [--threads T] "
               "[--prompt IDS] FILE.gguf FILE.gguf...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string greedy, prompt = "1,450,2,100";
  int runs = 7, threads = 2;
  std::vector<FileRuns> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--greedy" && has_value) greedy = argv[++i];
    else if (a == "--runs" && has_value) runs = std::atoi(argv[++i]);
    else if (a == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (a == "--prompt" && has_value) prompt = argv[++i];
    else if (a.rfind("--", 0) == 0) return Usage();
    else files.push_back({a, {}, {}, 0, "", 0});
  }
  if (greedy.empty() || files.empty() || runs < 1 || threads < 1) return Usage();

  for (FileRuns& f : files) {
    if (absl::Status s = EvictFromPageCache(f.path); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 3;
    }
    absl::StatusOr<double> read = ReadWholeFile(f.path);
    if (!read.ok()) {
      std::fprintf(stderr, "%s\n", std::string(read.status().message()).c_str());
      return 3;
    }
    f.cold_read_seconds = *read;
  }
  for (int r = 0; r < runs; ++r) {
    for (size_t k = 0; k < files.size(); ++k) {
      FileRuns& f = files[r % 2 == 0 ? k : files.size() - 1 - k];
      if (absl::Status s = EvictFromPageCache(f.path); !s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        return 3;
      }
      f.residency.push_back(ResidentFraction(f.path).value_or(-1));
      const int64_t start = MonotonicNanos();
      absl::StatusOr<SampledProcess> p =
          RunSampled(greedy, {f.path, prompt, "0", std::to_string(threads)}, nullptr, false);
      const double seconds = (MonotonicNanos() - start) / 1e9;
      if (!p.ok() || p->exit_code != 0) {
        std::fprintf(stderr, "%s: llama_greedy failed: %s\n", f.path.c_str(),
                     p.ok() ? p->stderr_text.c_str() : std::string(p.status().message()).c_str());
        return 3;
      }
      f.seconds.push_back(seconds);
      f.logits = LogitsLine(p->stdout_text);
      f.peak_rss_kib = std::max<uint64_t>(f.peak_rss_kib, p->peak_rss_kib);
      std::fprintf(stderr, "run %d %s %.3f s\n", r + 1, f.path.c_str(), seconds);
    }
  }
  std::printf("llama_greedy cold load + first token (prompt %s, %d threads, %d runs each, "
              "alternating)\n",
              prompt.c_str(), threads, runs);
  std::printf("%-44s %10s %9s %9s %9s %7s %10s %9s %8s %7s\n", "file", "MiB", "median s",
              "min s", "max s", "ratio", "cold read", "resident", "peakRSS", "logits");
  const double base = Median(files[0].seconds);
  for (const FileRuns& f : files) {
    const double median = Median(f.seconds);
    const auto [lo, hi] = std::minmax_element(f.seconds.begin(), f.seconds.end());
    struct stat st;
    const double mib = ::stat(f.path.c_str(), &st) == 0 ? st.st_size / 1048576.0 : 0;
    const std::string name = f.path.size() > 44 ? f.path.substr(f.path.size() - 44) : f.path;
    std::printf("%-44s %10.1f %9.3f %9.3f %9.3f %7.3f %9.3fs %8.1f%% %7.0fM %7s\n", name.c_str(),
                mib, median, *lo, *hi, base > 0 ? median / base : 0, f.cold_read_seconds,
                100 * *std::max_element(f.residency.begin(), f.residency.end()),
                f.peak_rss_kib / 1024.0, f.logits == files[0].logits ? "same" : "DIFFER");
  }
  return 0;
}
