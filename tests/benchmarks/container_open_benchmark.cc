// container_open_benchmark: the time of Container::Open() for containers of
// 10, 300 and 3000 tensors holding about 1 GiB of data each, and of 3000
// tensors holding almost none. Open reads only the header and the manifest,
// so its cost should follow the tensor count, not the bytes.
//
// Setup (once, before any timing): the containers are written into a fresh
// folder under $TMPDIR (default /tmp), about 3.3 GB in all. Each file is
// unlinked as soon as it is written and reopened through /proc/self/fd, so
// the disk space comes back when the program exits, however it exits.
// Tensor data is real: a byte pattern streamed through TensorSink, with
// correct checksums.
//
// Timing: page cache warm for the header and the manifest (one untimed Open
// first); each iteration times Open() alone (manual time), the unmap and
// close of the previous container excluded. The summary after the table
// prints ratios between cases. Numbers only; nothing is asserted.
//
// Usage: container_open_benchmark [Google Benchmark flags]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"

namespace {

using zcpack::format::Container;
using zcpack::format::ContainerWriter;
using zcpack::format::TensorPlan;

struct OpenCase {
  std::string name;
  size_t tensors;
  uint64_t target_bytes;  // total tensor data, at least this much
};

struct PreparedCase {
  OpenCase spec;
  int fd = -1;  // keeps the unlinked file alive
  std::string path;  // /proc/self/fd/<fd>
  uint64_t data_bytes = 0;
  uint64_t file_bytes = 0;
  uint64_t manifest_bytes = 0;
};

constexpr size_t kPatternBytes = size_t{4} << 20;

std::vector<uint8_t> MakePattern() {
  std::vector<uint8_t> pattern(kPatternBytes);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < pattern.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pattern[i] = static_cast<uint8_t>(x);
  }
  return pattern;
}

// Writes one container: `spec.tensors` f16 tensors of shape [rows, 2048],
// rows chosen so the total reaches spec.target_bytes; layers of nine tensors
// between an embedding and an output head, as in a llama-style model.
absl::Status WriteCase(const std::string& path, const OpenCase& spec,
                       const std::vector<uint8_t>& pattern) {
  constexpr uint64_t kRowBytes = 2048 * 2;
  const uint64_t per_tensor = (spec.target_bytes + spec.tensors - 1) / spec.tensors;
  const uint64_t rows = std::max<uint64_t>(1, (per_tensor + kRowBytes - 1) / kRowBytes);
  std::vector<TensorPlan> plans(spec.tensors);
  for (size_t i = 0; i < spec.tensors; ++i) {
    TensorPlan& p = plans[i];
    p.name = absl::StrCat("blk.", i, ".weight");
    p.dtype = zcpack::format::DTYPE_F16;
    p.source_dtype = zcpack::format::DTYPE_F16;
    p.shape = {rows, 2048};
    const bool outside = i == 0 || i + 1 == spec.tensors;
    p.layer = outside ? -1 : static_cast<int32_t>((i - 1) / 9);
    p.role = zcpack::format::ROLE_OTHER;
  }
  zcpack::format::WriterOptions options;  // default 16 KiB alignment
  auto writer = ContainerWriter::Create(path, std::move(plans), options);
  if (!writer.ok()) return writer.status();
  for (size_t i = 0; i < spec.tensors; ++i) {
    auto sink = (*writer)->BeginTensor(i);
    if (!sink.ok()) return sink.status();
    uint64_t left = (*writer)->planned(i).nbytes();
    size_t at = (i * 4099) % kPatternBytes;  // a different byte stream per tensor
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kPatternBytes - at));
      if (absl::Status s = sink->Append({pattern.data() + at, n}); !s.ok()) return s;
      left -= n;
      at = 0;
    }
    if (absl::Status s = sink->Commit(); !s.ok()) return s;
  }
  return (*writer)->Finish(zcpack::testing::SmallManifest());
}

absl::StatusOr<PreparedCase> Prepare(const zcpack::testing::ScopedTempDir& dir, const OpenCase& spec,
                                     const std::vector<uint8_t>& pattern) {
  const std::string file = dir.File(spec.name + ".zcp");
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status s = WriteCase(file, spec, pattern); !s.ok()) return s;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PreparedCase prepared;
  prepared.spec = spec;
  prepared.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (prepared.fd < 0) return absl::InternalError(absl::StrCat(file, ": cannot reopen"));
  ::unlink(file.c_str());
  prepared.path = absl::StrCat("/proc/self/fd/", prepared.fd);
  auto c = Container::Open(prepared.path);
  if (!c.ok()) return c.status();
  prepared.data_bytes = 0;
  for (size_t i = 0; i < (*c)->num_tensors(); ++i) prepared.data_bytes += (*c)->tensor(i).nbytes();
  prepared.file_bytes = (*c)->file_size();
  prepared.manifest_bytes = (*c)->header().manifest_size;
  std::fprintf(stderr, "wrote %-20s %5zu tensors, %.3f GB of data, manifest %llu bytes, in %.1f s\n",
               spec.name.c_str(), spec.tensors, static_cast<double>(prepared.data_bytes) / 1e9,
               static_cast<unsigned long long>(prepared.manifest_bytes), seconds);
  return prepared;
}

std::map<std::string, double>& MeanOpenSeconds() {
  static std::map<std::string, double> means;
  return means;
}

void BM_ContainerOpen(benchmark::State& state, const PreparedCase* c) {
  {
    auto warm = Container::Open(c->path);  // header and manifest into the page cache
    if (!warm.ok()) {
      state.SkipWithError(std::string(warm.status().message()).c_str());
      return;
    }
  }
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto opened = Container::Open(c->path);
    const auto stop = std::chrono::steady_clock::now();
    if (!opened.ok()) {
      state.SkipWithError(std::string(opened.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(opened);
    const double seconds = std::chrono::duration<double>(stop - start).count();
    total += seconds;
    state.SetIterationTime(seconds);
  }
  MeanOpenSeconds()[c->spec.name] = total / static_cast<double>(state.iterations());
  const auto n = static_cast<double>(c->spec.tensors);
  state.counters["tensors"] = n;
  state.counters["data_GB"] = static_cast<double>(c->data_bytes) / 1e9;
  state.counters["manifest_KiB"] = static_cast<double>(c->manifest_bytes) / 1024.0;
  state.counters["per_tensor"] = benchmark::Counter(
      n, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void PrintSummary() {
  const auto& m = MeanOpenSeconds();
  auto us = [&m](const char* name) {
    const auto it = m.find(name);
    return it == m.end() ? 0.0 : it->second * 1e6;
  };
  std::printf("\nmean Open() time (us):");
  for (const auto& [name, seconds] : m) std::printf("  %s %.1f", name.c_str(), seconds * 1e6);
  std::printf("\n");
  if (us("10_tensors_1GB") > 0 && us("3000_tensors_1GB") > 0 && us("3000_tensors_small") > 0) {
    std::printf("3000 vs 10 tensors, same ~1 GB of data: %.1fx the time (300x the tensors)\n",
                us("3000_tensors_1GB") / us("10_tensors_1GB"));
    std::printf("3000 tensors, ~1 GB vs ~12 MB of data:  %.2fx the time\n",
                us("3000_tensors_1GB") / us("3000_tensors_small"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const std::vector<OpenCase> specs = {
      {"10_tensors_1GB", 10, uint64_t{1} << 30},
      {"300_tensors_1GB", 300, uint64_t{1} << 30},
      {"3000_tensors_1GB", 3000, uint64_t{1} << 30},
      {"3000_tensors_small", 3000, 3000 * 4096},  // one 4 KiB row each
  };
  const std::vector<uint8_t> pattern = MakePattern();
  std::vector<PreparedCase> prepared;
  {
    // The folder goes at the end of this block; the files live on, unlinked,
    // through their descriptors until the program exits.
    zcpack::testing::ScopedTempDir dir;
    for (const OpenCase& spec : specs) {
      auto c = Prepare(dir, spec, pattern);
      if (!c.ok()) {
        std::fprintf(stderr, "container_open_benchmark: %s\n", c.status().ToString().c_str());
        return 1;
      }
      prepared.push_back(*std::move(c));
    }
  }
  for (const PreparedCase& c : prepared) {
    benchmark::RegisterBenchmark(("ContainerOpen/" + c.spec.name).c_str(), BM_ContainerOpen, &c)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintSummary();
  for (const PreparedCase& c : prepared) ::close(c.fd);
  return 0;
}
