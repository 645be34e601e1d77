// kernels_benchmark: MatVec throughput over weights that live in DRAM, and
// the machine's plain memory-read bandwidth to compare it with.
//
//   BM_ReadBandwidth/threads:T: sums a 512 MiB float buffer split between T
//     threads of a ThreadPool (bytes/s = the DRAM read bandwidth).
//   BM_MatVec<dtype>/rows:R/cols:C/threads:T/level:L: y = W x at
//     stories110m-like shapes; bytes/s counts weight bytes. Each iteration
//     uses the next of many distinct copies of W (>= 256 MiB in all, so the
//     figures reflect DRAM, not the caches). level: 1 AVX2, 2 AVX-512.
//   BM_MatMul<dtype>/rows:R/cols:C/n:N/threads:T: MatMul of N inputs (prompt
//     processing) for q4_0, q8_0, q4_k, q5_k and q6_k; items/s counts
//     multiply-adds.
//   BM_ParallelForOverhead/threads:T: one ParallelFor of empty pieces.
//   BM_ParallelForBusyPieces/threads:T: one ParallelFor of 64 short pieces,
//     T up to 32x the cores of a 2-core machine (oversubscription).
//   BM_Stories110mTokenQ4_0/threads:T/level:L: every MatVec of one decoded
//     token of a stories110m-shaped llama (12 layers of q, k, v, o 768x768,
//     gate and up 2048x768, down 768x2048, then the 32000x768 output), q4_0,
//     over copies of the model totalling >= 256 MiB.
// MatVec bytes/s divided by BM_ReadBandwidth bytes/s (same thread count) is
// the fraction of memory bandwidth the kernel reaches. Nothing is asserted.
//
// Run: build-kern/tests/benchmarks/kernels_benchmark --benchmark_min_time=1
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/kernels.h"
#include "zcpack/runtime/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace zcpack::runtime {
namespace {

using format::DType;
using format::SimdLevel;

constexpr uint64_t kWorkingSetBytes = uint64_t{256} << 20;
constexpr uint64_t kBandwidthBufferBytes = uint64_t{512} << 20;
constexpr uint64_t kAlignment = 4096;  // like tensors in a container

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], FreeDeleter>;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

AlignedBytes AllocateAligned(uint64_t bytes) {
  return AlignedBytes(static_cast<uint8_t*>(std::aligned_alloc(kAlignment, RoundUp(bytes, kAlignment))));
}

// Fills `bytes` with pseudo-random data that is a valid, finite weight matrix
// of `dtype`: q4 scales and f16 / bf16 elements get a fixed small exponent
// (no NaN, infinity or subnormal, which could change the speed), random
// mantissa and sign; nibbles are random.
void FillWeights(DType dtype, uint8_t* bytes, uint64_t size, uint64_t seed) {
  uint64_t state = seed * 0x9E3779B97F4A7C15u + 1;
  for (uint64_t i = 0; i + 8 <= size; i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(bytes + i, &state, 8);
  }
  auto set_half = [&](uint64_t offset, uint16_t exponent_bits) {
    uint16_t h;
    std::memcpy(&h, bytes + offset, 2);
    h = static_cast<uint16_t>((h & 0x83ff) | exponent_bits);
    std::memcpy(bytes + offset, &h, 2);
  };
  const uint64_t block_bytes = format::BlockBytes(dtype);
  for (uint64_t offset = 0; offset + block_bytes <= size; offset += block_bytes) {
    switch (dtype) {
      case format::DTYPE_Q4_0:
      case format::DTYPE_Q8_0: set_half(offset, 0x2000); break;  // |d| in [2^-7, 2^-6)
      case format::DTYPE_Q4_K:
      case format::DTYPE_Q5_K:
        set_half(offset, 0x2000);
        set_half(offset + 2, 0x2000);
        break;
      case format::DTYPE_Q6_K: set_half(offset + 208, 0x2000); break;
      case format::DTYPE_F16: set_half(offset, 0x3800); break;  // |w| in [0.5, 1)
      case format::DTYPE_BF16: {
        uint16_t b;
        std::memcpy(&b, bytes + offset, 2);
        b = static_cast<uint16_t>((b & 0x807f) | 0x3f00);  // |w| in [0.5, 1)
        std::memcpy(bytes + offset, &b, 2);
        break;
      }
      default: break;
    }
  }
}

// Copies of one matrix, each starting at a 4 KiB boundary, as many as make
// kWorkingSetBytes (at least two).
struct MatrixSet {
  DType dtype = format::DTYPE_UNSPECIFIED;
  uint64_t rows = 0;
  uint64_t cols = 0;
  AlignedBytes bytes;
  std::vector<WeightView> copies;
  uint64_t matrix_bytes = 0;
};

// The set for (dtype, rows, cols), kept between benchmark runs; only one set
// lives at a time, so memory stays near kWorkingSetBytes.
const MatrixSet& GetMatrixSet(DType dtype, uint64_t rows, uint64_t cols) {
  static MatrixSet set;
  if (set.dtype == dtype && set.rows == rows && set.cols == cols) return set;
  set = MatrixSet{};
  set.dtype = dtype;
  set.rows = rows;
  set.cols = cols;
  set.matrix_bytes = rows * cols / format::BlockElements(dtype) * format::BlockBytes(dtype);
  const uint64_t stride = RoundUp(set.matrix_bytes, kAlignment);
  const uint64_t count = std::max<uint64_t>(2, kWorkingSetBytes / stride);
  set.bytes = AllocateAligned(stride * count);
  FillWeights(dtype, set.bytes.get(), stride * count, rows * 131 + cols);
  for (uint64_t i = 0; i < count; ++i) {
    absl::StatusOr<WeightView> view = WeightView::FromBytes(
        dtype, rows, cols, std::span<const uint8_t>(set.bytes.get() + i * stride, set.matrix_bytes));
    if (!view.ok()) std::abort();
    set.copies.push_back(*view);
  }
  return set;
}

std::vector<float> InputVector(uint64_t n) {
  std::vector<float> x(n);
  for (uint64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37) % 101) / 101.0f - 0.5f;
  return x;
}

// Returns false (and skips) when the CPU lacks the level.
bool SetUpLevel(benchmark::State& state, int64_t arg, SimdLevel* level) {
  *level = static_cast<SimdLevel>(arg);
  if (format::SupportedSimdLevel(*level) != *level) {
    state.SkipWithError("this CPU lacks the instruction set");
    return false;
  }
  return true;
}

void MatVecBenchmark(benchmark::State& state, DType dtype) {
  const uint64_t rows = static_cast<uint64_t>(state.range(0));
  const uint64_t cols = static_cast<uint64_t>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  SimdLevel level;
  if (!SetUpLevel(state, state.range(3), &level)) return;
  const MatrixSet& set = GetMatrixSet(dtype, rows, cols);
  ThreadPool pool(threads);
  const std::vector<float> x = InputVector(cols);
  std::vector<float> y(rows);
  size_t next = 0;
  for (auto _ : state) {
    MatVec(set.copies[next], x.data(), y.data(), &pool, level);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++next == set.copies.size()) next = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * set.matrix_bytes));
  state.SetLabel(std::string(format::SimdLevelName(level)));
}

void BM_MatVecQ4_0(benchmark::State& state) { MatVecBenchmark(state, format::DTYPE_Q4_0); }
void BM_MatVecQ4_K(benchmark::State& state) { MatVecBenchmark(state, format::DTYPE_Q4_K); }
void BM_MatVecQ5_K(benchmark::State& state) { MatVecBenchmark(state, format::DTYPE_Q5_K); }
void BM_MatVecQ6_K(benchmark::State& state) { MatVecBenchmark(state, format::DTYPE_Q6_K); }
void BM_MatVecF16(benchmark::State& state) { MatVecBenchmark(state, format::DTYPE_F16); }

void MatVecArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "cols", "threads", "level"});
  const int64_t shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
  for (const auto& shape : shapes) {
    for (int64_t level : {2, 1}) {
      for (int64_t threads : {1, 2}) b->Args({shape[0], shape[1], threads, level});
    }
  }
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_MatVecQ4_0)->Apply(MatVecArgs);
BENCHMARK(BM_MatVecQ4_K)->Apply(MatVecArgs);
BENCHMARK(BM_MatVecQ5_K)->Apply(MatVecArgs);
BENCHMARK(BM_MatVecQ6_K)->Apply(MatVecArgs);
BENCHMARK(BM_MatVecF16)->Apply(MatVecArgs);

// ------------------------------------------------------------- MatMul ---

// Prompt processing: n input vectors at once. items/s counts multiply-adds.
void MatMulBenchmark(benchmark::State& state, DType dtype) {
  const uint64_t rows = static_cast<uint64_t>(state.range(0));
  const uint64_t cols = static_cast<uint64_t>(state.range(1));
  const size_t n = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const MatrixSet& set = GetMatrixSet(dtype, rows, cols);
  ThreadPool pool(threads);
  const std::vector<float> x = InputVector(n * cols);
  std::vector<float> y(n * rows);
  size_t next = 0;
  for (auto _ : state) {
    MatMul(set.copies[next], x.data(), n, y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++next == set.copies.size()) next = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n * rows * cols));
  state.SetLabel(std::string(format::SimdLevelName(format::DetectSimdLevel())));
}

void BM_MatMulQ4_0(benchmark::State& state) { MatMulBenchmark(state, format::DTYPE_Q4_0); }
void BM_MatMulQ8_0(benchmark::State& state) { MatMulBenchmark(state, format::DTYPE_Q8_0); }
void BM_MatMulQ4_K(benchmark::State& state) { MatMulBenchmark(state, format::DTYPE_Q4_K); }
void BM_MatMulQ5_K(benchmark::State& state) { MatMulBenchmark(state, format::DTYPE_Q5_K); }
void BM_MatMulQ6_K(benchmark::State& state) { MatMulBenchmark(state, format::DTYPE_Q6_K); }

void MatMulArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "cols", "n", "threads"})
      ->ArgsProduct({{2048}, {768}, {16, 128}, {1, 2}})
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_MatMulQ4_0)->Apply(MatMulArgs);
BENCHMARK(BM_MatMulQ8_0)->Apply(MatMulArgs);
BENCHMARK(BM_MatMulQ4_K)->Apply(MatMulArgs);
BENCHMARK(BM_MatMulQ5_K)->Apply(MatMulArgs);
BENCHMARK(BM_MatMulQ6_K)->Apply(MatMulArgs);

// ------------------------------------------------ one stories110m token ---

struct ModelSet {
  AlignedBytes bytes;
  std::vector<std::vector<WeightView>> copies;  // per copy, in execution order
  uint64_t model_bytes = 0;
};

const ModelSet& GetModelSet() {
  static const ModelSet* const model = [] {
    constexpr uint64_t kHidden = 768;
    constexpr uint64_t kFfn = 2048;
    constexpr uint64_t kVocab = 32000;
    constexpr int kLayers = 12;
    std::vector<std::pair<uint64_t, uint64_t>> shapes;
    for (int layer = 0; layer < kLayers; ++layer) {
      for (int i = 0; i < 4; ++i) shapes.push_back({kHidden, kHidden});  // q, k, v, o
      shapes.push_back({kFfn, kHidden});                                // gate
      shapes.push_back({kFfn, kHidden});                                // up
      shapes.push_back({kHidden, kFfn});                                // down
    }
    shapes.push_back({kVocab, kHidden});  // output
    auto* set = new ModelSet;
    uint64_t stride = 0;
    for (const auto& [rows, cols] : shapes) {
      const uint64_t bytes = rows * cols / 32 * 18;
      set->model_bytes += bytes;
      stride += RoundUp(bytes, kAlignment);
    }
    const uint64_t count = std::max<uint64_t>(2, (kWorkingSetBytes + stride - 1) / stride);
    set->bytes = AllocateAligned(stride * count);
    FillWeights(format::DTYPE_Q4_0, set->bytes.get(), stride * count, 110);
    uint64_t offset = 0;
    for (uint64_t c = 0; c < count; ++c) {
      std::vector<WeightView> views;
      for (const auto& [rows, cols] : shapes) {
        const uint64_t bytes = rows * cols / 32 * 18;
        absl::StatusOr<WeightView> view = WeightView::FromBytes(
            format::DTYPE_Q4_0, rows, cols,
            std::span<const uint8_t>(set->bytes.get() + offset, bytes));
        if (!view.ok()) std::abort();
        views.push_back(*view);
        offset += RoundUp(bytes, kAlignment);
      }
      set->copies.push_back(std::move(views));
    }
    return set;
  }();
  return *model;
}

void BM_Stories110mTokenQ4_0(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  SimdLevel level;
  if (!SetUpLevel(state, state.range(1), &level)) return;
  const ModelSet& model = GetModelSet();
  ThreadPool pool(threads);
  const std::vector<float> x = InputVector(32000);
  std::vector<float> y(32000);
  size_t next = 0;
  for (auto _ : state) {
    for (const WeightView& w : model.copies[next]) {
      MatVec(w, x.data(), y.data(), &pool, level);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++next == model.copies.size()) next = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * model.model_bytes));
  state.SetLabel(std::string(format::SimdLevelName(level)));
}

BENCHMARK(BM_Stories110mTokenQ4_0)
    ->ArgNames({"threads", "level"})
    ->ArgsProduct({{1, 2}, {2, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ------------------------------------------------------- pool overhead ---

// One ParallelFor of trivial pieces: the fixed cost every MatVec call pays.
void BM_ParallelForOverhead(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<size_t> sink(ThreadPool::kMaxThreads * ThreadPool::kPiecesPerThread);
  for (auto _ : state) {
    pool.ParallelFor(0, 1024, 8, [&](size_t begin, size_t end) { sink[begin / 128] = end; });
    benchmark::DoNotOptimize(sink.data());
  }
}

BENCHMARK(BM_ParallelForOverhead)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

// One ParallelFor of 64 pieces of ~5 us of arithmetic each, with pools of up
// to many more threads than cores: idle threads must not take the cores from
// the ones with pieces (a pool that spins when oversubscribed is 10-40x
// slower at 16-64 threads on 2 cores).
void BM_ParallelForBusyPieces(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<double> sink(64);
  for (auto _ : state) {
    pool.ParallelFor(0, sink.size(), 1, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        double x = 0;
        for (int j = 0; j < 5000; ++j) x += j * 1e-9;
        sink[i] = x;
      }
    });
    benchmark::DoNotOptimize(sink.data());
  }
}

BENCHMARK(BM_ParallelForBusyPieces)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Arg(16)
    ->Arg(64)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --------------------------------------------------------- read bandwidth ---

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) float SumAvx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps();
  __m256 a1 = a0;
  __m256 a2 = a0;
  __m256 a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float sum = 0;
  for (float f : lanes) sum += f;
  for (; i < n; ++i) sum += p[i];
  return sum;
}
#endif

float SumScalar(const float* p, size_t n) {
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (size_t k = 0; k < 16; ++k) acc[k] += p[i + k];
  }
  float sum = 0;
  for (float f : acc) sum += f;
  for (; i < n; ++i) sum += p[i];
  return sum;
}

float Sum(const float* p, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
  if (format::DetectSimdLevel() >= SimdLevel::kAvx2) return SumAvx2(p, n);
#endif
  return SumScalar(p, n);
}

void BM_ReadBandwidth(benchmark::State& state) {
  static const AlignedBytes buffer = [] {
    AlignedBytes b = AllocateAligned(kBandwidthBufferBytes);
    // Small finite floats (writing them also faults every page in).
    float* f = reinterpret_cast<float*>(b.get());
    for (uint64_t i = 0; i < kBandwidthBufferBytes / 4; ++i) f[i] = static_cast<float>(i & 7);
    return b;
  }();
  const float* data = reinterpret_cast<const float*>(buffer.get());
  const size_t n = kBandwidthBufferBytes / sizeof(float);
  ThreadPool pool(static_cast<int>(state.range(0)));
  // One piece per thread, each a contiguous part, like MatVec's row split.
  const size_t grain = (n / static_cast<size_t>(pool.num_threads()) + 15) / 16 * 16;
  std::vector<float> sums(ThreadPool::kMaxThreads * ThreadPool::kPiecesPerThread);
  for (auto _ : state) {
    pool.ParallelFor(0, n, grain, [&](size_t begin, size_t end) {
      sums[begin / grain] = Sum(data + begin, end - begin);
    });
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBandwidthBufferBytes));
}

BENCHMARK(BM_ReadBandwidth)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace
}  // namespace zcpack::runtime

BENCHMARK_MAIN();
