// Matrix products over in-place weights, DequantizeRow() and the ThreadPool.
//
// The products are checked against a scalar reference written here: weights
// decoded by format's reference decoders (or HalfToFloat / BFloat16ToFloat),
// dot products accumulated in double. Every SimdLevel the machine supports is
// tested. Tolerance: 1e-5 of sum |w_i * x_i| (float accumulation in any order
// stays far inside it at these lengths), plus for quantized weights the bound
// kernels.h states for int8 activations: for q4_0 and q8_0, sum over blocks
// of 32 of (max |x| in the block / 254) * (1 + 1/8) * sum |w| in the block
// (the 1/8 covers the binary16 scale); for the k-quants, over super-blocks of
// 256 with (1 + 2^-10) (the float scale's rounding).
#include "zcpack/runtime/kernels.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/thread_pool.h"

namespace zcpack::runtime {
namespace {

using format::DType;
using format::SimdLevel;

constexpr double kRelativeTolerance = 1e-5;

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> levels;
  for (int l = 0; l <= static_cast<int>(format::DetectSimdLevel()); ++l) {
    levels.push_back(static_cast<SimdLevel>(l));
  }
  return levels;
}

// A finite fp16 scale of either sign, magnitude log-uniform in [2^-10, 1].
uint16_t RandomScale(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> log2_magnitude(-10.0f, 0.0f);
  const float magnitude = std::exp2(log2_magnitude(rng));
  return format::FloatToHalf((rng() & 1) != 0 ? -magnitude : magnitude);
}

// Random stored bytes for a [rows, cols] matrix: random nibbles and q4_k
// scale bytes, finite fp16 block scales, normal float elements.
std::vector<uint8_t> RandomWeights(DType dtype, uint64_t rows, uint64_t cols,
                                   std::mt19937_64& rng) {
  const uint64_t blocks = rows * cols / format::BlockElements(dtype);
  std::vector<uint8_t> bytes(blocks * format::BlockBytes(dtype));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  for (uint64_t i = 0; i < blocks; ++i) {
    uint8_t* block = bytes.data() + i * format::BlockBytes(dtype);
    switch (dtype) {
      case format::DTYPE_Q4_0:
      case format::DTYPE_Q5_0:
      case format::DTYPE_Q8_0: format::EncodeFixed16(block, RandomScale(rng)); break;
      case format::DTYPE_Q4_1:
      case format::DTYPE_Q5_1:
      case format::DTYPE_Q4_K:
      case format::DTYPE_Q5_K:
        format::EncodeFixed16(block, RandomScale(rng));
        format::EncodeFixed16(block + 2, RandomScale(rng));
        break;
      case format::DTYPE_Q6_K: format::EncodeFixed16(block + 208, RandomScale(rng)); break;
      case format::DTYPE_F16: format::EncodeFixed16(block, format::FloatToHalf(normal(rng))); break;
      case format::DTYPE_BF16:
        format::EncodeFixed16(block, format::FloatToBFloat16(normal(rng)));
        break;
      case format::DTYPE_F32:
        format::EncodeFixed32(block, std::bit_cast<uint32_t>(normal(rng)));
        break;
      default: ADD_FAILURE() << "unexpected dtype";
    }
  }
  return bytes;
}

std::vector<float> RandomVector(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// The reference decoding of row r.
std::vector<float> ReferenceRow(const WeightView& w, uint64_t r) {
  std::vector<float> out(w.cols);
  const uint8_t* row = w.data + r * w.row_bytes();
  switch (w.dtype) {
    case format::DTYPE_Q4_0:
      format::DequantizeQ4_0(row, w.cols, out.data(), SimdLevel::kScalar);
      break;
    case format::DTYPE_Q4_K:
      format::DequantizeQ4_K(row, w.cols, out.data(), SimdLevel::kScalar);
      break;
    case format::DTYPE_Q4_1:
    case format::DTYPE_Q5_0:
    case format::DTYPE_Q5_1:
      EXPECT_TRUE(format::ConvertToFloat(w.dtype, row, w.cols, out.data(), SimdLevel::kScalar).ok());
      break;
    case format::DTYPE_Q5_K:
      format::DequantizeQ5_K(row, w.cols, out.data(), SimdLevel::kScalar);
      break;
    case format::DTYPE_Q6_K:
      format::DequantizeQ6_K(row, w.cols, out.data(), SimdLevel::kScalar);
      break;
    case format::DTYPE_Q8_0:
      // value = int8 * d (ggml's block_q8_0), written out independently.
      for (uint64_t i = 0; i < w.cols; ++i) {
        const uint8_t* block = row + i / 32 * format::kQ8_0BlockBytes;
        out[i] = static_cast<float>(static_cast<int8_t>(block[2 + i % 32])) *
                 format::HalfToFloat(format::DecodeFixed16(block));
      }
      break;
    case format::DTYPE_F16:
      for (uint64_t i = 0; i < w.cols; ++i) out[i] = format::HalfToFloat(format::DecodeFixed16(row + 2 * i));
      break;
    case format::DTYPE_BF16:
      for (uint64_t i = 0; i < w.cols; ++i) {
        out[i] = format::BFloat16ToFloat(format::DecodeFixed16(row + 2 * i));
      }
      break;
    case format::DTYPE_F32:
      for (uint64_t i = 0; i < w.cols; ++i) {
        out[i] = std::bit_cast<float>(format::DecodeFixed32(row + 4 * i));
      }
      break;
    default: ADD_FAILURE() << "unexpected dtype";
  }
  return out;
}

struct Reference {
  double value = 0;
  double magnitude = 0;        // sum |w_i * x_i|
  double quantization = 0;     // the int8-activation bound (quantized weights)
};

// The activation as the kernels multiply it: f16 and bf16 weights take it
// rounded to their own type, as ggml does (kernels.h).
double ActivationFor(DType dtype, float x) {
  if (dtype == format::DTYPE_F16) return format::HalfToFloat(format::FloatToHalf(x));
  if (dtype == format::DTYPE_BF16) return format::BFloat16ToFloat(format::FloatToBFloat16(x));
  return x;
}

Reference ReferenceDot(const std::vector<float>& w, const float* x, DType dtype) {
  Reference ref;
  for (size_t i = 0; i < w.size(); ++i) {
    const double p = static_cast<double>(w[i]) * ActivationFor(dtype, x[i]);
    ref.value += p;
    ref.magnitude += std::abs(p);
  }
  if (format::IsQuantized(dtype)) {
    const bool k_quant = dtype == format::DTYPE_Q4_K || dtype == format::DTYPE_Q5_K ||
                         dtype == format::DTYPE_Q6_K;
    const size_t block = k_quant ? 256 : 32;
    const double scale_rounding = k_quant ? 1.0 + 1.0 / 1024 : 1.125;
    for (size_t b = 0; b < w.size(); b += block) {
      double amax = 0, wsum = 0;
      for (size_t i = b; i < b + block; ++i) {
        amax = std::max(amax, std::abs(static_cast<double>(x[i])));
        wsum += std::abs(static_cast<double>(w[i]));
      }
      ref.quantization += amax / 254.0 * scale_rounding * wsum;
    }
  }
  return ref;
}

void ExpectNear(float actual, const Reference& ref, const std::string& where) {
  EXPECT_LE(std::abs(static_cast<double>(actual) - ref.value),
            kRelativeTolerance * ref.magnitude + ref.quantization)
      << where << ": got " << actual << ", reference " << ref.value << " (sum |w x| "
      << ref.magnitude << ", quantization bound " << ref.quantization << ")";
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Column counts per dtype: several multiples of the block, and for float
// types lengths around the 8- and 16-float vector sizes.
std::vector<uint64_t> TestCols(DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0:
    case format::DTYPE_Q4_1:
    case format::DTYPE_Q5_0:
    case format::DTYPE_Q5_1:
    case format::DTYPE_Q8_0: return {32, 64, 96, 256, 544, 1024};
    case format::DTYPE_Q4_K:
    case format::DTYPE_Q5_K:
    case format::DTYPE_Q6_K: return {256, 512, 768, 1280};
    default: return {1, 7, 8, 15, 16, 17, 31, 33, 48, 100, 769};
  }
}

const std::vector<uint64_t> kTestRows = {1, 3, 4, 5, 13, 37};

// A random matrix that owns its bytes.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  WeightView view;
};

TestMatrix MakeMatrix(DType dtype, uint64_t rows, uint64_t cols, std::mt19937_64& rng) {
  TestMatrix m;
  m.bytes = RandomWeights(dtype, rows, cols, rng);
  absl::StatusOr<WeightView> view = WeightView::FromBytes(dtype, rows, cols, m.bytes);
  EXPECT_TRUE(view.ok()) << view.status();
  if (view.ok()) m.view = *view;
  return m;
}

std::string Where(SimdLevel level, const WeightView& w) {
  return absl::StrCat(format::SimdLevelName(level), " ", format::DTypeName(w.dtype), " [", w.rows,
                      ", ", w.cols, "]");
}

class KernelsTest : public ::testing::TestWithParam<DType> {};

std::string DTypeTestName(const ::testing::TestParamInfo<DType>& param_info) {
  return std::string(format::DTypeName(param_info.param));
}

TEST_P(KernelsTest, MatVecMatchesReferenceAtEveryLevel) {
  std::mt19937_64 rng(1);
  for (uint64_t cols : TestCols(GetParam())) {
    for (uint64_t rows : kTestRows) {
      const TestMatrix m = MakeMatrix(GetParam(), rows, cols, rng);
      const std::vector<float> x = RandomVector(cols, rng);
      for (SimdLevel level : SupportedLevels()) {
        std::vector<float> y(rows, -1.0f);
        MatVec(m.view, x.data(), y.data(), nullptr, level);
        for (uint64_t r = 0; r < rows; ++r) {
          ExpectNear(y[r], ReferenceDot(ReferenceRow(m.view, r), x.data(), m.view.dtype),
                     absl::StrCat(Where(level, m.view), " row ", r));
        }
      }
    }
  }
}

TEST_P(KernelsTest, MatMulEqualsMatVecOfEachInputBitForBit) {
  std::mt19937_64 rng(2);
  for (uint64_t cols : TestCols(GetParam())) {
    for (uint64_t rows : {uint64_t{3}, uint64_t{13}}) {
      const TestMatrix m = MakeMatrix(GetParam(), rows, cols, rng);
      for (size_t n : {size_t{1}, size_t{2}, size_t{5}}) {
        const std::vector<float> x = RandomVector(n * cols, rng);
        for (SimdLevel level : SupportedLevels()) {
          std::vector<float> y(n * rows, -1.0f);
          MatMul(m.view, x.data(), n, y.data(), nullptr, level);
          for (size_t j = 0; j < n; ++j) {
            std::vector<float> expected(rows);
            MatVec(m.view, x.data() + j * cols, expected.data(), nullptr, level);
            const std::vector<float> got(y.begin() + j * rows, y.begin() + (j + 1) * rows);
            // q4_k inputs in whole groups of four fold their sums more often
            // (kernels.h): bit for bit only past them, close for all.
            if (m.view.dtype != format::DTYPE_Q4_K || j >= n - n % 4) {
              EXPECT_TRUE(BitIdentical(got, expected)) << Where(level, m.view) << " input " << j;
            }
            for (uint64_t r = 0; r < rows; ++r) {
              ExpectNear(got[r], ReferenceDot(ReferenceRow(m.view, r), x.data() + j * cols, m.view.dtype),
                         absl::StrCat(Where(level, m.view), " input ", j, " row ", r));
            }
          }
        }
      }
    }
  }
}

TEST_P(KernelsTest, ResultsDoNotDependOnThreadCount) {
  std::mt19937_64 rng(3);
  // Enough rows (and bytes) that MatVec splits them into many pieces; 1001 is
  // a multiple of neither the row group nor any piece count.
  const uint64_t cols = format::IsQuantized(GetParam()) ? 512 : 300;
  const uint64_t rows = 1001;
  const size_t n = 3;
  const TestMatrix m = MakeMatrix(GetParam(), rows, cols, rng);
  const std::vector<float> x = RandomVector(n * cols, rng);
  ThreadPool pool1(1);
  ThreadPool pool2(2);
  ThreadPool pool3(3);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<float> matvec_serial(rows);
    std::vector<float> matmul_serial(n * rows);
    MatVec(m.view, x.data(), matvec_serial.data(), nullptr, level);
    MatMul(m.view, x.data(), n, matmul_serial.data(), nullptr, level);
    for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<float> matvec(rows, -1.0f);
        std::vector<float> matmul(n * rows, -1.0f);
        MatVec(m.view, x.data(), matvec.data(), pool, level);
        MatMul(m.view, x.data(), n, matmul.data(), pool, level);
        EXPECT_TRUE(BitIdentical(matvec, matvec_serial))
            << Where(level, m.view) << " MatVec, " << pool->num_threads() << " threads";
        EXPECT_TRUE(BitIdentical(matmul, matmul_serial))
            << Where(level, m.view) << " MatMul, " << pool->num_threads() << " threads";
      }
    }
  }
}

TEST_P(KernelsTest, DequantizeRowEqualsReferenceDecoder) {
  std::mt19937_64 rng(4);
  for (uint64_t cols : TestCols(GetParam())) {
    const TestMatrix m = MakeMatrix(GetParam(), 5, cols, rng);
    for (uint64_t r = 0; r < m.view.rows; ++r) {
      std::vector<float> row(cols, -1.0f);
      DequantizeRow(m.view, r, row.data());
      EXPECT_TRUE(BitIdentical(row, ReferenceRow(m.view, r))) << Where(format::DetectSimdLevel(), m.view)
                                                               << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, KernelsTest,
                         ::testing::Values(format::DTYPE_F32, format::DTYPE_F16,
                                           format::DTYPE_BF16, format::DTYPE_Q4_0,
                                           format::DTYPE_Q4_K, format::DTYPE_Q8_0,
                                           format::DTYPE_Q4_1, format::DTYPE_Q5_0,
                                           format::DTYPE_Q5_1, format::DTYPE_Q5_K,
                                           format::DTYPE_Q6_K),
                         DTypeTestName);

// A level the CPU lacks is lowered, not run.
TEST(Kernels, UnsupportedLevelRunsALowerOne) {
  std::mt19937_64 rng(5);
  const TestMatrix m = MakeMatrix(format::DTYPE_Q4_0, 9, 128, rng);
  const std::vector<float> x = RandomVector(128, rng);
  std::vector<float> best(9);
  std::vector<float> requested(9);
  MatVec(m.view, x.data(), best.data(), nullptr, format::DetectSimdLevel());
  MatVec(m.view, x.data(), requested.data(), nullptr, SimdLevel::kAvx512);
  EXPECT_TRUE(BitIdentical(best, requested));
}

TEST(Kernels, MatMulOfNoInputsWritesNothing) {
  std::mt19937_64 rng(6);
  const TestMatrix m = MakeMatrix(format::DTYPE_F16, 4, 16, rng);
  float y = 42.0f;
  MatMul(m.view, nullptr, 0, &y, nullptr);
  EXPECT_EQ(y, 42.0f);
}

// ------------------------------------------------------------ WeightView ---

TEST(WeightView, FromBytesAcceptsExactSize) {
  std::vector<uint8_t> bytes(3 * 2 * 18);
  absl::StatusOr<WeightView> view = WeightView::FromBytes(format::DTYPE_Q4_0, 3, 64, bytes);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->rows, 3u);
  EXPECT_EQ(view->cols, 64u);
  EXPECT_EQ(view->row_bytes(), 36u);
  EXPECT_EQ(view->data, bytes.data());  // a view, not a copy
}

TEST(WeightView, FromBytesRejectsBadInput) {
  std::vector<uint8_t> bytes(4096);
  const struct {
    DType dtype;
    uint64_t rows, cols, size;
  } cases[] = {
      {format::DTYPE_Q4_0, 2, 64, 71},             // one byte short
      {format::DTYPE_Q4_0, 2, 64, 73},             // one byte long
      {format::DTYPE_Q4_0, 2, 48, 54},             // cols not a multiple of 32
      {format::DTYPE_Q4_K, 1, 128, 72},            // cols not a multiple of 256
      {format::DTYPE_F16, 0, 8, 0},                // zero rows
      {format::DTYPE_UNSPECIFIED, 1, 4, 16},       // no dtype
      {static_cast<DType>(99), 1, 4, 16},          // unknown dtype
  };
  for (const auto& c : cases) {
    absl::StatusOr<WeightView> view = WeightView::FromBytes(
        c.dtype, c.rows, c.cols, std::span<const uint8_t>(bytes.data(), c.size));
    EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument)
        << static_cast<int>(c.dtype) << " [" << c.rows << ", " << c.cols << "] " << c.size;
  }
}

TEST(WeightView, FromTensorChecksRankAndSizeAndNamesTheTensor) {
  std::vector<uint8_t> bytes(2 * 16 * 2);
  format::TensorEntry entry;
  entry.set_name("blk.0.ffn_up.weight");
  entry.set_dtype(format::DTYPE_F16);
  entry.add_shape(2);
  entry.add_shape(16);
  entry.set_nbytes(bytes.size());
  absl::StatusOr<WeightView> view = WeightView::FromTensor(entry, bytes);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->rows, 2u);
  EXPECT_EQ(view->cols, 16u);

  absl::StatusOr<WeightView> short_data =
      WeightView::FromTensor(entry, std::span<const uint8_t>(bytes.data(), bytes.size() - 2));
  EXPECT_EQ(short_data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(short_data.status().message().find("blk.0.ffn_up.weight"), absl::string_view::npos);

  format::TensorEntry vector = entry;
  vector.clear_shape();
  vector.add_shape(32);
  absl::StatusOr<WeightView> rank1 = WeightView::FromTensor(vector, bytes);
  EXPECT_EQ(rank1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rank1.status().message().find("blk.0.ffn_up.weight"), absl::string_view::npos);

  format::TensorEntry wrong_nbytes = entry;
  wrong_nbytes.set_dtype(format::DTYPE_F32);  // shape now needs 128 bytes
  wrong_nbytes.set_nbytes(bytes.size());
  EXPECT_EQ(WeightView::FromTensor(wrong_nbytes, bytes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------ ThreadPool ---

struct Piece {
  size_t begin, end;
  bool operator<(const Piece& o) const { return begin < o.begin; }
  bool operator==(const Piece& o) const { return begin == o.begin && end == o.end; }
};

// Runs ParallelFor and returns its pieces in order, checking that every index
// was visited exactly once.
std::vector<Piece> RecordPieces(ThreadPool& pool, size_t begin, size_t end, size_t grain) {
  std::vector<std::atomic<int>> visits(end);
  std::mutex mu;
  std::vector<Piece> pieces;
  pool.ParallelFor(begin, end, grain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) visits[i].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu);
    pieces.push_back({b, e});
  });
  for (size_t i = 0; i < end; ++i) {
    EXPECT_EQ(visits[i].load(), i >= begin ? 1 : 0) << "index " << i << " of [" << begin << ", "
                                                    << end << ") grain " << grain;
  }
  std::sort(pieces.begin(), pieces.end());
  return pieces;
}

TEST(ThreadPool, CoversEveryIndexExactlyOnceInDeterministicPieces) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (size_t begin : {size_t{0}, size_t{7}}) {
      for (size_t count : {size_t{1}, size_t{2}, size_t{5}, size_t{64}, size_t{1001}}) {
        for (size_t grain : {size_t{0}, size_t{1}, size_t{4}, size_t{100}}) {
          const size_t end = begin + count;
          const std::vector<Piece> pieces = RecordPieces(pool, begin, end, grain);
          ASSERT_FALSE(pieces.empty());
          const size_t g = std::max<size_t>(grain, 1);
          const size_t units = (count + g - 1) / g;
          EXPECT_EQ(pieces.size(), std::min(units, threads * ThreadPool::kPiecesPerThread));
          EXPECT_EQ(pieces.front().begin, begin);
          EXPECT_EQ(pieces.back().end, end);
          for (size_t i = 0; i < pieces.size(); ++i) {
            EXPECT_LT(pieces[i].begin, pieces[i].end);
            EXPECT_EQ((pieces[i].begin - begin) % g, 0u);
            if (i + 1 < pieces.size()) {
              EXPECT_EQ(pieces[i].end, pieces[i + 1].begin);
            }
          }
          EXPECT_EQ(RecordPieces(pool, begin, end, grain), pieces) << "split changed between calls";
        }
      }
    }
  }
}

TEST(ThreadPool, EmptyRangeCallsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(5, 5, 1, [&](size_t, size_t) { ++calls; });
  pool.ParallelFor(6, 5, 1, [&](size_t, size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ManyShortCallsLoseNoWork) {
  ThreadPool pool(3);
  std::atomic<uint64_t> sum{0};
  uint64_t expected = 0;
  for (size_t call = 0; call < 20000; ++call) {
    const size_t n = 1 + call % 37;
    pool.ParallelFor(0, n, 1, [&](size_t b, size_t e) {
      uint64_t s = 0;
      for (size_t i = b; i < e; ++i) s += i + 1;
      sum.fetch_add(s, std::memory_order_relaxed);
    });
    expected += n * (n + 1) / 2;
  }
  EXPECT_EQ(sum.load(), expected);
}

TEST(ThreadPool, WorkersWakeAfterSleeping) {
  ThreadPool pool(3, std::chrono::microseconds(0));  // block at once when idle
  for (int call = 0; call < 20; ++call) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::vector<Piece> pieces = RecordPieces(pool, 0, 100, 1);
    EXPECT_EQ(pieces.size(), 3 * ThreadPool::kPiecesPerThread);
  }
}

TEST(ThreadPool, NestedCallRunsOnTheCallingThread) {
  ThreadPool pool(2);
  std::atomic<int> inner_visits{0};
  pool.ParallelFor(0, 8, 1, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const std::thread::id outer = std::this_thread::get_id();
      pool.ParallelFor(0, 10, 1, [&](size_t ib, size_t ie) {
        EXPECT_EQ(std::this_thread::get_id(), outer);
        inner_visits.fetch_add(static_cast<int>(ie - ib));
      });
    }
  });
  EXPECT_EQ(inner_visits.load(), 80);
}

TEST(ThreadPool, ConcurrentCallersAreSerialised) {
  ThreadPool pool(3);
  std::atomic<uint64_t> total{0};
  auto caller = [&] {
    for (int call = 0; call < 2000; ++call) {
      pool.ParallelFor(0, 50, 1, [&](size_t b, size_t e) {
        total.fetch_add(e - b, std::memory_order_relaxed);
      });
    }
  };
  std::thread a(caller);
  std::thread b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2u * 2000u * 50u);
}

}  // namespace
}  // namespace zcpack::runtime
