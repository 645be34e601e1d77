// Attention kernels: the scalar reference and the dispatch.
#include "attention_kernels.h"

#include <cmath>
#include <limits>

#include "zcpack/format/half.h"

namespace zcpack::runtime::attention {
namespace {

void KeyScoresScalar(const uint16_t* keys, size_t n, size_t dim, const float* q, float scale,
                     float* scores) {
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* k = keys + j * dim;
    double sum = 0.0;
    for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
    scores[j] = static_cast<float>(sum) * scale;
  }
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
