// quantize_benchmark: single-thread throughput of the Q4 quantizers, in bytes
// of FP16 input per second, at every SIMD level the CPU supports (so one run
// gives the scalar/SIMD ratio).
//
// Data: 256 rows of 4096 weights, like one slice of a transformer projection:
// each row normal with its own scale (log-uniform in [0.01, 0.04]), and 8
// input channels (columns) 20x larger in every row, the outlier channels LLM
// weight matrices are known for. Values are rounded to FP16 first, as a
// converter reads them.
//
//   BM_QuantizeQ4_0 / BM_QuantizeQ4_K: the block quantizers alone, from
//     floats already widened from FP16 (bytes counted as the FP16 input).
//   BM_QuantizeRowsQ4_0 / BM_QuantizeRowsQ4_K: QuantizeRows() from FP16
//     bytes: widen, quantize, decode and measure the error, per row (what the
//     conversion pipeline runs per thread).
//   BM_DequantizeQ4_0 / BM_DequantizeQ4_K: the reference decoders, in bytes
//     of float output per second.
// Argument: 0 scalar, 1 AVX2, 2 AVX-512 (skipped where the CPU lacks it).
// Numbers only; nothing is asserted.
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "zcpack/converter/quantize.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack::converter {
namespace {

using format::SimdLevel;

constexpr size_t kRowLength = 4096;
constexpr size_t kRows = 256;
constexpr size_t kElements = kRowLength * kRows;

struct Weights {
  std::vector<uint8_t> f16;   // little-endian FP16, as read from a checkpoint
  std::vector<float> floats;  // the same values widened
};

const Weights& TestWeights() {
  static const Weights* weights = [] {
    auto* w = new Weights;
    std::mt19937 rng(2024);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(std::log(0.01f), std::log(0.04f));
    std::vector<size_t> outlier_columns;
    for (int i = 0; i < 8; ++i) outlier_columns.push_back(rng() % kRowLength);
    w->f16.resize(2 * kElements);
    w->floats.resize(kElements);
    for (size_t r = 0; r < kRows; ++r) {
      const float scale = std::exp(log_scale(rng));
      for (size_t c = 0; c < kRowLength; ++c) {
        float x = scale * normal(rng);
        for (size_t o : outlier_columns) {
          if (c == o) x *= 20.0f;
        }
        const uint16_t h = format::FloatToHalf(x);
        w->f16[2 * (r * kRowLength + c)] = static_cast<uint8_t>(h);
        w->f16[2 * (r * kRowLength + c) + 1] = static_cast<uint8_t>(h >> 8);
        w->floats[r * kRowLength + c] = format::HalfToFloat(h);
      }
    }
    return w;
  }();
  return *weights;
}

// Skips the benchmark when the CPU lacks the level; returns the level.
bool Level(benchmark::State& state, SimdLevel* level) {
  *level = static_cast<SimdLevel>(state.range(0));
  if (format::SupportedSimdLevel(*level) != *level) {
    state.SkipWithError("this CPU lacks the instruction set");
    return false;
  }
  state.SetLabel(std::string(format::SimdLevelName(*level)));
  return true;
}

void BM_QuantizeQ4_0(benchmark::State& state) {
  SimdLevel level;
  if (!Level(state, &level)) return;
  const Weights& w = TestWeights();
  std::vector<uint8_t> out(kElements / 32 * 18);
  for (auto _ : state) {
    QuantizeQ4_0(w.floats.data(), kElements, out.data(), level);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.f16.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kElements));
}

void BM_QuantizeQ4_K(benchmark::State& state) {
  SimdLevel level;
  if (!Level(state, &level)) return;
  const Weights& w = TestWeights();
  std::vector<uint8_t> out(kElements / 256 * 144);
  for (auto _ : state) {
    QuantizeQ4_K(w.floats.data(), kElements, out.data(), level);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.f16.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kElements));
}

void QuantizeRowsBenchmark(benchmark::State& state, format::DType dtype) {
  SimdLevel level;
  if (!Level(state, &level)) return;
  const Weights& w = TestWeights();
  std::vector<uint8_t> out(kElements / format::BlockElements(dtype) * format::BlockBytes(dtype));
  QuantErrorAccumulator stats;
  for (auto _ : state) {
    QuantErrorAccumulator row_stats;
    const absl::Status s =
        QuantizeRows(format::DTYPE_F16, w.f16, kRowLength, dtype, out, &row_stats, level);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
    stats = row_stats;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.f16.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kElements));
  state.counters["snr_db"] = stats.snr_db();
  state.counters["rmse"] = stats.rmse();
}

void BM_QuantizeRowsQ4_0(benchmark::State& state) {
  QuantizeRowsBenchmark(state, format::DTYPE_Q4_0);
}
void BM_QuantizeRowsQ4_K(benchmark::State& state) {
  QuantizeRowsBenchmark(state, format::DTYPE_Q4_K);
}

void DequantizeBenchmark(benchmark::State& state, format::DType dtype) {
  SimdLevel level;
  if (!Level(state, &level)) return;
  const Weights& w = TestWeights();
  std::vector<uint8_t> blocks(kElements / format::BlockElements(dtype) * format::BlockBytes(dtype));
  std::vector<float> out(kElements);
  if (dtype == format::DTYPE_Q4_0) {
    QuantizeQ4_0(w.floats.data(), kElements, blocks.data());
  } else {
    QuantizeQ4_K(w.floats.data(), kElements, blocks.data());
  }
  for (auto _ : state) {
    if (dtype == format::DTYPE_Q4_0) {
      format::DequantizeQ4_0(blocks.data(), kElements, out.data(), level);
    } else {
      format::DequantizeQ4_K(blocks.data(), kElements, out.data(), level);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kElements * sizeof(float)));
}

void BM_DequantizeQ4_0(benchmark::State& state) { DequantizeBenchmark(state, format::DTYPE_Q4_0); }
void BM_DequantizeQ4_K(benchmark::State& state) { DequantizeBenchmark(state, format::DTYPE_Q4_K); }

BENCHMARK(BM_QuantizeQ4_0)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QuantizeQ4_K)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QuantizeRowsQ4_0)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QuantizeRowsQ4_K)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DequantizeQ4_0)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DequantizeQ4_K)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zcpack::converter

BENCHMARK_MAIN();
