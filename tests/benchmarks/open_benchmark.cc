// open_benchmark: how long zcpack_open() takes inside one process, for each
// container given, and what the first tokenizer use costs after it.
//
// For each file: `--opens N` (default 5) zcpack_open()/zcpack_close() pairs,
// each open timed alone (the page cache is warm after the first); then one
// more open followed by zcpack_tokenize() of a short text, timed separately:
// the tokenizer is decoded on first use, never by zcpack_open().
// Prints one row per file. Numbers only; nothing is asserted.
//
// Usage: open_benchmark [--opens N] FILE.zcpack...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "zcpack/zcpack.h"

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int opens = 5;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--opens") == 0 && i + 1 < argc) {
      opens = std::max(1, std::atoi(argv[++i]));
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: open_benchmark [--opens N] FILE.zcpack...\n");
    return 2;
  }
  std::printf("%-40s %12s %12s %14s %8s\n", "file", "first_ms", "last_ms", "tokenizer_ms",
              "tokens");
  for (const std::string& file : files) {
    double first = 0, last = 0;
    for (int i = 0; i < opens; ++i) {
      zcpack_model* model = nullptr;
      const auto start = Clock::now();
      const zcpack_status s = zcpack_open(file.c_str(), &model);
      const double ms = MsSince(start);
      if (s != ZCPACK_OK) {
        std::fprintf(stderr, "%s: %s\n", file.c_str(), zcpack_last_error());
        return 1;
      }
      if (i == 0) first = ms;
      last = ms;
      zcpack_close(model);
    }
    zcpack_model* model = nullptr;
    if (zcpack_open(file.c_str(), &model) != ZCPACK_OK) return 1;
    const char* text = "Hello world, this is a test.";
    int32_t ids[64];
    size_t count = 0;
    const auto start = Clock::now();
    const zcpack_status s = zcpack_tokenize(model, text, std::strlen(text), 0, 0, ids, 64, &count);
    const double tokenizer_ms = MsSince(start);
    zcpack_close(model);
    std::printf("%-40s %12.3f %12.3f %14s %8s\n", file.c_str(), first, last,
                s == ZCPACK_OK ? std::to_string(tokenizer_ms).c_str() : "none",
                s == ZCPACK_OK ? std::to_string(count).c_str() : "-");
  }
  return 0;
}
