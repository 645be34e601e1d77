// The scalar quantization kernels (one lane per vector), and the scalar steps
// that every kernel shares. The scalar kernels define the output; the SIMD
// kernels must match them bit for bit.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "quantize_kernels.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"

// Every float operation must round to binary32 as it goes (no x87 excess
// precision), or the scalar kernels would disagree with the SIMD ones.
static_assert(FLT_EVAL_METHOD == 0, "build with SSE floating point (-mfpmath=sse on 32-bit x86)");

namespace zcpack::converter::quantize_internal {
namespace {

// One float lane with the operations quantize_lanes.h needs, each written to
// give exactly what the x86 vector instruction gives.
struct ScalarVec {
  static constexpr int kLanes = 1;
  using F = float;
  using M = bool;

  static F Load(const float* p) { return *p; }
  static void Store(float* p, F v) { *p = v; }
  static F Set(float x) { return x; }
  static F Add(F a, F b) { return a + b; }
  static F Sub(F a, F b) { return a - b; }
  static F Mul(F a, F b) { return a * b; }
  static F Div(F a, F b) { return a / b; }
  static F Sqrt(F a) { return std::sqrt(a); }
  static F Fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F Fnma(F a, F b, F c) { return std::fma(-a, b, c); }
  static F Min(F a, F b) { return a < b ? a : b; }
  static F Max(F a, F b) { return a > b ? a : b; }
  static F Abs(F a) { return std::fabs(a); }
  static F Trunc(F a) { return std::trunc(a); }
  static F RoundEven(F a) { return std::nearbyint(a); }
  static F RoundToHalf(F a) { return format::HalfToFloat(format::FloatToHalf(a)); }
  static F NanToInf(F a) { return std::isnan(a) ? __builtin_inff() : a; }
  static M Lt(F a, F b) { return a < b; }
  static M Le(F a, F b) { return a <= b; }
  static M Gt(F a, F b) { return a > b; }
  static M Eq(F a, F b) { return a == b; }
  static M And(M a, M b) { return a && b; }
  static F Select(M m, F a, F b) { return m ? a : b; }
};

#include "quantize_lanes.h"

// The q4_0 code of x for inverse scale id, as the lane search computes it.
int Q4_0Code(float x, float id) {
  using V = ScalarVec;
  const float t = V::Add(V::Mul(x, id), 8.5f);
  return static_cast<int>(V::Min(V::Max(V::Trunc(t), 0.0f), 15.0f));
}

int Q4_KCode(float x, float sub_min, float inv_scale) {
  using V = ScalarVec;
  const float t = V::RoundEven(V::Mul(V::Add(x, sub_min), inv_scale));
  return static_cast<int>(V::Min(V::Max(t, 0.0f), 15.0f));
}

// The q8_0 code of x for inverse scale id: ggml's roundf(x * id), rounding
// halfway cases away from zero. ggml leaves non-finite products undefined
// (they occur only when 1 / d overflows, for blocks whose binary16 scale is
// 0, or for non-finite inputs); here NaN gives 0 and the product saturates at
// +-127, which no finite product of ggml's reference exceeds.
int Q8_0Code(float x, float id) {
  using V = ScalarVec;
  const float t = V::Mul(x, id);
  if (std::isnan(t)) return 0;
  return static_cast<int>(std::round(V::Min(V::Max(t, -127.0f), 127.0f)));
}

struct ScalarIsa {
  using Vec = ScalarVec;
  // With one lane, the transposed layout is the natural one.
  static void TransposeBlocks(const float* in, float* xt) {
    for (int e = 0; e < kLaneRows; ++e) xt[e] = in[e];
  }
  static void PackQ4_0(const float* x, float iscale, float scale, uint8_t* block) {
    format::EncodeFixed16(block, format::FloatToHalf(scale));
    for (int j = 0; j < 16; ++j) {
      block[2 + j] =
          static_cast<uint8_t>(Q4_0Code(x[j], iscale) | (Q4_0Code(x[j + 16], iscale) << 4));
    }
  }
  static void PackQ8_0(const float* x, float iscale, float scale, uint8_t* block) {
    format::EncodeFixed16(block, format::FloatToHalf(scale));
    for (int j = 0; j < kLaneRows; ++j) {
      block[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(Q8_0Code(x[j], iscale)));
    }
  }
  static void PackQ4_KCodes(const float* x, const float sub_min[8], const float inv_scale[8],
                            uint8_t* qs) {
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = Q4_KCode(x[64 * c + l], sub_min[2 * c], inv_scale[2 * c]);
        const int hi = Q4_KCode(x[64 * c + 32 + l], sub_min[2 * c + 1], inv_scale[2 * c + 1]);
        qs[32 * c + l] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
  }
};

// round_even(clamp(v, 0, 63)): adding and subtracting 2^23 rounds a value in
// [0, 63] to the nearest integer, ties to even (default rounding mode), without
// a call to nearbyint(). NaN gives 0.
int RoundSixBits(float v) {
  const float clamped = v > 0.0f ? (v < 63.0f ? v : 63.0f) : 0.0f;
  constexpr float kMagic = 8388608.0f;  // 2^23
  return static_cast<int>((clamped + kMagic) - kMagic);
}

}  // namespace

void QuantizeQ4_0Scalar(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_0Batches<ScalarIsa>(src, n_blocks, dst);
}

void QuantizeQ8_0Scalar(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ8_0Batches<ScalarIsa>(src, n_blocks, dst);
}

void Q4_KFinishScales(const float scales[8], const float mins[8], uint8_t* block, float sub_min[8],
                      float inv_scale[8]) {
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // A factor that would round to zero becomes the smallest binary16 value
  // instead, so tiny sub-blocks keep coarse 6-bit scales rather than none.
  uint16_t d_bits = format::FloatToHalf(max_scale / 63.0f);
  uint16_t dmin_bits = format::FloatToHalf(max_min / 63.0f);
  if (d_bits == 0 && max_scale > 0.0f) d_bits = 1;
  if (dmin_bits == 0 && max_min > 0.0f) dmin_bits = 1;
  const float d = format::HalfToFloat(d_bits);
  const float dmin = format::HalfToFloat(dmin_bits);
  // The 6-bit multipliers are fitted to the rounded binary16 factors, which
  // are what the decoder multiplies by.
  const float inv_d = d > 0.0f ? 1.0f / d : 0.0f;
  const float inv_dmin = dmin > 0.0f ? 1.0f / dmin : 0.0f;
  uint8_t ls[8];
  uint8_t lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(RoundSixBits(scales[j] * inv_d));
    lm[j] = static_cast<uint8_t>(RoundSixBits(mins[j] * inv_dmin));
  }
  format::EncodeFixed16(block, d_bits);
  format::EncodeFixed16(block + 2, dmin_bits);
  uint8_t* packed = block + 4;
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    const float sub_scale = d * static_cast<float>(ls[j]);
    sub_min[j] = dmin * static_cast<float>(lm[j]);
    inv_scale[j] = sub_scale != 0.0f ? 1.0f / sub_scale : 0.0f;
  }
}

void QuantizeQ4_KScalar(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_KBatches<ScalarIsa>(src, n_blocks, dst);
}

namespace {
void FlushErrorParts(ErrorLanes* lanes) {
  for (int l = 0; l < kErrorLanes; ++l) {
    lanes->source[l] = lanes->source[l] + static_cast<double>(lanes->source_part[l]);
    lanes->error[l] = lanes->error[l] + static_cast<double>(lanes->error_part[l]);
    lanes->source_part[l] = 0.0f;
    lanes->error_part[l] = 0.0f;
  }
}
}  // namespace

void MeasureErrorTail(const float* source, const float* decoded, size_t begin, size_t n,
                      ErrorLanes* lanes) {
  for (size_t i = begin; i < n; ++i) {
    const int lane = static_cast<int>(i % kErrorLanes);
    const float x = source[i];
    const float diff = x - decoded[i];
    lanes->source_part[lane] = std::fma(x, x, lanes->source_part[lane]);
    lanes->error_part[lane] = std::fma(diff, diff, lanes->error_part[lane]);
    const float a = std::fabs(diff);
    lanes->max_abs_error = a > lanes->max_abs_error ? a : lanes->max_abs_error;
    if (i % kErrorGroup == kErrorGroup - 1) FlushErrorParts(lanes);
  }
}

ErrorSums FinishErrorLanes(ErrorLanes& lanes) {
  FlushErrorParts(&lanes);
  ErrorSums sums;
  for (int l = 0; l < kErrorLanes; ++l) {
    sums.sum_sq_source += lanes.source[l];
    sums.sum_sq_error += lanes.error[l];
  }
  sums.max_abs_error = lanes.max_abs_error;
  return sums;
}

ErrorSums MeasureErrorScalar(const float* source, const float* decoded, size_t n) {
  ErrorLanes lanes;
  MeasureErrorTail(source, decoded, 0, n, &lanes);
  return FinishErrorLanes(lanes);
}

}  // namespace zcpack::converter::quantize_internal
