// Attention kernels: the scalar reference and the dispatch.
#include "attention_kernels.h"

#include "zcpack/format/half.h"

namespace zcpack::runtime::attention {
namespace {

void KeyScoresScalar(const uint16_t* keys, size_t n, size_t dim, const float* q, float scale,
                     float* scores) {
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* k = keys + j * dim;
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) acc += format::HalfToFloat(k[i]) * q[i];
    scores[j] = scale * acc;
  }
}

void WeightedValuesScalar(const uint16_t* values, size_t n, size_t dim, const float* p,
                          float* out) {
  for (size_t i = 0; i < dim; ++i) out[i] = 0.0f;
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* v = values + j * dim;
    for (size_t i = 0; i < dim; ++i) out[i] += p[j] * format::HalfToFloat(v[i]);
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
                                                WeightedValuesScalar, ToHalfScalar,
                                                ToFloatScalar};
  return kKernels;
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
