// The integer dot-product family (runtime/src/kernels_int.h) at every
// instruction set this CPU runs, against the scalar reference, bit for bit:
// the activation quantizer, every weight type, partial row groups, any
// number of inputs. Also the arithmetic itself on a hand-computed example,
// and MatMulMany() against separate products.
#include "runtime/src/kernels_int.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/half.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/runtime/kernels.h"
#include "zcpack/runtime/thread_pool.h"

namespace zcpack::runtime::kernels_internal {
namespace {

using format::DType;

std::vector<DotIsa> SimdIsas() {
  std::vector<DotIsa> isas;
  for (DotIsa isa : {DotIsa::kAvx2, DotIsa::kAvxVnni, DotIsa::kAvx512VnniYmm,
                     DotIsa::kAvx512Vnni}) {
    if (DotKernelsFor(isa) != nullptr) isas.push_back(isa);
  }
  return isas;
}

// Where a block keeps its fp16 scale d.
size_t ScaleOffset(DType dtype) { return dtype == format::DTYPE_Q6_K ? 208 : 0; }

// Random weight bytes with finite fp16 scales; every other byte random
// (int8 weights include -128, nibbles and q4_k scale bytes take every value).
std::vector<uint8_t> RandomWeights(DType dtype, uint64_t rows, uint64_t cols,
                                   std::mt19937_64& rng) {
  const uint64_t blocks = rows * cols / format::BlockElements(dtype);
  const uint64_t block_bytes = format::BlockBytes(dtype);
  std::vector<uint8_t> bytes(blocks * block_bytes);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> log2_magnitude(-10.0f, 0.0f);
  auto scale = [&] {
    const float m = std::exp2(log2_magnitude(rng));
    return format::FloatToHalf((rng() & 1) != 0 ? -m : m);
  };
  for (uint64_t i = 0; i < blocks; ++i) {
    format::EncodeFixed16(bytes.data() + i * block_bytes + ScaleOffset(dtype), scale());
    // The second binary16 field: q4_k's and q5_k's dmin, q4_1's and q5_1's min m.
    if (dtype == format::DTYPE_Q4_K || dtype == format::DTYPE_Q5_K ||
        dtype == format::DTYPE_Q4_1 || dtype == format::DTYPE_Q5_1) {
      format::EncodeFixed16(bytes.data() + i * block_bytes + 2, scale());
    }
  }
  return bytes;
}

std::vector<float> RandomInputs(size_t count, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(count);
  for (float& f : x) f = normal(rng);
  return x;
}

bool SameBits(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

void Quantize(const DotKernels& kernels, const std::vector<float>& x, size_t n, size_t cols,
              QuantizedActivations& a) {
  a.Resize(n, cols);
  for (size_t j = 0; j < n; ++j) kernels.quantize(x.data() + j * cols, a, j);
}

// The activations `dtype`'s kernels read (32-blocks or q8_K super-blocks).
void Quantize(const DotKernels& kernels, DType dtype, const std::vector<float>& x, size_t n,
              size_t cols, QuantizedActivations& a) {
  a.Resize(n, cols);
  for (size_t j = 0; j < n; ++j) QuantizerFor(kernels, dtype)(x.data() + j * cols, a, j);
}

TEST(IntegerKernels, QuantizerGivesTheSameBytesAtEveryIsa) {
  std::mt19937_64 rng(11);
  const size_t cols = 32 * 12;
  std::vector<float> x = RandomInputs(cols, rng);
  // Block 1: zeros. Block 2: one huge value. Block 3: exact .5 multiples of
  // the step (ties round to even). Block 4: NaN. Block 5: +inf. Block 6:
  // -inf. Block 7: subnormals. Block 8: a single negative maximum.
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  x[64 + 3] = 3e38f;
  for (size_t e = 0; e < 32; ++e) x[96 + e] = static_cast<float>(e) - 15.5f;
  x[96 + 31] = 127.0f;  // d = 1: every other element is a tie
  x[128 + 7] = std::numeric_limits<float>::quiet_NaN();
  x[160 + 30] = std::numeric_limits<float>::infinity();
  x[192] = -std::numeric_limits<float>::infinity();
  for (size_t e = 0; e < 32; ++e) x[224 + e] = std::numeric_limits<float>::denorm_min() * e;
  for (size_t e = 0; e < 32; ++e) x[256 + e] = 0.25f;
  x[256 + 9] = -8.0f;

  QuantizedActivations reference;
  Quantize(ScalarDotKernels(), x, 1, cols, reference);
  EXPECT_EQ(reference.d(0)[1], 0.0f);
  EXPECT_EQ(reference.sum(0)[1], 0);
  EXPECT_TRUE(std::isnan(reference.d(0)[4]));
  EXPECT_TRUE(std::isnan(reference.d(0)[5]));
  EXPECT_TRUE(std::isnan(reference.d(0)[6]));
  EXPECT_EQ(reference.qs(0)[256 + 9], -127);
  // The scale is stored in binary16, as in ggml's block_q8_0.
  EXPECT_EQ(reference.d(0)[8], format::HalfToFloat(format::FloatToHalf(8.0f / 127.0f)));
  for (DotIsa isa : SimdIsas()) {
    QuantizedActivations a;
    Quantize(*DotKernelsFor(isa), x, 1, cols, a);
    EXPECT_EQ(std::memcmp(a.qs(0), reference.qs(0), cols), 0) << DotIsaName(isa);
    for (size_t b = 0; b < cols / 32; ++b) {
      EXPECT_EQ(std::bit_cast<uint32_t>(a.d(0)[b]) == std::bit_cast<uint32_t>(reference.d(0)[b]) ||
                    (std::isnan(a.d(0)[b]) && std::isnan(reference.d(0)[b])),
                true)
          << DotIsaName(isa) << " block " << b;
      EXPECT_EQ(a.sum(0)[b], reference.sum(0)[b]) << DotIsaName(isa) << " block " << b;
      EXPECT_TRUE(SameBits(&a.negds(0)[b], &reference.negds(0)[b], 1) ||
                  (std::isnan(a.negds(0)[b]) && std::isnan(reference.negds(0)[b])))
          << DotIsaName(isa) << " block " << b;
    }
  }
}

// Super-block (q8_K) activations: ggml's quantize_row_q8_K rules, and the
// same bytes, scales and sums at every ISA.
TEST(IntegerKernels, SuperBlockQuantizerFollowsQ8_KAtEveryIsa) {
  std::mt19937_64 rng(16);
  const size_t cols = 256 * 7;
  std::vector<float> x = RandomInputs(cols, rng);
  // Super-block 0: random. 1: zeros. 2: -5 first, then +5: m = -5, so
  // iscale = 127 / 5 > 0 and d = 5 / 127. 3: a NaN. 4: -inf. 5: subnormals
  // only (iscale overflows: stored as zeros). 6: +3 at element 200 is the
  // maximum, and ties (x * iscale = k + 0.5) round to even.
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);
  x[512 + 10] = -5.0f;
  x[512 + 11] = 5.0f;
  x[768 + 100] = std::numeric_limits<float>::quiet_NaN();
  x[1024 + 255] = -std::numeric_limits<float>::infinity();
  for (size_t e = 0; e < 256; ++e) x[1280 + e] = std::numeric_limits<float>::denorm_min() * e;
  for (size_t e = 0; e < 256; ++e) x[1536 + e] = -3.0f / 127.0f * (static_cast<float>(e % 8) + 0.5f);
  x[1536 + 200] = 3.0f;

  QuantizedActivations reference;
  reference.Resize(1, cols);
  ScalarDotKernels().quantize_k(x.data(), reference, 0);
  const QuantizedActivations& r = reference;
  EXPECT_EQ(r.d(0)[8], 0.0f);
  const float iscale_2 = -127.0f / -5.0f;
  EXPECT_EQ(r.d(0)[16], 1.0f / iscale_2);
  EXPECT_GT(r.d(0)[16], 0.0f);
  EXPECT_EQ(r.qs(0)[512 + 10], -127);
  EXPECT_EQ(r.qs(0)[512 + 11], 127);
  EXPECT_TRUE(std::isnan(r.d(0)[24]));
  EXPECT_TRUE(std::isnan(r.negds(0)[31]));
  EXPECT_TRUE(std::isnan(r.d(0)[32]));
  EXPECT_EQ(r.d(0)[40], 0.0f);
  EXPECT_EQ(r.qs(0)[1536 + 200], -127);  // m = +3: iscale < 0
  EXPECT_LT(r.d(0)[48], 0.0f);
  for (size_t b = 0; b < cols / 32; ++b) {
    // Every 32-block of a super-block carries its d; sums are the quants'.
    EXPECT_TRUE(SameBits(&r.d(0)[b], &r.d(0)[b / 8 * 8], 1) || std::isnan(r.d(0)[b])) << b;
    int32_t sum = 0;
    for (size_t e = 0; e < 32; ++e) sum += r.qs(0)[32 * b + e];
    EXPECT_EQ(r.sum(0)[b], sum) << b;
    int32_t first16 = 0;
    for (size_t e = 0; e < 16; ++e) first16 += r.qs(0)[32 * b + e];
    EXPECT_EQ(r.sum16(0)[2 * b], first16) << b;
    EXPECT_EQ(r.sum16(0)[2 * b] + r.sum16(0)[2 * b + 1], sum) << b;
  }
  // Super-block 6: each quant is nearbyint(x * iscale), capped at 127.
  const float iscale = -127.0f / 3.0f;
  for (size_t e = 0; e < 256; ++e) {
    const int want = std::min(127, static_cast<int>(std::nearbyint(x[1536 + e] * iscale)));
    EXPECT_EQ(r.qs(0)[1536 + e], want) << e;
  }
  for (DotIsa isa : SimdIsas()) {
    QuantizedActivations a;
    a.Resize(1, cols);
    DotKernelsFor(isa)->quantize_k(x.data(), a, 0);
    EXPECT_EQ(std::memcmp(a.qs(0), r.qs(0), cols), 0) << DotIsaName(isa);
    EXPECT_EQ(std::memcmp(a.sum16(0), r.sum16(0), cols / 16 * sizeof(int32_t)), 0)
        << DotIsaName(isa);
    for (size_t b = 0; b < cols / 32; ++b) {
      const bool nan = std::isnan(r.d(0)[b]);
      EXPECT_TRUE(SameBits(&a.d(0)[b], &r.d(0)[b], 1) || (nan && std::isnan(a.d(0)[b])))
          << DotIsaName(isa) << " block " << b;
      EXPECT_EQ(a.sum(0)[b], r.sum(0)[b]) << DotIsaName(isa) << " block " << b;
      EXPECT_TRUE(SameBits(&a.negds(0)[b], &r.negds(0)[b], 1) ||
                  (nan && std::isnan(a.negds(0)[b])))
          << DotIsaName(isa) << " block " << b;
    }
  }
}

// q6_k's signed sub-block scales and its -32 offset, by hand: every 6-bit
// value is 33 (weight d * scale_t), scale_t = t - 8, d = 0.25; integer inputs
// with max |x| = 127 quantize exactly (iscale = -1, q = -x, d_x = -1).
TEST(IntegerKernels, Q6_KArithmeticByHand) {
  std::vector<uint8_t> block(210, 0);
  for (int i = 0; i < 128; ++i) block[i] = 0x11;        // low nibbles 1
  for (int i = 128; i < 192; ++i) block[i] = 0xAA;      // high pairs 2: u = 33
  for (int t = 0; t < 16; ++t) block[192 + t] = static_cast<uint8_t>(static_cast<int8_t>(t - 8));
  format::EncodeFixed16(block.data() + 208, format::FloatToHalf(0.25f));
  absl::StatusOr<WeightView> w = WeightView::FromBytes(format::DTYPE_Q6_K, 1, 256, block);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<float> x(256);
  for (int e = 0; e < 256; ++e) x[e] = static_cast<float>(e % 7 - 3);
  x[77] = 127.0f;
  double expected = 0;
  for (int e = 0; e < 256; ++e) expected += 0.25 * (e / 16 - 8) * x[e];
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  for (DotIsa isa : isas) {
    const DotKernels& k = *DotKernelsFor(isa);
    QuantizedActivations a;
    Quantize(k, format::DTYPE_Q6_K, x, 1, 256, a);
    float y = 0;
    k.q6_k(*w, a, &y, 1, 0, 1);
    EXPECT_EQ(y, static_cast<float>(expected)) << DotIsaName(isa);
  }
}

// The arithmetic of kernels_int.h on numbers small enough to follow by hand.
TEST(IntegerKernels, Q4_0BlockArithmeticByHand) {
  // One q4_0 block, d = 0.5; nibble u_e = e % 16 for the low half, 15 - e % 16
  // for the high half: weights (u - 8) * 0.5.
  std::vector<uint8_t> block(18);
  format::EncodeFixed16(block.data(), format::FloatToHalf(0.5f));
  for (int e = 0; e < 16; ++e) block[2 + e] = static_cast<uint8_t>(e | ((15 - e) << 4));
  absl::StatusOr<WeightView> w = WeightView::FromBytes(format::DTYPE_Q4_0, 1, 32, block);
  ASSERT_TRUE(w.ok());
  // x = 127 at element 0, 1 elsewhere: d_x = 1, q = x exactly.
  std::vector<float> x(32, 1.0f);
  x[0] = 127.0f;
  // Integer sum: element 0 gives 127 * (0 - 8); the other 31 give their weight.
  int isum = 127 * (0 - 8);
  for (int e = 1; e < 16; ++e) isum += e - 8;
  for (int e = 0; e < 16; ++e) isum += (15 - e) - 8;
  const float expected = static_cast<float>(isum) * 0.5f;
  for (DotIsa isa : SimdIsas()) {
    const DotKernels& k = *DotKernelsFor(isa);
    QuantizedActivations a;
    Quantize(k, x, 1, 32, a);
    float y = 0;
    k.q4_0(*w, a, &y, 1, 0, 1);
    EXPECT_EQ(y, expected) << DotIsaName(isa);
  }
  QuantizedActivations a;
  Quantize(ScalarDotKernels(), x, 1, 32, a);
  float y = 0;
  ScalarDotKernels().q4_0(*w, a, &y, 1, 0, 1);
  EXPECT_EQ(y, expected);
}

// q8_0 keeps eight partial sums, one per 4-byte word, summed at the end in
// llama.cpp's order (kernels_int.h); two blocks whose scales round every
// product, so that one running sum would give other bits.
TEST(IntegerKernels, Q8_0SumsEightWordsInLlamaCppOrder) {
  constexpr int kBlocks = 2;
  std::vector<uint8_t> row(kBlocks * 34);
  const float dw[kBlocks] = {0.1f, 2.9f};  // rounded to binary16 below
  for (int b = 0; b < kBlocks; ++b) {
    format::EncodeFixed16(row.data() + 34 * b, format::FloatToHalf(dw[b]));
    for (int e = 0; e < 32; ++e) {
      row[34 * b + 2 + e] = static_cast<uint8_t>(static_cast<int8_t>((e * 37 + b * 11) % 255 - 127));
    }
  }
  absl::StatusOr<WeightView> w = WeightView::FromBytes(format::DTYPE_Q8_0, 1, 32 * kBlocks, row);
  ASSERT_TRUE(w.ok());
  // x = 127 somewhere in each block, the rest small integers: d_x = 1, q = x.
  std::vector<float> x(32 * kBlocks);
  for (int i = 0; i < 32 * kBlocks; ++i) x[i] = static_cast<float>((i * 29) % 61 - 30);
  x[5] = 127.0f;
  x[32 + 17] = -127.0f;
  float lanes[8] = {};
  float one_sum = 0.0f;
  for (int b = 0; b < kBlocks; ++b) {
    const float scale = format::HalfToFloat(format::FloatToHalf(dw[b]));
    int block_sum = 0;
    for (int g = 0; g < 8; ++g) {
      int word = 0;
      for (int e = 4 * g; e < 4 * g + 4; ++e) {
        word += static_cast<int8_t>(row[34 * b + 2 + e]) * static_cast<int>(x[32 * b + e]);
      }
      lanes[g] = std::fma(static_cast<float>(word), scale, lanes[g]);
      block_sum += word;
    }
    one_sum = std::fma(static_cast<float>(block_sum), scale, one_sum);
  }
  const float expected =
      ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
  ASSERT_NE(expected, one_sum) << "the example must tell the two orders apart";
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  for (DotIsa isa : isas) {
    const DotKernels& k = *DotKernelsFor(isa);
    QuantizedActivations a;
    Quantize(k, x, 1, 32 * kBlocks, a);
    float y = 0;
    k.q8_0(*w, a, &y, 1, 0, 1);
    EXPECT_EQ(y, expected) << DotIsaName(isa);
  }
}

// A k-quant row written from its codes, for the order tests below: the
// integer weights of each super-block (q4_k, q5_k: u in [0, 2^bits), with a
// 6-bit scale and min per 32; q6_k: u in [0, 64), an int8 scale per 16).
struct KQuantRow {
  DType dtype;
  std::vector<int> u;                  // 256 per super-block
  std::vector<int> sc, m;              // 8 per super-block (q6_k: 16 scales, no m)
  std::vector<float> d, dmin;          // per super-block, already binary16 values
  std::vector<uint8_t> bytes;
};

KQuantRow MakeKQuantRow(DType dtype, int super_blocks, std::mt19937_64& rng) {
  KQuantRow row{dtype, {}, {}, {}, {}, {}, {}};
  const int bits = dtype == format::DTYPE_Q4_K ? 4 : dtype == format::DTYPE_Q5_K ? 5 : 6;
  const size_t block_bytes = format::BlockBytes(dtype);
  row.bytes.assign(super_blocks * block_bytes, 0);
  std::uniform_real_distribution<float> unit(0.5f, 1.0f);
  for (int b = 0; b < super_blocks; ++b) {
    uint8_t* block = row.bytes.data() + b * block_bytes;
    const int u0 = static_cast<int>(row.u.size());
    for (int e = 0; e < 256; ++e) row.u.push_back(static_cast<int>(rng() % (1u << bits)));
    // Scales that make the products round differently in each order.
    const uint16_t d = format::FloatToHalf(unit(rng) * 0.0137f);
    const uint16_t dmin = format::FloatToHalf(unit(rng) * 0.0091f);
    row.d.push_back(format::HalfToFloat(d));
    row.dmin.push_back(format::HalfToFloat(dmin));
    if (dtype == format::DTYPE_Q6_K) {
      for (int t = 0; t < 16; ++t) {
        row.sc.push_back(static_cast<int>(rng() % 256) - 128);
        block[192 + t] = static_cast<uint8_t>(static_cast<int8_t>(row.sc.back()));
      }
      format::EncodeFixed16(block + 208, d);
      // 128-element halves h: ql[64h + l] and ql[64h + 32 + l] carry elements
      // l, l + 32 (low nibbles) and l + 64, l + 96 (high); qh[32h + l] their
      // two high bits, two by two.
      for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
          const int* v = &row.u[u0 + 128 * h + l];
          block[64 * h + l] = static_cast<uint8_t>((v[0] & 15) | ((v[64] & 15) << 4));
          block[64 * h + 32 + l] = static_cast<uint8_t>((v[32] & 15) | ((v[96] & 15) << 4));
          block[128 + 32 * h + l] = static_cast<uint8_t>((v[0] >> 4) | ((v[32] >> 4) << 2) |
                                                         ((v[64] >> 4) << 4) | ((v[96] >> 4) << 6));
        }
      }
      continue;
    }
    format::EncodeFixed16(block, d);
    format::EncodeFixed16(block + 2, dmin);
    int sc[8], m[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = static_cast<int>(rng() % 64);
      m[s] = static_cast<int>(rng() % 64);
      row.sc.push_back(sc[s]);
      row.m.push_back(m[s]);
    }
    uint8_t* scales = block + 4;
    for (int s = 0; s < 4; ++s) {
      scales[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
      scales[s + 4] = static_cast<uint8_t>(m[s] | ((m[s + 4] >> 4) << 6));
      scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | ((m[s + 4] & 15) << 4));
    }
    // Sub-blocks 2c and 2c + 1 share bytes [32c, 32c + 32) of the nibbles
    // (low, high); q5_k's fifth bit of element e of sub-block s is bit s of
    // qh[e].
    uint8_t* qs = block + (dtype == format::DTYPE_Q5_K ? 48 : 16);
    for (int c = 0; c < 4; ++c) {
      for (int e = 0; e < 32; ++e) {
        const int lo = row.u[u0 + 64 * c + e], hi = row.u[u0 + 64 * c + 32 + e];
        qs[32 * c + e] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
        if (dtype == format::DTYPE_Q5_K) {
          block[16 + e] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        }
      }
    }
  }
  return row;
}

// llama.cpp's x86 sums for one input of q8_K activations `a` (vector j),
// written out from the codes: q4_K's repacked gemv (fold every super-block)
// or gemm (fold every 64 weights), q5_K's and q6_K's vec_dot (eight word
// sums, one fold per super-block; with one_lane, all words in one sum
// instead, to show that the order matters).
float LlamaCppKQuantSum(const KQuantRow& row, const QuantizedActivations& a, size_t j,
                        int fold_steps, bool one_lane = false) {
  const int8_t* q = a.qs(j);
  const size_t super_blocks = row.d.size();
  if (row.dtype == format::DTYPE_Q4_K) {
    float acc = 0.0f, acc_mins = 0.0f;
    for (size_t b = 0; b < super_blocks; ++b) {
      const float da = a.d(j)[8 * b];
      int products = 0, mins = 0;
      for (int s = 0; s < 8; ++s) {
        int dot = 0, sum = 0;
        for (int e = 32 * s; e < 32 * s + 32; ++e) {
          dot += row.u[256 * b + e] * q[256 * b + e];
          sum += q[256 * b + e];
        }
        products += row.sc[8 * b + s] * dot;
        mins += row.m[8 * b + s] * sum;
        if ((s + 1) % fold_steps == 0) {
          acc = std::fma(static_cast<float>(products), row.d[b] * da, acc);
          acc_mins = std::fma(static_cast<float>(mins), row.dmin[b] * da, acc_mins);
          products = mins = 0;
        }
      }
    }
    return acc - acc_mins;
  }
  float lanes[8] = {};
  float summs = 0.0f;
  for (size_t b = 0; b < super_blocks; ++b) {
    const float da = a.d(j)[8 * b];
    int words[8] = {};
    int mins = 0;
    for (int e = 0; e < 256; ++e) {
      const int u = row.u[256 * b + e], x = q[256 * b + e];
      const int word = one_lane ? 0 : (e % 32) / 4;
      if (row.dtype == format::DTYPE_Q5_K) {
        words[word] += row.sc[8 * b + e / 32] * u * x;
        mins += row.m[8 * b + e / 32] * x;
      } else {
        // q6_K: the offset of 32 of 32-block L goes to word L.
        words[word] += row.sc[16 * b + e / 16] * u * x;
        words[one_lane ? 0 : e / 32] -= 32 * row.sc[16 * b + e / 16] * x;
      }
    }
    for (int k = 0; k < 8; ++k) lanes[k] = std::fma(da * row.d[b], static_cast<float>(words[k]), lanes[k]);
    if (row.dtype == format::DTYPE_Q5_K) {
      summs = std::fma(-da * row.dmin[b], static_cast<float>(mins), summs);
    }
  }
  return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7])) +
         summs;
}

// The k-quants follow llama.cpp's x86 summation order (kernels_int.h) at
// every ISA, checked against a reference written from the codes: q4_k folds
// every 64 weights for inputs in whole groups of four and every super-block
// for the rest; q5_k and q6_k keep eight word sums.
TEST(IntegerKernels, KQuantsSumInLlamaCppOrder) {
  std::mt19937_64 rng(29);
  constexpr int kSuperBlocks = 3;
  constexpr size_t kCols = 256 * kSuperBlocks;
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  for (DType dtype : {format::DTYPE_Q4_K, format::DTYPE_Q5_K, format::DTYPE_Q6_K}) {
    const KQuantRow row = MakeKQuantRow(dtype, kSuperBlocks, rng);
    int told_apart = 0;  // inputs on which another order gives other bits
    absl::StatusOr<WeightView> w = WeightView::FromBytes(dtype, 1, kCols, row.bytes);
    ASSERT_TRUE(w.ok()) << w.status();
    for (size_t n : {1, 4, 5}) {
      const std::vector<float> x = RandomInputs(n * kCols, rng);
      for (DotIsa isa : isas) {
        const DotKernels& k = *DotKernelsFor(isa);
        QuantizedActivations a;
        Quantize(k, dtype, x, n, kCols, a);
        std::vector<float> y(n);
        IntKernel(k, dtype)(*w, a, y.data(), 1, 0, 1);
        for (size_t j = 0; j < n; ++j) {
          const bool in_quad = j < n - n % 4;
          const float expected = LlamaCppKQuantSum(row, a, j, in_quad ? 2 : 8);
          EXPECT_EQ(y[j], expected) << DotIsaName(isa) << " " << format::DTypeName(dtype)
                                    << " n=" << n << " input " << j;
          if (isa == DotIsa::kScalar) {
            const float other = dtype == format::DTYPE_Q4_K
                                    ? LlamaCppKQuantSum(row, a, j, in_quad ? 8 : 2)
                                    : LlamaCppKQuantSum(row, a, j, 8, /*one_lane=*/true);
            told_apart += other != expected ? 1 : 0;
          }
        }
      }
    }
    EXPECT_GT(told_apart, 0) << format::DTypeName(dtype) << ": the example must tell the orders apart";
  }
}

// q5_1: five-bit codes from qh and the min, on numbers followed by hand.
// Also q5_0 and q4_1 on the same codes.
TEST(IntegerKernels, Q5AndQ4_1BlockArithmeticByHand) {
  // Codes u_e = e (0..31): low nibble e % 16, fifth bit set for e >= 16.
  std::vector<uint8_t> q5_1(24), q5_0(22), q4_1(20);
  format::EncodeFixed16(q5_1.data(), format::FloatToHalf(0.5f));
  format::EncodeFixed16(q5_1.data() + 2, format::FloatToHalf(-2.0f));
  format::EncodeFixed32(q5_1.data() + 4, 0xffff0000u);
  format::EncodeFixed16(q5_0.data(), format::FloatToHalf(0.5f));
  format::EncodeFixed32(q5_0.data() + 2, 0xffff0000u);
  format::EncodeFixed16(q4_1.data(), format::FloatToHalf(0.5f));
  format::EncodeFixed16(q4_1.data() + 2, format::FloatToHalf(-2.0f));
  for (int e = 0; e < 16; ++e) {
    const uint8_t byte = static_cast<uint8_t>(e | (e << 4));
    q5_1[8 + e] = byte;
    q5_0[6 + e] = byte;
    q4_1[4 + e] = byte;
  }
  // x = 127 at element 3, 1 elsewhere: d_x = 1, q = x, sum = 127 + 31.
  std::vector<float> x(32, 1.0f);
  x[3] = 127.0f;
  auto dot = [&](auto code) {
    int isum = 0;
    for (int e = 0; e < 32; ++e) isum += code(e) * (e == 3 ? 127 : 1);
    return isum;
  };
  const int sum_x = 127 + 31;
  // q5_1: 0.5 * isum + (-2) * sum_x; q5_0: 0.5 * sum (u - 16) q;
  // q4_1: codes e % 16.
  const float want_q5_1 = 0.5f * static_cast<float>(dot([](int e) { return e; })) - 2.0f * sum_x;
  const float want_q5_0 = 0.5f * static_cast<float>(dot([](int e) { return e - 16; }));
  const float want_q4_1 =
      0.5f * static_cast<float>(dot([](int e) { return e % 16; })) - 2.0f * sum_x;
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  for (DotIsa isa : isas) {
    const DotKernels& k = *DotKernelsFor(isa);
    QuantizedActivations a;
    Quantize(k, x, 1, 32, a);
    for (auto [dtype, bytes, want] : {std::tuple{format::DTYPE_Q5_1, &q5_1, want_q5_1},
                                      std::tuple{format::DTYPE_Q5_0, &q5_0, want_q5_0},
                                      std::tuple{format::DTYPE_Q4_1, &q4_1, want_q4_1}}) {
      absl::StatusOr<WeightView> w = WeightView::FromBytes(dtype, 1, 32, *bytes);
      ASSERT_TRUE(w.ok()) << w.status();
      float y = 0;
      IntKernel(k, dtype)(*w, a, &y, 1, 0, 1);
      EXPECT_EQ(y, want) << DotIsaName(isa) << " " << format::DTypeName(dtype);
    }
  }
}

struct Shape {
  DType dtype;
  uint64_t cols;
};

class IntegerKernelsTest : public ::testing::TestWithParam<Shape> {};

// Every ISA equals the scalar reference bit for bit: row counts around the
// 8- and 16-row groups, row ranges that start inside a group, 1 to 9 inputs.
TEST_P(IntegerKernelsTest, EveryIsaEqualsScalarBitForBit) {
  const Shape shape = GetParam();
  std::mt19937_64 rng(12 + shape.cols);
  for (uint64_t rows : {1, 3, 8, 9, 15, 16, 17, 40}) {
    const std::vector<uint8_t> bytes = RandomWeights(shape.dtype, rows, shape.cols, rng);
    absl::StatusOr<WeightView> w = WeightView::FromBytes(shape.dtype, rows, shape.cols, bytes);
    ASSERT_TRUE(w.ok()) << w.status();
    for (size_t n : {1, 2, 3, 4, 5, 9}) {
      const std::vector<float> x = RandomInputs(n * shape.cols, rng);
      QuantizedActivations reference_a;
      Quantize(ScalarDotKernels(), shape.dtype, x, n, shape.cols, reference_a);
      std::vector<float> expected(n * rows, -1.0f);
      IntKernel(ScalarDotKernels(), shape.dtype)(*w, reference_a, expected.data(), rows, 0, rows);
      for (DotIsa isa : SimdIsas()) {
        const DotKernels& k = *DotKernelsFor(isa);
        QuantizedActivations a;
        Quantize(k, shape.dtype, x, n, shape.cols, a);
        const std::string where = absl::StrCat(DotIsaName(isa), " ", format::DTypeName(shape.dtype),
                                               " [", rows, ", ", shape.cols, "] n=", n);
        std::vector<float> y(n * rows, -1.0f);
        IntKernel(k, shape.dtype)(*w, a, y.data(), rows, 0, rows);
        EXPECT_TRUE(SameBits(y.data(), expected.data(), y.size())) << where;
        // Rows [first, rows) only: the rest of y is untouched.
        const uint64_t first = rows / 3;
        std::vector<float> part(n * rows, -7.0f);
        IntKernel(k, shape.dtype)(*w, a, part.data(), rows, first, rows);
        for (size_t j = 0; j < n; ++j) {
          for (uint64_t r = 0; r < rows; ++r) {
            const float want = r < first ? -7.0f : expected[j * rows + r];
            EXPECT_TRUE(SameBits(&part[j * rows + r], &want, 1)) << where << " row " << r;
          }
        }
      }
    }
  }
}

// The same weights stored in LAYOUT_ROW_GROUPS_16 give the same bits as
// row-major, through every ISA's grouped kernels (whole groups) and through
// MatMul() at every level and thread count (which sends the row-major tail to
// the row-major kernels).
TEST_P(IntegerKernelsTest, RowGroupsEqualRowMajorBitForBit) {
  const Shape shape = GetParam();
  if (!format::SupportsRowGroups(shape.dtype)) {
    // Row-major only: the grouped layout is refused, and no ISA has (or
    // needs) a grouped kernel.
    std::vector<uint8_t> bytes(16 * shape.cols / 32 * format::BlockBytes(shape.dtype));
    EXPECT_EQ(WeightView::FromBytes(shape.dtype, 16, shape.cols, bytes,
                                    format::LAYOUT_ROW_GROUPS_16)
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(GroupedKernel(ScalarDotKernels(), shape.dtype), nullptr);
    return;
  }
  std::mt19937_64 rng(15 + shape.cols);
  if (!format::SupportsRowGroups(shape.dtype)) {
    // These types are row-major only: a grouped view is refused.
    const std::vector<uint8_t> bytes = RandomWeights(shape.dtype, 16, shape.cols, rng);
    EXPECT_EQ(WeightView::FromBytes(shape.dtype, 16, shape.cols, bytes,
                                    format::LAYOUT_ROW_GROUPS_16)
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument);
    return;
  }
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  ThreadPool pool(3);
  for (uint64_t rows : {16, 17, 32, 40, 64}) {
    const std::vector<uint8_t> bytes = RandomWeights(shape.dtype, rows, shape.cols, rng);
    std::vector<uint8_t> grouped(bytes.size());
    const uint64_t row_bytes = bytes.size() / rows;
    format::ToRowGroups(shape.dtype, rows, row_bytes, bytes.data(), grouped.data());
    const WeightView row_major = *WeightView::FromBytes(shape.dtype, rows, shape.cols, bytes);
    absl::StatusOr<WeightView> view = WeightView::FromBytes(shape.dtype, rows, shape.cols, grouped,
                                                            format::LAYOUT_ROW_GROUPS_16);
    ASSERT_TRUE(view.ok()) << view.status();
    const uint64_t whole = rows / 16 * 16;
    for (size_t n : {1, 2, 5}) {
      const std::vector<float> x = RandomInputs(n * shape.cols, rng);
      for (DotIsa isa : isas) {
        const DotKernels& k = *DotKernelsFor(isa);
        const std::string where = absl::StrCat(DotIsaName(isa), " ", format::DTypeName(shape.dtype),
                                               " [", rows, ", ", shape.cols, "] n=", n);
        QuantizedActivations a;
        Quantize(k, shape.dtype, x, n, shape.cols, a);
        std::vector<float> expected(n * rows, -1.0f), got(n * rows, -2.0f);
        IntKernel(k, shape.dtype)(row_major, a, expected.data(), rows, 0, rows);
        GroupedKernel(k, shape.dtype)(*view, a, got.data(), rows, 0, whole);
        IntKernel(k, shape.dtype)(*view, a, got.data(), rows, whole, rows);
        EXPECT_TRUE(SameBits(got.data(), expected.data(), got.size())) << where;
        // One group in the middle only.
        if (whole >= 32) {
          std::vector<float> part(n * rows, -7.0f);
          GroupedKernel(k, shape.dtype)(*view, a, part.data(), rows, 16, 32);
          for (size_t j = 0; j < n; ++j) {
            EXPECT_TRUE(SameBits(&part[j * rows + 16], &expected[j * rows + 16], 16)) << where;
            EXPECT_EQ(part[j * rows + 15], -7.0f) << where;
          }
        }
      }
      for (format::SimdLevel level : {format::SimdLevel::kScalar, format::SimdLevel::kAvx2,
                                      format::SimdLevel::kAvx512}) {
        std::vector<float> expected(n * rows), got(n * rows);
        MatMul(row_major, x.data(), n, expected.data(), nullptr, level);
        MatMul(*view, x.data(), n, got.data(), &pool, level);
        EXPECT_TRUE(SameBits(got.data(), expected.data(), got.size()))
            << format::SimdLevelName(level) << " rows " << rows << " n " << n;
      }
      // Rows read back for lookups are ggml's rows.
      std::vector<float> a_row(shape.cols), b_row(shape.cols);
      for (uint64_t r = 0; r < rows; r += 7) {
        DequantizeRow(row_major, r, a_row.data());
        DequantizeRow(*view, r, b_row.data());
        EXPECT_TRUE(SameBits(a_row.data(), b_row.data(), shape.cols)) << "row " << r;
      }
    }
  }
}

TEST(IntegerKernels, RowGroupsOnlyForTypesThatHaveThem) {
  std::vector<uint8_t> bytes(16 * 32 * 2);
  EXPECT_EQ(WeightView::FromBytes(format::DTYPE_F16, 16, 32, bytes, format::LAYOUT_ROW_GROUPS_16)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// A NaN scale or a NaN input makes the products that read it NaN at every ISA.
TEST_P(IntegerKernelsTest, NonFiniteInputsGiveNonFiniteOutputs) {
  const Shape shape = GetParam();
  std::mt19937_64 rng(13);
  const uint64_t rows = 17;
  std::vector<uint8_t> bytes = RandomWeights(shape.dtype, rows, shape.cols, rng);
  format::EncodeFixed16(bytes.data() + 5 * (bytes.size() / rows) + ScaleOffset(shape.dtype),
                        0x7e00);  // row 5: NaN d
  absl::StatusOr<WeightView> w = WeightView::FromBytes(shape.dtype, rows, shape.cols, bytes);
  ASSERT_TRUE(w.ok());
  std::vector<float> x = RandomInputs(2 * shape.cols, rng);
  x[shape.cols + 3] = std::numeric_limits<float>::infinity();  // input 1
  std::vector<DotIsa> isas = SimdIsas();
  isas.push_back(DotIsa::kScalar);
  for (DotIsa isa : isas) {
    const DotKernels& k = *DotKernelsFor(isa);
    QuantizedActivations a;
    Quantize(k, shape.dtype, x, 2, shape.cols, a);
    std::vector<float> y(2 * rows);
    IntKernel(k, shape.dtype)(*w, a, y.data(), rows, 0, rows);
    for (uint64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(std::isfinite(y[r]), r != 5) << DotIsaName(isa) << " input 0 row " << r;
      EXPECT_FALSE(std::isfinite(y[rows + r])) << DotIsaName(isa) << " input 1 row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, IntegerKernelsTest,
                         ::testing::Values(Shape{format::DTYPE_Q4_0, 32}, Shape{format::DTYPE_Q4_0, 96},
                                           Shape{format::DTYPE_Q4_0, 768},
                                           Shape{format::DTYPE_Q8_0, 32}, Shape{format::DTYPE_Q8_0, 320},
                                           Shape{format::DTYPE_Q4_K, 256},
                                           Shape{format::DTYPE_Q4_K, 768},
                                           Shape{format::DTYPE_Q4_1, 32}, Shape{format::DTYPE_Q4_1, 768},
                                           Shape{format::DTYPE_Q5_0, 32}, Shape{format::DTYPE_Q5_0, 320},
                                           Shape{format::DTYPE_Q5_1, 32}, Shape{format::DTYPE_Q5_1, 768},
                                           Shape{format::DTYPE_Q5_K, 256},
                                           Shape{format::DTYPE_Q5_K, 768},
                                           Shape{format::DTYPE_Q6_K, 256},
                                           Shape{format::DTYPE_Q6_K, 768}),
                         [](const ::testing::TestParamInfo<Shape>& param_info) {
                           return absl::StrCat(format::DTypeName(param_info.param.dtype), "_",
                                               param_info.param.cols);
                         });

// MatMulMany() equals separate MatMul() calls, bit for bit, with a float
// weight among the quantized ones and any thread count.
TEST(MatMulMany, EqualsSeparateProducts) {
  std::mt19937_64 rng(14);
  const uint64_t cols = 256;
  struct Owned {
    std::vector<uint8_t> bytes;
    WeightView view;
  };
  std::vector<Owned> weights;
  for (auto [dtype, rows] : std::vector<std::pair<DType, uint64_t>>{
           {format::DTYPE_Q4_0, 40}, {format::DTYPE_Q4_K, 24}, {format::DTYPE_Q8_0, 9},
           {format::DTYPE_Q4_1, 17}, {format::DTYPE_Q5_0, 8}, {format::DTYPE_Q5_1, 33},
           {format::DTYPE_F32, 5}, {format::DTYPE_Q6_K, 17}, {format::DTYPE_Q5_K, 33}}) {
    Owned o;
    if (dtype == format::DTYPE_F32) {
      const std::vector<float> f = RandomInputs(rows * cols, rng);
      o.bytes.resize(f.size() * 4);
      std::memcpy(o.bytes.data(), f.data(), o.bytes.size());
    } else {
      o.bytes = RandomWeights(dtype, rows, cols, rng);
    }
    o.view = *WeightView::FromBytes(dtype, rows, cols, o.bytes);
    weights.push_back(std::move(o));
  }
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (size_t n : {1, 6, 9}) {
      const std::vector<float> x = RandomInputs(n * cols, rng);
      std::vector<std::vector<float>> fused(weights.size()), separate(weights.size());
      std::vector<Projection> projections;
      for (size_t i = 0; i < weights.size(); ++i) {
        fused[i].assign(n * weights[i].view.rows, -1.0f);
        separate[i].assign(n * weights[i].view.rows, -2.0f);
        projections.push_back({&weights[i].view, fused[i].data()});
        MatMul(weights[i].view, x.data(), n, separate[i].data(), nullptr);
      }
      MatMulMany(projections, x.data(), n, &pool);
      for (size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(SameBits(fused[i].data(), separate[i].data(), fused[i].size()))
            << format::DTypeName(weights[i].view.dtype) << " threads " << threads << " n " << n;
      }
    }
  }
}

// A Q4_K_M-like layer mixes q4_k with q6_k (and a Q4_0 model has a q6_k
// head): one MatMulMany() over every quantized type, at each level, gives the
// scalar level's bits, and so does MatVec() of each input.
TEST(MatMulMany, MixedDTypesAtEveryLevelEqualScalar) {
  std::mt19937_64 rng(17);
  const uint64_t cols = 512;
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<WeightView> views;
  for (auto [dtype, rows] : std::vector<std::pair<DType, uint64_t>>{
           {format::DTYPE_Q4_K, 19}, {format::DTYPE_Q6_K, 21}, {format::DTYPE_Q4_0, 8},
           {format::DTYPE_Q5_K, 16}, {format::DTYPE_Q8_0, 3}}) {
    bytes.push_back(RandomWeights(dtype, rows, cols, rng));
    views.push_back(*WeightView::FromBytes(dtype, rows, cols, bytes.back()));
  }
  ThreadPool pool(3);
  for (size_t n : {1, 3, 8}) {
    const std::vector<float> x = RandomInputs(n * cols, rng);
    std::vector<std::vector<float>> expected(views.size());
    std::vector<Projection> reference;
    for (size_t i = 0; i < views.size(); ++i) {
      expected[i].assign(n * views[i].rows, -1.0f);
      reference.push_back({&views[i], expected[i].data()});
    }
    MatMulMany(reference, x.data(), n, nullptr, format::SimdLevel::kScalar);
    for (format::SimdLevel level : {format::SimdLevel::kScalar, format::SimdLevel::kAvx2,
                                    format::SimdLevel::kAvx512}) {
      std::vector<std::vector<float>> got(views.size());
      std::vector<Projection> projections;
      for (size_t i = 0; i < views.size(); ++i) {
        got[i].assign(n * views[i].rows, -2.0f);
        projections.push_back({&views[i], got[i].data()});
      }
      MatMulMany(projections, x.data(), n, &pool, level);
      for (size_t i = 0; i < views.size(); ++i) {
        const std::string where = absl::StrCat(format::SimdLevelName(level), " ",
                                               format::DTypeName(views[i].dtype), " n=", n);
        EXPECT_TRUE(SameBits(got[i].data(), expected[i].data(), got[i].size())) << where;
        for (size_t j = 0; j < n; ++j) {
          // q4_k inputs in whole groups of four fold more often than one
          // input alone does (Q4_KFoldSteps()).
          if (views[i].dtype == format::DTYPE_Q4_K && j < n - n % 4) continue;
          std::vector<float> y(views[i].rows);
          MatVec(views[i], x.data() + j * cols, y.data(), &pool, level);
          EXPECT_TRUE(SameBits(y.data(), expected[i].data() + j * views[i].rows, y.size()))
              << where << " MatVec of input " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace zcpack::runtime::kernels_internal
