// Attention kernels: the scalar reference and the dispatch.
#include "attention_kernels.h"

#include <cmath>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "zcpack/format/half.h"

namespace zcpack::runtime::attention {
namespace {

// ScoreSum::kLanes8 and kLanes16 (attention_kernels.h).
template <size_t kLanes>
float LaneScoreSum(const uint16_t* k, const float* q, size_t dim) {
  constexpr size_t kStep = 4 * kLanes;
  const size_t full = dim - dim % kStep;
  float acc[4][kLanes] = {};
  for (size_t i = 0; i < full; i += kStep) {
    for (size_t a = 0; a < 4; ++a) {
      for (size_t l = 0; l < kLanes; ++l) {
        const size_t e = i + a * kLanes + l;
        acc[a][l] = std::fma(format::HalfToFloat(k[e]), q[e], acc[a][l]);
      }
    }
  }
  float v[kLanes];
  for (size_t l = 0; l < kLanes; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  float lanes;
  if constexpr (kLanes == 16) {  // _mm512_reduce_add_ps: halves, quarters, then pairs
    float t3[8], t6[4];
    for (size_t i = 0; i < 8; ++i) t3[i] = v[i + 8] + v[i];
    for (size_t i = 0; i < 4; ++i) t6[i] = t3[i + 4] + t3[i];
    lanes = (t6[0] + t6[2]) + (t6[1] + t6[3]);
  } else {  // ggml's AVX reduction: halves, then two horizontal adds
    float t0[4];
    for (size_t i = 0; i < 4; ++i) t0[i] = v[i] + v[i + 4];
    lanes = (t0[0] + t0[1]) + (t0[2] + t0[3]);
  }
  double sum = lanes;
  for (size_t i = full; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
  return static_cast<float>(sum);
}

void KeyScoresScalar(const uint16_t* keys, size_t n, size_t dim, const float* q, float scale,
                     float* scores) {
  const ScoreSum order = ScoreSumForThisCpu();
  for (size_t j = 0; j < n; ++j) scores[j] = KeyScoreSum(order, keys + j * dim, q, dim) * scale;
}

float RoundToHalf(float x) { return format::HalfToFloat(format::FloatToHalf(x)); }

void OnlineValuesScalar(const uint16_t* values, size_t n, size_t dim, const float* ms,
                        const float* vs, float* out) {
  for (size_t i = 0; i < dim; ++i) out[i] = 0.0f;
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* v = values + j * dim;
    if (ms[j] != 1.0f) {
      for (size_t i = 0; i < dim; ++i) out[i] = RoundToHalf(out[i] * ms[j]);
    }
    for (size_t i = 0; i < dim; ++i) out[i] = RoundToHalf(std::fma(format::HalfToFloat(v[i]), vs[j], out[i]));
  }
}

void ToHalfScalar(const float* src, size_t n, uint16_t* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = format::FloatToHalf(src[i]);
}

void ToFloatScalar(const uint16_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = format::HalfToFloat(src[i]);
}

}  // namespace

const AttentionKernels& ScalarAttentionKernels() {
  static constexpr AttentionKernels kKernels = {format::SimdLevel::kScalar, KeyScoresScalar,
                                                OnlineValuesScalar, ToHalfScalar, ToFloatScalar};
  return kKernels;
}

float KeyScoreSum(ScoreSum order, const uint16_t* key, const float* q, size_t dim) {
  switch (order) {
    case ScoreSum::kLanes16: return LaneScoreSum<16>(key, q, dim);
    case ScoreSum::kLanes8: return LaneScoreSum<8>(key, q, dim);
    case ScoreSum::kExact: break;
  }
  double sum = 0.0;
  for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(key[i]) * q[i]);
  return static_cast<float>(sum);
}

ScoreSum ScoreSumForThisCpu() {
  static const ScoreSum order = [] {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool fp16 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (edx & (1u << 23)) != 0;
    const format::SimdLevel level = format::DetectSimdLevel();
    if (level == format::SimdLevel::kAvx512) return fp16 ? ScoreSum::kExact : ScoreSum::kLanes16;
    if (level == format::SimdLevel::kAvx2) return ScoreSum::kLanes8;
#endif
    return ScoreSum::kExact;
  }();
  return order;
}

float OnlineSoftmax(const float* scores, size_t n, float* ms, float* vs) {
  float max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  for (size_t j = 0; j < n; ++j) {
    const float s = scores[j];
    if (s > max) {
      ms[j] = std::exp(max - s);
      vs[j] = 1.0f;
      max = s;
    } else {
      ms[j] = 1.0f;
      vs[j] = std::exp(s - max);
    }
    sum = std::fma(sum, ms[j], vs[j]);
  }
  return sum;
}

const AttentionKernels& AttentionKernelsFor(format::SimdLevel level) {
  level = format::SupportedSimdLevel(level);
  if (level == format::SimdLevel::kAvx512 && Avx512AttentionKernels() != nullptr) {
    return *Avx512AttentionKernels();
  }
  if (level >= format::SimdLevel::kAvx2 && Avx2AttentionKernels() != nullptr) {
    return *Avx2AttentionKernels();
  }
  return ScalarAttentionKernels();
}

}  // namespace zcpack::runtime::attention
