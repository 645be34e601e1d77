// Tests of the block decoders (format/q4_blocks.h) and the quantizers and
// error statistics (converter/quantize.h).
//
// The ggml facts are re-implemented here independently of the library: the
// reference q4_0 and q8_0 quantizers (the arithmetic of quantize_row_q4_0_ref
// and quantize_row_q8_0_ref) and decoders for every block layout, with
// binary16 rounding done by the compiler's _Float16 rather than by
// zcpack/format/half.h.
#include "zcpack/converter/quantize.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/expect_floats.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack::converter {
namespace {

using format::SimdLevel;

// ------------------------------------------------------ in-test reference ---

uint16_t RefFloatToHalf(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }
float RefHalfToFloat(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }
uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// The scale step that ggml's q4_0 and q8_0 reference quantizers share: d is
// stored as binary16 (little-endian) at out[0, 2), and the codes are computed
// with the inverse of the unrounded d, or 0 when d is 0 (returned).
float RefStoreScale(float d, uint8_t* out) {
  const uint16_t dh = RefFloatToHalf(d);
  out[0] = static_cast<uint8_t>(dh);
  out[1] = static_cast<uint8_t>(dh >> 8);
  return d != 0.0f ? 1.0f / d : 0.0f;
}

// ggml's quantize_row_q4_0_ref arithmetic, for one block.
void RefQuantizeQ4_0Block(const float* x, uint8_t* out) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float id = RefStoreScale(max / -8, out);
  for (int j = 0; j < 16; ++j) {
    const float x0 = x[j] * id;
    const float x1 = x[j + 16] * id;
    const int q0 = std::min(15, static_cast<int>(x0 + 8.5f));
    const int q1 = std::min(15, static_cast<int>(x1 + 8.5f));
    out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void RefDecodeQ4_0Block(const uint8_t* block, float* y) {
  const float d = RefHalfToFloat(Le16(block));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((block[2 + j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((block[2 + j] >> 4) - 8) * d;
  }
}

// dequantize_row_q4_1, q5_0 and q5_1 of ggml for one block, written from
// ggml-common.h's struct layouts: the fifth bit of element j (j < 16) is bit
// j of the little-endian qh, that of element j + 16 is bit j + 16.
void RefDecodeQ4_1Block(const uint8_t* block, float* y) {
  const float d = RefHalfToFloat(Le16(block));
  const float m = RefHalfToFloat(Le16(block + 2));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(block[4 + j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(block[4 + j] >> 4) * d + m;
  }
}

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

void RefDecodeQ5Block(const uint8_t* block, bool with_min, float* y) {
  const float d = RefHalfToFloat(Le16(block));
  const float m = with_min ? RefHalfToFloat(Le16(block + 2)) : 0.0f;
  const uint8_t* qh_bytes = block + (with_min ? 4 : 2);
  const uint8_t* qs = qh_bytes + 4;
  const uint32_t qh = Le32(qh_bytes);
  for (int j = 0; j < 16; ++j) {
    const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    const int x0 = (qs[j] & 0x0F) | xh0;
    const int x1 = (qs[j] >> 4) | xh1;
    if (with_min) {
      y[j] = static_cast<float>(x0) * d + m;
      y[j + 16] = static_cast<float>(x1) * d + m;
    } else {
      y[j] = static_cast<float>(x0 - 16) * d;
      y[j + 16] = static_cast<float>(x1 - 16) * d;
    }
  }
}

void RefDecodeQ5_0Block(const uint8_t* block, float* y) { RefDecodeQ5Block(block, false, y); }
void RefDecodeQ5_1Block(const uint8_t* block, float* y) { RefDecodeQ5Block(block, true, y); }

// ggml's quantize_row_q8_0_ref arithmetic, for one block: amax = max |x|,
// d = amax / 127, id = 1 / d (0 when d is 0), code = roundf(x * id). ggml
// leaves the conversion of a non-finite x * id to int8 undefined (only for
// blocks where 1 / d overflows, whose binary16 scale is 0, or non-finite
// inputs); this reference takes zcpack's documented choice there: NaN -> 0,
// otherwise saturate at +-127.
void RefQuantizeQ8_0Block(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float id = RefStoreScale(amax / 127, out);
  for (int j = 0; j < 32; ++j) {
    const float t = x[j] * id;
    const float code = std::isnan(t) ? 0.0f : std::round(std::clamp(t, -127.0f, 127.0f));
    out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(code));
  }
}

void RefDecodeQ8_0Block(const uint8_t* block, float* y) {
  const float d = RefHalfToFloat(Le16(block));
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
}

// ggml's get_scale_min_k4.
void RefScaleMin(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

void RefDecodeQ4_KBlock(const uint8_t* block, float* y) {
  const float d = RefHalfToFloat(Le16(block));
  const float dmin = RefHalfToFloat(Le16(block + 2));
  const uint8_t* scales = block + 4;
  const uint8_t* q = block + 16;
  for (int j = 0; j < 256; j += 64) {
    const int is = j / 32;
    int sc = 0;
    int m = 0;
    RefScaleMin(is, scales, &sc, &m);
    const float d1 = d * sc;
    const float m1 = dmin * m;
    RefScaleMin(is + 1, scales, &sc, &m);
    const float d2 = d * sc;
    const float m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[j + l] = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * (q[l] >> 4) - m2;
    q += 32;
  }
}

// Packs a q4_k super-block the way ggml's quantize_row_q4_K_ref does.
void RefPackQ4_KBlock(uint16_t d, uint16_t dmin, const int sc[8], const int m[8],
                      const int codes[256], uint8_t* out) {
  out[0] = static_cast<uint8_t>(d);
  out[1] = static_cast<uint8_t>(d >> 8);
  out[2] = static_cast<uint8_t>(dmin);
  out[3] = static_cast<uint8_t>(dmin >> 8);
  uint8_t* scales = out + 4;
  std::memset(scales, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(sc[j]);
      scales[j + 4] = static_cast<uint8_t>(m[j]);
    } else {
      scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
  uint8_t* q = out + 16;
  for (int j = 0; j < 256; j += 64) {
    for (int l = 0; l < 32; ++l)
      q[l] = static_cast<uint8_t>(codes[j + l] | (codes[j + l + 32] << 4));
    q += 32;
  }
}

// ggml's reference q4_k quantizer (make_qkx2_quants with nmax 15, rmin -1,
// rdelta 0.1, nstep 20, weights av_x + |x|), for comparing error levels.
int NearestInt(float f) { return static_cast<int>(std::nearbyint(f)); }

float RefQkx2(const float* x, const float* w, float* the_min) {
  float min = x[0];
  float max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < 32; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    *the_min = -min;
    return 0.0f;
  }
  float iscale = 15 / (max - min);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < 32; ++i) {
    const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, 15);
    const float diff = scale * l + min - x[i];
    best += w[i] * diff * diff;
  }
  for (int is = 0; is <= 20; ++is) {
    iscale = (-1.0f + 0.1f * is + 15) / (max - min);
    float sum_l = 0;
    float sum_l2 = 0;
    float sum_xl = 0;
    int laux[32];
    for (int i = 0; i < 32; ++i) {
      const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, 15);
      laux[i] = l;
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < 32; ++i) {
        const float diff = this_scale * laux[i] + this_min - x[i];
        err += w[i] * diff * diff;
      }
      if (err < best) {
        best = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

void RefQuantizeQ4_KBlock(const float* x, uint8_t* out) {
  float scales[8];
  float mins[8];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    float w[32];
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = RefQkx2(x + 32 * j, w, &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  int sc[8];
  int m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = std::min(63, NearestInt(inv_scale * scales[j]));
    m[j] = std::min(63, NearestInt(inv_min * mins[j]));
  }
  const uint16_t dh = RefFloatToHalf(max_scale / 63.f);
  const uint16_t dminh = RefFloatToHalf(max_min / 63.f);
  int codes[256] = {};
  for (int j = 0; j < 8; ++j) {
    const float d = RefHalfToFloat(dh) * sc[j];
    if (d == 0) continue;
    const float dm = RefHalfToFloat(dminh) * m[j];
    for (int ii = 0; ii < 32; ++ii) {
      codes[32 * j + ii] = std::clamp(NearestInt((x[32 * j + ii] + dm) / d), 0, 15);
    }
  }
  RefPackQ4_KBlock(dh, dminh, sc, m, codes, out);
}

// Squared error, in long double so that ties are not invented by rounding.
long double SquaredError(const float* x, const float* y, size_t n) {
  long double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const long double d = static_cast<long double>(x[i]) - static_cast<long double>(y[i]);
    sum += d * d;
  }
  return sum;
}

// ------------------------------------------------------------- test data ---

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> levels = {SimdLevel::kScalar};
  if (format::DetectSimdLevel() != SimdLevel::kScalar) levels.push_back(SimdLevel::kAvx2);
  if (format::DetectSimdLevel() == SimdLevel::kAvx512) levels.push_back(SimdLevel::kAvx512);
  return levels;
}

enum class Dist {
  kNormal,
  kStudentT,
  kLaplace,
  kUniform,
  kOutliers,
  kSparse,
  kTiny,
  kLarge,
  kHalfValued,
  kPositive
};
constexpr Dist kAllDists[] = {Dist::kNormal,     Dist::kStudentT, Dist::kLaplace, Dist::kUniform,
                              Dist::kOutliers,   Dist::kSparse,   Dist::kTiny,    Dist::kLarge,
                              Dist::kHalfValued, Dist::kPositive};

std::vector<float> RandomFloats(Dist dist, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> student(3.0f);
  std::exponential_distribution<float> expo(1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    float x = 0.0f;
    switch (dist) {
      case Dist::kNormal: x = 0.02f * normal(rng); break;
      case Dist::kStudentT: x = 0.01f * student(rng); break;
      case Dist::kLaplace: x = ((rng() & 1) ? 1.0f : -1.0f) * 0.05f * expo(rng); break;
      case Dist::kUniform: x = uniform(rng); break;
      case Dist::kOutliers: x = normal(rng) * ((rng() % 97 == 0) ? 30.0f : 0.1f); break;
      case Dist::kSparse: x = (rng() % 4 == 0) ? normal(rng) : 0.0f; break;
      case Dist::kTiny: x = 1e-6f * normal(rng); break;
      case Dist::kLarge: x = 3000.0f * normal(rng); break;
      case Dist::kHalfValued: x = RefHalfToFloat(RefFloatToHalf(0.05f * normal(rng))); break;
      case Dist::kPositive: x = 0.5f + 0.1f * normal(rng); break;
    }
    v[i] = x;
  }
  return v;
}

// Hand-made q4_0 input blocks that stress the reference's corner cases.
std::vector<std::vector<float>> EdgeBlocks() {
  std::vector<std::vector<float>> blocks;
  blocks.push_back(std::vector<float>(32, 0.0f));   // all zeros
  blocks.push_back(std::vector<float>(32, 0.75f));  // constant
  blocks.push_back(std::vector<float>(32, -3.0f));  // negative constant
  std::vector<float> b(32, 0.01f);
  b[7] = 50.0f;
  blocks.push_back(b);  // single outlier
  b[7] = -50.0f;
  blocks.push_back(b);  // negative outlier
  for (int j = 0; j < 32; ++j) b[j] = -0.1f * static_cast<float>(j);
  blocks.push_back(b);  // ramp, negative max
  for (int j = 0; j < 32; ++j) b[j] = (j % 2 ? 1.0f : -1.0f) * 0.5f;
  blocks.push_back(b);  // +-max ties
  for (int j = 0; j < 32; ++j) b[j] = std::ldexp(static_cast<float>(j + 1), -140);
  blocks.push_back(b);  // float subnormals
  for (int j = 0; j < 32; ++j) b[j] = 1e-7f * static_cast<float>(j - 16);
  blocks.push_back(b);  // binary16-subnormal scale
  for (int j = 0; j < 32; ++j) b[j] = 60000.0f * std::sin(static_cast<float>(j));
  blocks.push_back(b);  // huge values
  for (int j = 0; j < 32; ++j) b[j] = 0.25f * static_cast<float>((j * 7) % 16 - 8);
  blocks.push_back(b);  // exactly on the grid
  return blocks;
}

std::string LevelName(SimdLevel level) { return std::string(format::SimdLevelName(level)); }

// ------------------------------------------------------- float conversion ---

TEST(ConvertToFloatTest, F16MatchesHalfToFloatForEveryValue) {
  std::vector<uint8_t> bytes(2 * 65536 + 6);
  for (uint32_t h = 0; h < 65536 + 3; ++h) {
    bytes[2 * h] = static_cast<uint8_t>(h);
    bytes[2 * h + 1] = static_cast<uint8_t>(h >> 8);
  }
  for (SimdLevel level : SupportedLevels()) {
    std::vector<float> out(65536 + 3);
    ASSERT_TRUE(
        format::ConvertToFloat(format::DTYPE_F16, bytes.data(), out.size(), out.data(), level)
            .ok());
    for (uint32_t h = 0; h < out.size(); ++h) {
      const uint16_t bits = static_cast<uint16_t>(h);
      ASSERT_EQ(std::bit_cast<uint32_t>(out[h]), std::bit_cast<uint32_t>(format::HalfToFloat(bits)))
          << LevelName(level) << " half 0x" << std::hex << bits;
      if (!std::isnan(out[h])) {
        ASSERT_EQ(out[h], RefHalfToFloat(bits));
      }
    }
  }
}

TEST(ConvertToFloatTest, BF16MatchesBFloat16ToFloatForEveryValue) {
  std::vector<uint8_t> bytes(2 * 65536 + 10);
  for (uint32_t h = 0; h < 65536 + 5; ++h) {
    bytes[2 * h] = static_cast<uint8_t>(h);
    bytes[2 * h + 1] = static_cast<uint8_t>(h >> 8);
  }
  for (SimdLevel level : SupportedLevels()) {
    std::vector<float> out(65536 + 5);
    ASSERT_TRUE(
        format::ConvertToFloat(format::DTYPE_BF16, bytes.data(), out.size(), out.data(), level)
            .ok());
    for (uint32_t h = 0; h < out.size(); ++h) {
      ASSERT_EQ(std::bit_cast<uint32_t>(out[h]),
                std::bit_cast<uint32_t>(format::BFloat16ToFloat(static_cast<uint16_t>(h))))
          << LevelName(level);
    }
  }
}

TEST(ConvertToFloatTest, F32CopiesBitsIncludingNaNPayloads) {
  const uint32_t words[] = {0x00000000u, 0x80000000u, 0x7f800001u, 0xffc12345u,
                            0x00000001u, 0x3f800000u, 0x7f7fffffu};
  std::vector<uint8_t> bytes;
  for (uint32_t w : words) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(w >> (8 * i)));
  }
  for (SimdLevel level : SupportedLevels()) {
    float out[7];
    ASSERT_TRUE(format::ConvertToFloat(format::DTYPE_F32, bytes.data(), 7, out, level).ok());
    for (int i = 0; i < 7; ++i) EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), words[i]);
  }
}

TEST(ConvertToFloatTest, RejectsUnknownTypesAndPartialBlocks) {
  uint8_t bytes[144] = {};
  float out[256];
  EXPECT_EQ(format::ConvertToFloat(format::DTYPE_UNSPECIFIED, bytes, 1, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(format::ConvertToFloat(format::DTYPE_Q4_0, bytes, 31, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(format::ConvertToFloat(format::DTYPE_Q4_K, bytes, 32, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(format::ConvertToFloat(format::DTYPE_Q8_0, bytes, 48, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(format::ConvertToFloat(format::DTYPE_Q4_K, bytes, 256, out).ok());
  EXPECT_TRUE(format::ConvertToFloat(format::DTYPE_Q8_0, bytes, 128, out).ok());
  for (format::DType dtype : {format::DTYPE_Q4_1, format::DTYPE_Q5_0, format::DTYPE_Q5_1}) {
    EXPECT_EQ(format::ConvertToFloat(dtype, bytes, 33, out).code(),
              absl::StatusCode::kInvalidArgument)
        << format::DTypeName(dtype);
    EXPECT_TRUE(format::ConvertToFloat(dtype, bytes, 160, out).ok()) << format::DTypeName(dtype);
  }
}

// ---------------------------------------------------------------- decoders ---

// Random blocks whose scale fields are drawn from edge values as well.
std::vector<uint8_t> RandomBlockBytes(size_t n_blocks, size_t block_bytes, int scale_fields,
                                      uint32_t seed) {
  const uint16_t edge_halves[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xbc00,
                                  0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x2e66};
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n_blocks * block_bytes);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  for (size_t b = 0; b < n_blocks; ++b) {
    for (int f = 0; f < scale_fields; ++f) {
      if (rng() % 2 == 0) {
        const uint16_t h = edge_halves[rng() % std::size(edge_halves)];
        bytes[b * block_bytes + 2 * f] = static_cast<uint8_t>(h);
        bytes[b * block_bytes + 2 * f + 1] = static_cast<uint8_t>(h >> 8);
      }
    }
  }
  return bytes;
}

using ::zcpack::testutil::ExpectSameFloats;

// A block decoder under test and the in-test decoder of the same layout.
struct DecoderCase {
  format::DType dtype;
  size_t n_blocks;
  int scale_fields;  // leading binary16 fields, drawn from edge values as well
  uint32_t seed;
  void (*ref_decode_block)(const uint8_t* block, float* y);
  void (*dequantize)(const uint8_t* blocks, size_t n, float* out, SimdLevel level);
};

TEST(DequantizeTest, EveryBlockTypeMatchesIndependentDecoder) {
  const DecoderCase cases[] = {
      {format::DTYPE_Q4_0, 4099, 1, 11, RefDecodeQ4_0Block, format::DequantizeQ4_0},
      {format::DTYPE_Q4_K, 1031, 2, 12, RefDecodeQ4_KBlock, format::DequantizeQ4_K},
      {format::DTYPE_Q8_0, 4099, 1, 14, RefDecodeQ8_0Block, format::DequantizeQ8_0},
      {format::DTYPE_Q4_1, 4099, 2, 16, RefDecodeQ4_1Block, format::DequantizeQ4_1},
      {format::DTYPE_Q5_0, 4099, 1, 17, RefDecodeQ5_0Block, format::DequantizeQ5_0},
      {format::DTYPE_Q5_1, 4099, 2, 18, RefDecodeQ5_1Block, format::DequantizeQ5_1},
  };
  for (const DecoderCase& c : cases) {
    const size_t block_bytes = format::BlockBytes(c.dtype);
    const size_t block_elements = format::BlockElements(c.dtype);
    const size_t n = c.n_blocks * block_elements;
    const std::vector<uint8_t> bytes =
        RandomBlockBytes(c.n_blocks, block_bytes, c.scale_fields, c.seed);
    std::vector<float> want(n);
    for (size_t b = 0; b < c.n_blocks; ++b) {
      c.ref_decode_block(bytes.data() + block_bytes * b, want.data() + block_elements * b);
    }
    const std::string name(format::DTypeName(c.dtype));
    for (SimdLevel level : SupportedLevels()) {
      std::vector<float> got(n);
      c.dequantize(bytes.data(), n, got.data(), level);
      ExpectSameFloats(got, want, name + " " + LevelName(level));
      std::vector<float> via_convert(n);
      ASSERT_TRUE(format::ConvertToFloat(c.dtype, bytes.data(), n, via_convert.data(), level).ok());
      ExpectSameFloats(via_convert, want, name + " ConvertToFloat " + LevelName(level));
    }
  }
}

// Every SIMD decoder gives the scalar decoder's bits, NaNs included: each
// output is one multiplication of the same two floats.
TEST(DequantizeTest, Q8_0SimdEqualsScalarBitForBit) {
  constexpr size_t kBlocks = 2053;
  const std::vector<uint8_t> bytes = RandomBlockBytes(kBlocks, 34, 1, 15);
  std::vector<float> scalar(kBlocks * 32);
  format::DequantizeQ8_0(bytes.data(), scalar.size(), scalar.data(), SimdLevel::kScalar);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<float> got(kBlocks * 32);
    format::DequantizeQ8_0(bytes.data(), got.size(), got.data(), level);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(scalar[i]))
          << LevelName(level) << " element " << i;
    }
  }
}

TEST(DequantizeTest, Q8_0LayoutSignedBytesInElementOrder) {
  uint8_t block[34] = {0x00, 0xc0};  // d = -2.0
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<uint8_t>(j * 8 - 128);
  for (SimdLevel level : SupportedLevels()) {
    float got[32];
    format::DequantizeQ8_0(block, 32, got, level);
    for (int j = 0; j < 32; ++j) {
      EXPECT_EQ(got[j], -2.0f * static_cast<float>(j * 8 - 128)) << LevelName(level) << " " << j;
    }
  }
}

TEST(DequantizeTest, Q4_KLayoutPlacesEveryScaleMinAndNibble) {
  // Distinct 6-bit scales and mins (including the two high bits) and a code
  // pattern that differs at every position, packed by the in-test packer.
  const int sc[8] = {1, 63, 17, 32, 48, 5, 60, 33};
  const int m[8] = {62, 0, 31, 16, 47, 59, 3, 40};
  int codes[256];
  for (int i = 0; i < 256; ++i) codes[i] = (i * 5 + i / 32) % 16;
  uint8_t block[144];
  RefPackQ4_KBlock(0x3c00 /* 1.0 */, 0x3800 /* 0.5 */, sc, m, codes, block);
  float got[256];
  format::DequantizeQ4_K(block, 256, got);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 32;
    EXPECT_EQ(got[i], static_cast<float>(sc[s] * codes[i]) - 0.5f * static_cast<float>(m[s])) << i;
  }
}

TEST(DequantizeTest, Q4_0LayoutLowNibbleFirstHalf) {
  uint8_t block[18] = {0x00, 0x40};  // d = 2.0
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float got[32];
  format::DequantizeQ4_0(block, 32, got);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(got[j], 2.0f * static_cast<float>(j - 8));
    EXPECT_EQ(got[j + 16], 2.0f * static_cast<float>(7 - j));
  }
}

TEST(DequantizeTest, Q4_1LayoutLowNibbleFirstHalfPlusMin) {
  uint8_t block[20] = {0x00, 0x40, 0x00, 0xbc};  // d = 2.0, m = -1.0
  for (int j = 0; j < 16; ++j) block[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  for (SimdLevel level : SupportedLevels()) {
    float got[32];
    format::DequantizeQ4_1(block, 32, got, level);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(got[j], 2.0f * static_cast<float>(j) - 1.0f) << j;
      EXPECT_EQ(got[j + 16], 2.0f * static_cast<float>(15 - j) - 1.0f) << j;
    }
  }
}

// Each element's fifth bit on its own: only element e changes when bit e of
// qh is set, by 16 * d.
TEST(DequantizeTest, Q5LayoutsTakeBitEOfQhAsElementEsFifthBit) {
  for (format::DType dtype : {format::DTYPE_Q5_0, format::DTYPE_Q5_1}) {
    const bool with_min = dtype == format::DTYPE_Q5_1;
    const size_t qh_at = with_min ? 4 : 2;
    uint8_t block[24] = {0x00, 0x3c};  // d = 1.0, qh = 0
    if (with_min) block[3] = 0x38;      // m = 0.5
    for (int j = 0; j < 16; ++j) block[qh_at + 4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float base[32];
    ASSERT_TRUE(format::ConvertToFloat(dtype, block, 32, base).ok());
    for (int j = 0; j < 16; ++j) {
      const float offset = with_min ? 0.5f : -16.0f;
      EXPECT_EQ(base[j], static_cast<float>(j) + offset);
      EXPECT_EQ(base[j + 16], static_cast<float>(15 - j) + offset);
    }
    for (int e = 0; e < 32; ++e) {
      uint8_t flipped[24];
      std::memcpy(flipped, block, sizeof(block));
      flipped[qh_at + e / 8] = static_cast<uint8_t>(1u << (e % 8));
      for (SimdLevel level : SupportedLevels()) {
        float got[32];
        ASSERT_TRUE(format::ConvertToFloat(dtype, flipped, 32, got, level).ok());
        for (int i = 0; i < 32; ++i) {
          EXPECT_EQ(got[i], base[i] + (i == e ? 16.0f : 0.0f))
              << format::DTypeName(dtype) << " bit " << e << " element " << i;
        }
      }
    }
  }
}

TEST(DequantizeTest, RemainderElementsAreNotWritten) {
  const std::vector<uint8_t> blocks = RandomBlockBytes(4, 144, 2, 13);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<float> out(3 * 32 + 40, -7.0f);
    format::DequantizeQ4_0(blocks.data(), 3 * 32 + 5, out.data(), level);
    for (size_t i = 3 * 32; i < out.size(); ++i) ASSERT_EQ(out[i], -7.0f) << LevelName(level);
    std::vector<float> out_k(256 + 300, -7.0f);
    format::DequantizeQ4_K(blocks.data(), 256 + 255, out_k.data(), level);
    for (size_t i = 256; i < out_k.size(); ++i) ASSERT_EQ(out_k[i], -7.0f) << LevelName(level);
    std::vector<float> out_8(3 * 32 + 40, -7.0f);
    format::DequantizeQ8_0(blocks.data(), 3 * 32 + 31, out_8.data(), level);
    for (size_t i = 3 * 32; i < out_8.size(); ++i) ASSERT_EQ(out_8[i], -7.0f) << LevelName(level);
    for (auto* decode : {static_cast<void (*)(const uint8_t*, size_t, float*, SimdLevel)>(
                             format::DequantizeQ4_1),
                         static_cast<void (*)(const uint8_t*, size_t, float*, SimdLevel)>(
                             format::DequantizeQ5_0),
                         static_cast<void (*)(const uint8_t*, size_t, float*, SimdLevel)>(
                             format::DequantizeQ5_1)}) {
      std::vector<float> out_32(3 * 32 + 40, -7.0f);
      decode(blocks.data(), 3 * 32 + 31, out_32.data(), level);
      for (size_t i = 3 * 32; i < out_32.size(); ++i) {
        ASSERT_EQ(out_32[i], -7.0f) << LevelName(level);
      }
    }
  }
}

TEST(DequantizeTest, UnsupportedLevelsAreLowered) {
  EXPECT_LE(static_cast<int>(format::SupportedSimdLevel(SimdLevel::kAvx512)),
            static_cast<int>(format::DetectSimdLevel()));
  EXPECT_EQ(format::SupportedSimdLevel(SimdLevel::kScalar), SimdLevel::kScalar);
  EXPECT_EQ(format::SimdLevelName(SimdLevel::kAvx2), "avx2");
}

// ------------------------------------------------------------- q4_0 search ---

// Checks every block of x: never worse than ggml's reference, and identical to
// it when the reference is exact. Returns total squared errors (mine, ref).
std::pair<long double, long double> CheckAgainstReference(const std::vector<float>& x,
                                                          const std::string& what) {
  const size_t n_blocks = x.size() / 32;
  std::vector<uint8_t> mine(n_blocks * 18);
  QuantizeQ4_0(x.data(), x.size(), mine.data());
  long double total_mine = 0;
  long double total_ref = 0;
  for (size_t b = 0; b < n_blocks; ++b) {
    uint8_t ref[18];
    RefQuantizeQ4_0Block(x.data() + 32 * b, ref);
    float y_mine[32];
    float y_ref[32];
    RefDecodeQ4_0Block(mine.data() + 18 * b, y_mine);
    RefDecodeQ4_0Block(ref, y_ref);
    const long double e_mine = SquaredError(x.data() + 32 * b, y_mine, 32);
    const long double e_ref = SquaredError(x.data() + 32 * b, y_ref, 32);
    EXPECT_LE(e_mine, e_ref) << what << " block " << b;
    if (e_ref == 0) {
      EXPECT_EQ(std::memcmp(mine.data() + 18 * b, ref, 18), 0) << what << " block " << b;
    }
    total_mine += e_mine;
    total_ref += e_ref;
  }
  return {total_mine, total_ref};
}

TEST(QuantizeQ4ZeroTest, NeverWorseThanGgmlReferenceOnAnyBlock) {
  for (Dist dist : kAllDists) {
    const std::vector<float> x = RandomFloats(dist, 32 * 40000, 100 + static_cast<uint32_t>(dist));
    const auto [mine, ref] =
        CheckAgainstReference(x, "dist " + std::to_string(static_cast<int>(dist)));
    // The search must also pay off on aggregate, not just tie.
    if (dist != Dist::kSparse) {
      EXPECT_LT(mine, 0.97L * ref) << static_cast<int>(dist);
    }
  }
}

TEST(QuantizeQ4ZeroTest, EdgeBlocksNeverWorseThanReference) {
  std::vector<float> x;
  for (const auto& b : EdgeBlocks()) x.insert(x.end(), b.begin(), b.end());
  CheckAgainstReference(x, "edge");
}

TEST(QuantizeQ4ZeroTest, AllZeroBlockIsGgmlsBlock) {
  const std::vector<float> x(32, 0.0f);
  uint8_t mine[18];
  uint8_t ref[18];
  QuantizeQ4_0(x.data(), 32, mine);
  RefQuantizeQ4_0Block(x.data(), ref);
  EXPECT_EQ(std::memcmp(mine, ref, 18), 0);
  EXPECT_EQ(Le16(mine), 0x8000);  // max / -8 with max = +0 is -0
}

TEST(QuantizeQ4ZeroTest, ExactlyRepresentableBlockRoundTrips) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 1000; ++trial) {
    const float d = RefHalfToFloat(
        RefFloatToHalf(std::ldexp(1.0f + (rng() % 1000) / 1000.0f, -(int)(rng() % 20))));
    std::vector<float> x(32);
    for (float& v : x) v = d * static_cast<float>(static_cast<int>(rng() % 16) - 8);
    x[rng() % 32] = -8 * d;  // the extreme sits at -8, so the reference is exact
    uint8_t mine[18];
    QuantizeQ4_0(x.data(), 32, mine);
    float y[32];
    RefDecodeQ4_0Block(mine, y);
    for (int j = 0; j < 32; ++j) ASSERT_EQ(y[j], x[j]) << trial;
  }
}

TEST(QuantizeQ4ZeroTest, HonoursBinary16Rounding) {
  // Values whose max/-8 scale is far from a binary16 value: the chosen scale
  // must be a binary16 value and the error must be measured with it.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 1.0f + 0.0003f * static_cast<float>(j);
  x[31] = 1.00049f;
  CheckAgainstReference(x, "rounding");
}

TEST(QuantizeQ4ZeroTest, WritesOnlyWholeBlocks) {
  const std::vector<float> x = RandomFloats(Dist::kNormal, 40 * 32 + 31, 14);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<uint8_t> out(40 * 18 + 64, 0xAB);
    QuantizeQ4_0(x.data(), x.size(), out.data(), level);
    for (size_t i = 40 * 18; i < out.size(); ++i) ASSERT_EQ(out[i], 0xAB) << LevelName(level);
    std::vector<uint8_t> out_k(5 * 144 + 64, 0xAB);
    QuantizeQ4_K(x.data(), 5 * 256 + 255, out_k.data(), level);
    for (size_t i = 5 * 144; i < out_k.size(); ++i) ASSERT_EQ(out_k[i], 0xAB) << LevelName(level);
    std::vector<uint8_t> out_8(40 * 34 + 64, 0xAB);
    QuantizeQ8_0(x.data(), x.size(), out_8.data(), level);
    for (size_t i = 40 * 34; i < out_8.size(); ++i) ASSERT_EQ(out_8[i], 0xAB) << LevelName(level);
  }
}

// ------------------------------------------------------------------- q8_0 ---

// Checks QuantizeQ8_0() at every level against the in-test ggml reference,
// block by block, byte for byte.
void ExpectGgmlQ8_0Blocks(const std::vector<float>& x, const std::string& what) {
  const size_t n_blocks = x.size() / 32;
  std::vector<uint8_t> want(n_blocks * 34);
  for (size_t b = 0; b < n_blocks; ++b) RefQuantizeQ8_0Block(x.data() + 32 * b, &want[34 * b]);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<uint8_t> got(n_blocks * 34);
    QuantizeQ8_0(x.data(), x.size(), got.data(), level);
    for (size_t b = 0; b < n_blocks; ++b) {
      ASSERT_EQ(std::memcmp(&got[34 * b], &want[34 * b], 34), 0)
          << what << " block " << b << " at " << LevelName(level);
    }
  }
}

// Hand-made q8_0 input blocks at the corners of ggml's rule.
std::vector<std::vector<float>> Q8_0EdgeBlocks() {
  std::vector<std::vector<float>> blocks = EdgeBlocks();
  std::vector<float> b(32, 0.01f);
  b[3] = 1e6f;
  blocks.push_back(b);  // one huge value: every other code rounds to 0
  b[3] = -100.0f;
  b[9] = 99.0f;
  blocks.push_back(b);  // negative max
  for (int j = 0; j < 32; ++j) b[j] = 127.0f - 8.0f * static_cast<float>(j) - 0.5f;
  b[0] = -127.0f;  // d = 1 exactly: every other product is a halfway case
  blocks.push_back(b);
  for (int j = 0; j < 32; ++j) b[j] = std::nextafter(0.5f * static_cast<float>(j % 5), 0.0f);
  b[31] = 127.0f;  // just below halfway
  blocks.push_back(b);
  for (int j = 0; j < 32; ++j) b[j] = 1e7f * std::cos(static_cast<float>(j));
  b[0] = 1e7f;
  blocks.push_back(b);  // amax / 127 overflows the binary16 scale
  for (int j = 0; j < 32; ++j) b[j] = (j % 2 ? -0.0f : 0.0f);
  blocks.push_back(b);  // signed zeros
  for (int j = 0; j < 32; ++j) b[j] = 1e-6f * std::sin(static_cast<float>(j + 1));
  blocks.push_back(b);  // binary16 scale rounds to 0, codes still set
  return blocks;
}

TEST(QuantizeQ8ZeroTest, EqualsGgmlReferenceByteForByte) {
  for (Dist dist : kAllDists) {
    ExpectGgmlQ8_0Blocks(RandomFloats(dist, 32 * 8000, 300 + static_cast<uint32_t>(dist)),
                         "dist " + std::to_string(static_cast<int>(dist)));
  }
}

TEST(QuantizeQ8ZeroTest, EdgeBlocksEqualGgmlReference) {
  const auto blocks = Q8_0EdgeBlocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    ExpectGgmlQ8_0Blocks(blocks[i], "edge block " + std::to_string(i));
  }
}

TEST(QuantizeQ8ZeroTest, AllZeroBlockIsAllZeroBytes) {
  const std::vector<float> x(32, 0.0f);
  for (SimdLevel level : SupportedLevels()) {
    uint8_t block[34];
    std::memset(block, 0xAB, sizeof(block));
    QuantizeQ8_0(x.data(), 32, block, level);
    for (int i = 0; i < 34; ++i) EXPECT_EQ(block[i], 0) << LevelName(level) << " byte " << i;
  }
}

// roundf() rounds halfway cases away from zero; round-to-even would give
// 2 for 2.5 and 0 for 0.5.
TEST(QuantizeQ8ZeroTest, HalfwayProductsRoundAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 127 / 127 = 1, id = 1: each code is round(x)
  const float inputs[] = {2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 0.49999997f, -0.49999997f,
                          3.4999998f};
  const int codes[] = {3, -3, 1, -1, 2, -127, 0, 0, 3};
  for (size_t i = 0; i < std::size(inputs); ++i) x[1 + i] = inputs[i];
  for (SimdLevel level : SupportedLevels()) {
    uint8_t block[34];
    QuantizeQ8_0(x.data(), 32, block, level);
    EXPECT_EQ(Le16(block), 0x3c00) << LevelName(level);  // 1.0
    EXPECT_EQ(static_cast<int8_t>(block[2]), 127) << LevelName(level);
    for (size_t i = 0; i < std::size(inputs); ++i) {
      EXPECT_EQ(static_cast<int8_t>(block[3 + i]), codes[i])
          << LevelName(level) << " " << inputs[i];
    }
  }
}

TEST(QuantizeQ8ZeroTest, NegativeMaxGivesPositiveScaleAndCodeMinus127) {
  std::vector<float> x(32, 0.25f);
  x[5] = -50.0f;
  uint8_t block[34];
  QuantizeQ8_0(x.data(), 32, block);
  EXPECT_EQ(Le16(block), RefFloatToHalf(50.0f / 127));
  EXPECT_GT(RefHalfToFloat(Le16(block)), 0.0f);
  EXPECT_EQ(static_cast<int8_t>(block[2 + 5]), -127);
  EXPECT_EQ(static_cast<int8_t>(block[2]), 1);  // round(0.25 * 127 / 50) = round(0.635)
}

TEST(QuantizeQ8ZeroTest, ErrorIsAtMostHalfAStepPlusScaleRounding) {
  const std::vector<float> x = RandomFloats(Dist::kStudentT, 32 * 500, 31);
  std::vector<uint8_t> blocks(500 * 34);
  QuantizeQ8_0(x.data(), x.size(), blocks.data());
  for (size_t b = 0; b < 500; ++b) {
    float y[32];
    RefDecodeQ8_0Block(&blocks[34 * b], y);
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    // Half a step of amax / 127, plus the binary16 rounding of the scale
    // (2^-11 relative) times the largest code.
    const float bound = amax / 127 * 0.5f + amax * 0x1p-11f * 1.01f;
    for (int j = 0; j < 32; ++j) ASSERT_LE(std::fabs(y[j] - x[32 * b + j]), bound) << b << " " << j;
  }
}

// ------------------------------------------------------------------- q4_k ---

TEST(QuantizeQ4KTest, RoundTripErrorIsSmallAndNoWorseThanGgmlReference) {
  for (Dist dist : kAllDists) {
    const std::vector<float> x = RandomFloats(dist, 256 * 4000, 200 + static_cast<uint32_t>(dist));
    const size_t n_blocks = x.size() / 256;
    std::vector<uint8_t> mine(n_blocks * 144);
    QuantizeQ4_K(x.data(), x.size(), mine.data());
    long double e_mine = 0;
    long double e_ref = 0;
    long double energy = 0;
    for (size_t b = 0; b < n_blocks; ++b) {
      float y[256];
      RefDecodeQ4_KBlock(mine.data() + 144 * b, y);
      e_mine += SquaredError(x.data() + 256 * b, y, 256);
      uint8_t ref[144];
      RefQuantizeQ4_KBlock(x.data() + 256 * b, ref);
      RefDecodeQ4_KBlock(ref, y);
      e_ref += SquaredError(x.data() + 256 * b, y, 256);
      for (int i = 0; i < 256; ++i)
        energy += static_cast<long double>(x[256 * b + i]) * x[256 * b + i];
    }
    SCOPED_TRACE(static_cast<int>(dist));
    // 4.5 bits per weight: at least 17 dB, except where the binary16
    // super-block factors underflow (weights around 1e-6), where the blocks
    // must still beat storing zeros.
    EXPECT_LT(e_mine, energy * (dist == Dist::kTiny ? 0.5L : 0.02L));
    // Parity with ggml's reference quantizer (measured: at most 0.1% above).
    EXPECT_LE(e_mine, e_ref * 1.005L);
  }
}

TEST(QuantizeQ4KTest, ConstantAndZeroSuperBlocksDecodeClosely) {
  for (float value : {0.0f, 0.5f, -0.25f, 1000.0f}) {
    const std::vector<float> x(256, value);
    uint8_t block[144];
    QuantizeQ4_K(x.data(), 256, block);
    float y[256];
    RefDecodeQ4_KBlock(block, y);
    for (int i = 0; i < 256; ++i)
      EXPECT_NEAR(y[i], value, std::fabs(value) * 2e-3f + 1e-6f) << value;
  }
}

TEST(QuantizeQ4KTest, PerSubBlockStructureIsPreserved) {
  // Sub-blocks with very different offsets and ranges: mis-placed scales, mins
  // or nibbles would show up as large errors in particular sub-blocks.
  std::vector<float> x(256);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int s = 0; s < 8; ++s) {
    for (int l = 0; l < 32; ++l) x[32 * s + l] = static_cast<float>(s) * 0.1f * u(rng) - 0.05f * s;
  }
  uint8_t block[144];
  QuantizeQ4_K(x.data(), 256, block);
  float y[256];
  RefDecodeQ4_KBlock(block, y);
  for (int s = 1; s < 8; ++s) {
    const double range = 0.1 * s;
    for (int l = 0; l < 32; ++l) {
      // Codes are within half a step of the sub-block's own 15-step grid,
      // plus the 6-bit quantization of its scale and min.
      EXPECT_NEAR(y[32 * s + l], x[32 * s + l], range / 15 * 0.5 + range * 0.04) << s << " " << l;
    }
  }
}

// ------------------------------------------------------ SIMD == scalar ---

std::vector<float> MixedData(size_t n, uint32_t seed) {
  std::vector<float> x;
  size_t part = 0;
  while (x.size() < n) {
    const std::vector<float> chunk =
        RandomFloats(kAllDists[part % std::size(kAllDists)], 32 * 7, seed + part);
    x.insert(x.end(), chunk.begin(), chunk.end());
    ++part;
  }
  for (const auto& b : EdgeBlocks()) x.insert(x.end(), b.begin(), b.end());
  x.resize(n);
  return x;
}

// Quantizes MixedData() of each block count with `quantize` at every level
// and expects the scalar kernel's bytes.
void ExpectSimdBytesEqualScalar(format::DType dtype, std::initializer_list<size_t> block_counts,
                                uint32_t seed,
                                void (*quantize)(const float*, size_t, uint8_t*, SimdLevel)) {
  const size_t block_elements = format::BlockElements(dtype);
  const size_t block_bytes = format::BlockBytes(dtype);
  for (size_t n_blocks : block_counts) {
    const std::vector<float> x =
        MixedData(block_elements * n_blocks, seed + static_cast<uint32_t>(n_blocks));
    std::vector<uint8_t> scalar(block_bytes * n_blocks);
    quantize(x.data(), x.size(), scalar.data(), SimdLevel::kScalar);
    for (SimdLevel level : SupportedLevels()) {
      std::vector<uint8_t> simd(block_bytes * n_blocks);
      quantize(x.data(), x.size(), simd.data(), level);
      ASSERT_EQ(simd, scalar) << format::DTypeName(dtype) << " at " << LevelName(level)
                              << " with " << n_blocks << " blocks";
    }
  }
}

TEST(QuantizeSimdTest, Q4_0SimdBlocksAreByteIdenticalToScalar) {
  ExpectSimdBytesEqualScalar(format::DTYPE_Q4_0, {1, 7, 8, 15, 16, 17, 33, 1000, 4097}, 0,
                             QuantizeQ4_0);
}

TEST(QuantizeSimdTest, Q4_KSimdBlocksAreByteIdenticalToScalar) {
  ExpectSimdBytesEqualScalar(format::DTYPE_Q4_K, {1, 2, 3, 64, 129}, 50, QuantizeQ4_K);
}

TEST(QuantizeSimdTest, Q8_0SimdBlocksAreByteIdenticalToScalar) {
  ExpectSimdBytesEqualScalar(format::DTYPE_Q8_0, {1, 7, 8, 15, 16, 17, 31, 32, 33, 1000, 4097}, 90,
                             QuantizeQ8_0);
}

TEST(QuantizeSimdTest, NonFiniteInputsGiveIdenticalBlocksToo) {
  std::vector<float> x = MixedData(256 * 8, 77);
  const float specials[] = {std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            3e38f,
                            -3e38f,
                            1e-45f};
  for (size_t i = 0; i < x.size(); i += 37) x[i] = specials[(i / 37) % std::size(specials)];
  std::vector<uint8_t> q0_scalar(18 * 64);
  std::vector<uint8_t> qk_scalar(144 * 8);
  std::vector<uint8_t> q8_scalar(34 * 64);
  QuantizeQ4_0(x.data(), x.size(), q0_scalar.data(), SimdLevel::kScalar);
  QuantizeQ4_K(x.data(), x.size(), qk_scalar.data(), SimdLevel::kScalar);
  QuantizeQ8_0(x.data(), x.size(), q8_scalar.data(), SimdLevel::kScalar);
  for (SimdLevel level : SupportedLevels()) {
    std::vector<uint8_t> q0(18 * 64);
    std::vector<uint8_t> qk(144 * 8);
    std::vector<uint8_t> q8(34 * 64);
    QuantizeQ4_0(x.data(), x.size(), q0.data(), level);
    QuantizeQ4_K(x.data(), x.size(), qk.data(), level);
    QuantizeQ8_0(x.data(), x.size(), q8.data(), level);
    EXPECT_EQ(q0, q0_scalar) << LevelName(level);
    EXPECT_EQ(qk, qk_scalar) << LevelName(level);
    EXPECT_EQ(q8, q8_scalar) << LevelName(level);
  }
}

// ------------------------------------------------------ error statistics ---

TEST(QuantErrorAccumulatorTest, KnownExample) {
  const float source[] = {1.0f, 2.0f, 3.0f, 4.0f};
  const float decoded[] = {1.0f, 2.0f, 3.0f, 5.0f};
  for (SimdLevel level : SupportedLevels()) {
    QuantErrorAccumulator acc;
    acc.Add(source, decoded, 4, level);
    EXPECT_EQ(acc.count(), 4u);
    EXPECT_DOUBLE_EQ(acc.sum_squared_source(), 30.0);
    EXPECT_DOUBLE_EQ(acc.sum_squared_error(), 1.0);
    EXPECT_DOUBLE_EQ(acc.rmse(), 0.5);
    EXPECT_DOUBLE_EQ(acc.max_abs_error(), 1.0);
    EXPECT_DOUBLE_EQ(acc.snr_db(), 10.0 * std::log10(30.0));
    const format::QuantStats stats = acc.Stats();
    EXPECT_DOUBLE_EQ(stats.rmse(), 0.5);
    EXPECT_DOUBLE_EQ(stats.max_abs_error(), 1.0);
    EXPECT_DOUBLE_EQ(stats.snr_db(), 10.0 * std::log10(30.0));
  }
}

TEST(QuantErrorAccumulatorTest, LongSpanMatchesDoubleReference) {
  const std::vector<float> x = RandomFloats(Dist::kNormal, 100003, 3);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * 0.99f + 1e-4f;
  long double src = 0;
  long double err = 0;
  double max_err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = x[i] - y[i];
    src += static_cast<long double>(x[i]) * x[i];
    err += static_cast<long double>(d) * d;
    max_err = std::max(max_err, static_cast<double>(std::fabs(d)));
  }
  QuantErrorAccumulator acc;
  acc.Add(x.data(), y.data(), x.size());
  // Float partials over 16 terms each: relative error around 1e-7 at most.
  EXPECT_NEAR(acc.sum_squared_source(), static_cast<double>(src), 1e-6 * static_cast<double>(src));
  EXPECT_NEAR(acc.sum_squared_error(), static_cast<double>(err), 1e-6 * static_cast<double>(err));
  EXPECT_EQ(acc.max_abs_error(), max_err);
  EXPECT_NEAR(acc.snr_db(), 10.0 * std::log10(static_cast<double>(src / err)), 1e-5);
}

TEST(QuantErrorAccumulatorTest, ZeroErrorAndEmptyReportInfiniteSnr) {
  QuantErrorAccumulator empty;
  EXPECT_EQ(empty.rmse(), 0.0);
  EXPECT_EQ(empty.snr_db(), QuantErrorAccumulator::kInfiniteSnrDb);
  const float x[] = {1.0f, -2.0f};
  QuantErrorAccumulator exact;
  exact.Add(x, x, 2);
  EXPECT_EQ(exact.snr_db(), 1e9);
  EXPECT_EQ(exact.rmse(), 0.0);
  const float zeros[] = {0.0f, 0.0f};
  QuantErrorAccumulator from_zero;
  from_zero.Add(zeros, x, 2);
  EXPECT_EQ(from_zero.snr_db(), -1e9);
}

TEST(QuantErrorAccumulatorTest, ResultDoesNotDependOnOrderOrMergeTree) {
  // Spans with wildly different magnitudes, where floating-point addition
  // order would show.
  std::vector<std::vector<float>> src;
  std::vector<std::vector<float>> dec;
  std::mt19937 rng(4);
  for (int s = 0; s < 40; ++s) {
    std::vector<float> x = RandomFloats(Dist::kNormal, 1 + rng() % 300, 1000 + s);
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 80) - 40);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] *= scale;
      y[i] = x[i] * (1.0f + 1e-3f * static_cast<float>(i % 7));
    }
    src.push_back(x);
    dec.push_back(y);
  }
  QuantErrorAccumulator forward;
  for (size_t s = 0; s < src.size(); ++s) forward.Add(src[s].data(), dec[s].data(), src[s].size());
  // Reverse order, spread over four accumulators merged as a tree.
  QuantErrorAccumulator parts[4];
  for (size_t s = src.size(); s-- > 0;)
    parts[s % 4].Add(src[s].data(), dec[s].data(), src[s].size());
  parts[3].Merge(parts[1]);
  parts[2].Merge(parts[0]);
  parts[2].Merge(parts[3]);
  EXPECT_EQ(std::bit_cast<uint64_t>(parts[2].sum_squared_source()),
            std::bit_cast<uint64_t>(forward.sum_squared_source()));
  EXPECT_EQ(std::bit_cast<uint64_t>(parts[2].sum_squared_error()),
            std::bit_cast<uint64_t>(forward.sum_squared_error()));
  EXPECT_EQ(parts[2].max_abs_error(), forward.max_abs_error());
  EXPECT_EQ(parts[2].count(), forward.count());
}

TEST(QuantErrorAccumulatorTest, AddRowsIsIndependentOfChunking) {
  constexpr size_t kRow = 96;
  const std::vector<float> x = RandomFloats(Dist::kStudentT, kRow * 101, 8);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] + 1e-3f * std::sin(static_cast<float>(i));
  QuantErrorAccumulator whole;
  whole.AddRows(x.data(), y.data(), x.size(), kRow);
  for (size_t rows_per_chunk : {1u, 3u, 17u, 50u}) {
    QuantErrorAccumulator chunked;
    for (size_t r = 0; r < 101; r += rows_per_chunk) {
      const size_t rows = std::min<size_t>(rows_per_chunk, 101 - r);
      chunked.AddRows(x.data() + r * kRow, y.data() + r * kRow, rows * kRow, kRow);
    }
    EXPECT_EQ(std::bit_cast<uint64_t>(chunked.sum_squared_error()),
              std::bit_cast<uint64_t>(whole.sum_squared_error()));
    EXPECT_EQ(std::bit_cast<uint64_t>(chunked.sum_squared_source()),
              std::bit_cast<uint64_t>(whole.sum_squared_source()));
  }
}

TEST(QuantErrorAccumulatorTest, SimdLevelsGiveIdenticalSums) {
  const std::vector<float> x = RandomFloats(Dist::kLaplace, 12345, 9);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * 1.01f - 1e-3f;
  QuantErrorAccumulator scalar;
  scalar.Add(x.data(), y.data(), x.size(), SimdLevel::kScalar);
  for (SimdLevel level : SupportedLevels()) {
    QuantErrorAccumulator acc;
    acc.Add(x.data(), y.data(), x.size(), level);
    EXPECT_EQ(std::bit_cast<uint64_t>(acc.sum_squared_error()),
              std::bit_cast<uint64_t>(scalar.sum_squared_error()))
        << LevelName(level);
    EXPECT_EQ(std::bit_cast<uint64_t>(acc.sum_squared_source()),
              std::bit_cast<uint64_t>(scalar.sum_squared_source()))
        << LevelName(level);
    EXPECT_EQ(acc.max_abs_error(), scalar.max_abs_error()) << LevelName(level);
  }
}

TEST(QuantErrorAccumulatorTest, ExactSumKeepsTinyTermsNextToHugeOnes) {
  quantize_internal::ExactSum a;
  quantize_internal::ExactSum b;
  const double terms[] = {1e300, 1.0, 4.9e-324, 1e-300, 1e300, 3.0};
  for (double t : terms) a.Add(t);
  for (int i = 5; i >= 0; --i) b.Add(terms[i]);
  EXPECT_EQ(a.Value(), 2e300);
  EXPECT_EQ(std::bit_cast<uint64_t>(a.Value()), std::bit_cast<uint64_t>(b.Value()));
  // 1 + 256 * 2^-60 = 1 + 2^-52: a running double sum would lose every term.
  quantize_internal::ExactSum c;
  c.Add(1.0);
  for (int i = 0; i < 256; ++i) c.Add(std::ldexp(1.0, -60));
  EXPECT_EQ(c.Value(), 1.0 + std::ldexp(1.0, -52));
}

// ------------------------------------------------------------ QuantizeRows ---

std::vector<uint8_t> ToF16Bytes(const std::vector<float>& x) {
  std::vector<uint8_t> bytes(2 * x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = format::FloatToHalf(x[i]);
    bytes[2 * i] = static_cast<uint8_t>(h);
    bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  return bytes;
}

// The block quantizer of `dtype` (q4_0, q4_k or q8_0).
void QuantizeBlocks(format::DType dtype, const float* x, size_t n, uint8_t* out) {
  switch (dtype) {
    case format::DTYPE_Q4_0: QuantizeQ4_0(x, n, out); break;
    case format::DTYPE_Q4_K: QuantizeQ4_K(x, n, out); break;
    case format::DTYPE_Q8_0: QuantizeQ8_0(x, n, out); break;
    default: FAIL() << "not a block type: " << format::DTypeName(dtype);
  }
}

constexpr format::DType kBlockDTypes[] = {format::DTYPE_Q4_0, format::DTYPE_Q4_K,
                                          format::DTYPE_Q8_0};

TEST(QuantizeRowsTest, MatchesBlockQuantizerAndAddRows) {
  constexpr uint64_t kRow = 512;
  constexpr uint64_t kRows = 12;
  const std::vector<float> x = RandomFloats(Dist::kOutliers, kRow * kRows, 21);
  const std::vector<uint8_t> f16 = ToF16Bytes(x);
  std::vector<float> widened(x.size());
  for (size_t i = 0; i < x.size(); ++i) widened[i] = format::HalfToFloat(format::FloatToHalf(x[i]));
  for (format::DType dtype : kBlockDTypes) {
    const uint64_t bytes = kRows * kRow / format::BlockElements(dtype) * format::BlockBytes(dtype);
    std::vector<uint8_t> got(bytes);
    QuantErrorAccumulator stats;
    ASSERT_TRUE(QuantizeRows(format::DTYPE_F16, f16, kRow, dtype, got, &stats).ok());
    std::vector<uint8_t> want(bytes);
    QuantizeBlocks(dtype, widened.data(), widened.size(), want.data());
    EXPECT_EQ(got, want) << format::DTypeName(dtype);
    std::vector<float> decoded(x.size());
    ASSERT_TRUE(format::ConvertToFloat(dtype, want.data(), decoded.size(), decoded.data()).ok());
    QuantErrorAccumulator expected;
    expected.AddRows(widened.data(), decoded.data(), widened.size(), kRow);
    EXPECT_EQ(stats.sum_squared_error(), expected.sum_squared_error());
    EXPECT_EQ(stats.sum_squared_source(), expected.sum_squared_source());
    EXPECT_EQ(stats.max_abs_error(), expected.max_abs_error());
    EXPECT_EQ(stats.count(), kRow * kRows);
    EXPECT_GT(stats.snr_db(), 15.0);
  }
}

class QuantizeRowsThreadsTest : public ::testing::TestWithParam<format::DType> {};

TEST_P(QuantizeRowsThreadsTest, RowRangesOnThreadsMergeToTheSameResult) {
  const format::DType dtype = GetParam();
  constexpr uint64_t kRow = 20480;  // longer than one piece
  constexpr uint64_t kRows = 6;
  const std::vector<float> x = RandomFloats(Dist::kNormal, kRow * kRows, 22);
  std::vector<uint8_t> bf16(2 * x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = format::FloatToBFloat16(x[i]);
    bf16[2 * i] = static_cast<uint8_t>(h);
    bf16[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  const uint64_t row_bytes = kRow / format::BlockElements(dtype) * format::BlockBytes(dtype);
  std::vector<uint8_t> whole(kRows * row_bytes);
  QuantErrorAccumulator whole_stats;
  ASSERT_TRUE(QuantizeRows(format::DTYPE_BF16, bf16, kRow, dtype, whole, &whole_stats).ok());
  std::vector<uint8_t> split(kRows * row_bytes);
  QuantErrorAccumulator parts[3];
  absl::Status status[3];
  const uint64_t cuts[] = {0, 1, 4, 6};
  std::vector<std::thread> threads;
  for (int p = 0; p < 3; ++p) {
    threads.emplace_back([&, p] {
      const auto src = std::span<const uint8_t>(bf16).subspan(cuts[p] * kRow * 2,
                                                              (cuts[p + 1] - cuts[p]) * kRow * 2);
      const auto dst = std::span<uint8_t>(split).subspan(cuts[p] * row_bytes,
                                                         (cuts[p + 1] - cuts[p]) * row_bytes);
      status[p] = QuantizeRows(format::DTYPE_BF16, src, kRow, dtype, dst, &parts[p]);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& st : status) ASSERT_TRUE(st.ok()) << st;
  // Merged in another order than the rows.
  parts[2].Merge(parts[0]);
  parts[2].Merge(parts[1]);
  EXPECT_EQ(split, whole);
  const format::QuantStats a = parts[2].Stats();
  const format::QuantStats b = whole_stats.Stats();
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
}

INSTANTIATE_TEST_SUITE_P(BlockTypes, QuantizeRowsThreadsTest,
                         ::testing::Values(format::DTYPE_Q4_K, format::DTYPE_Q8_0),
                         [](const ::testing::TestParamInfo<format::DType>& param_info) {
                           return std::string(format::DTypeName(param_info.param));
                         });

TEST(QuantizeRowsTest, SimdLevelsGiveIdenticalBytesAndStats) {
  constexpr uint64_t kRow = 4096;
  const std::vector<float> x = RandomFloats(Dist::kStudentT, kRow * 3, 23);
  std::vector<uint8_t> f32(4 * x.size());
  std::memcpy(f32.data(), x.data(), f32.size());
  for (format::DType dtype : kBlockDTypes) {
    const uint64_t bytes = 3 * kRow / format::BlockElements(dtype) * format::BlockBytes(dtype);
    std::vector<uint8_t> scalar(bytes);
    QuantErrorAccumulator scalar_stats;
    ASSERT_TRUE(
        QuantizeRows(format::DTYPE_F32, f32, kRow, dtype, scalar, &scalar_stats, SimdLevel::kScalar)
            .ok());
    for (SimdLevel level : SupportedLevels()) {
      std::vector<uint8_t> got(bytes);
      QuantErrorAccumulator stats;
      ASSERT_TRUE(QuantizeRows(format::DTYPE_F32, f32, kRow, dtype, got, &stats, level).ok());
      EXPECT_EQ(got, scalar) << LevelName(level);
      EXPECT_EQ(stats.Stats().SerializeAsString(), scalar_stats.Stats().SerializeAsString())
          << LevelName(level);
    }
  }
}

TEST(QuantizeRowsTest, RejectsBadArguments) {
  std::vector<uint8_t> src(2 * 64);
  std::vector<uint8_t> dst(2 * 18);
  QuantErrorAccumulator stats;
  struct Case {
    const char* what;
    format::DType src_dtype;
    uint64_t row_length;
    format::DType dst_dtype;
    size_t dst_size;
  };
  const Case cases[] = {
      {"q4 source", format::DTYPE_Q4_0, 32, format::DTYPE_Q4_0, 36},
      {"float destination", format::DTYPE_F16, 32, format::DTYPE_F16, 36},
      {"zero row length", format::DTYPE_F16, 0, format::DTYPE_Q4_0, 36},
      {"row not whole blocks", format::DTYPE_F16, 48, format::DTYPE_Q4_0, 36},
      {"source not whole rows", format::DTYPE_F16, 128, format::DTYPE_Q4_0, 72},
      {"row not whole super-blocks", format::DTYPE_F16, 64, format::DTYPE_Q4_K, 36},
      {"row not whole q8_0 blocks", format::DTYPE_F16, 48, format::DTYPE_Q8_0, 68},
      {"destination too small", format::DTYPE_F16, 32, format::DTYPE_Q4_0, 35},
      {"destination too large", format::DTYPE_F16, 32, format::DTYPE_Q4_0, 37},
  };
  for (const Case& c : cases) {
    dst.assign(c.dst_size, 0);
    EXPECT_EQ(QuantizeRows(c.src_dtype, src, c.row_length, c.dst_dtype, dst, &stats).code(),
              absl::StatusCode::kInvalidArgument)
        << c.what;
  }
  EXPECT_EQ(stats.count(), 0u);
}

TEST(QuantizeRowsTest, RejectsNonFiniteAndOversizedValuesWithoutTouchingStats) {
  std::vector<float> x(64, 0.5f);
  QuantErrorAccumulator stats;
  std::vector<uint8_t> dst(2 * 18);
  x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> f32(4 * x.size());
  std::memcpy(f32.data(), x.data(), f32.size());
  absl::Status s = QuantizeRows(format::DTYPE_F32, f32, 32, format::DTYPE_Q4_0, dst, &stats);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), testing::HasSubstr("element 40"));
  x[40] = 1e7f;  // max / 8 overflows binary16
  std::memcpy(f32.data(), x.data(), f32.size());
  s = QuantizeRows(format::DTYPE_F32, f32, 32, format::DTYPE_Q4_0, dst, &stats);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> dst8(2 * 34);
  x[40] = 9e6f;  // max / 127 overflows binary16 (q4_0 already fails at a tenth of that)
  std::memcpy(f32.data(), x.data(), f32.size());
  s = QuantizeRows(format::DTYPE_F32, f32, 32, format::DTYPE_Q8_0, dst8, &stats);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), testing::HasSubstr("q8_0"));
  x[40] = 8e6f;  // 8e6 / 127 = 62992 still fits
  std::memcpy(f32.data(), x.data(), f32.size());
  EXPECT_TRUE(QuantizeRows(format::DTYPE_F32, f32, 32, format::DTYPE_Q8_0, dst8, nullptr).ok());
  EXPECT_EQ(stats.count(), 0u);
}

}  // namespace
}  // namespace zcpack::converter
