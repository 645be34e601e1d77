// The inner loops of attention over the session's key/value cache, which is
// stored in IEEE binary16 (as llama.cpp stores it by default): half the bytes
// of float, and reading the cache is what makes attention cost grow with the
// context. Internal to the runtime.
//
// One dispatch table per SimdLevel (scalar, AVX2 with F16C, AVX-512), chosen
// at run time. Conversions are exact and equal at every level: ToHalf()
// rounds to nearest-even as format::FloatToHalf() does for every finite value
// and infinity (NaN stays NaN), ToFloat() widens exactly. The dot products
// and sums accumulate in float in an order that depends on the level only,
// so results do not depend on the thread count; between levels they differ
// by float rounding.
#ifndef ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_
#define ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "zcpack/format/q4_blocks.h"

namespace zcpack::runtime::attention {

struct AttentionKernels {
  format::SimdLevel level;
  // scores[j] = scale * dot(keys + j * dim, q) for j < n.
  void (*key_scores)(const uint16_t* keys, size_t n, size_t dim, const float* q, float scale,
                     float* scores);
  // out[i] = sum over j < n of p[j] * values[j * dim + i], for i < dim (out
  // is overwritten).
  void (*weighted_values)(const uint16_t* values, size_t n, size_t dim, const float* p,
                          float* out);
  // dst[i] = src[i] rounded to binary16, i < n.
  void (*to_half)(const float* src, size_t n, uint16_t* dst);
  // dst[i] = src[i] widened to float, i < n.
  void (*to_float)(const uint16_t* src, size_t n, float* dst);
};

// The table for `level` after format::SupportedSimdLevel().
const AttentionKernels& AttentionKernelsFor(format::SimdLevel level);

const AttentionKernels& ScalarAttentionKernels();
// nullptr where the build has no code for the level (non-x86 hosts).
const AttentionKernels* Avx2AttentionKernels();
const AttentionKernels* Avx512AttentionKernels();

}  // namespace zcpack::runtime::attention

#endif  // ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_
