// The inner loops of attention over the session's key/value cache, which is
// stored in IEEE binary16 (as llama.cpp stores it by default): half the bytes
// of float, and reading the cache is what makes attention cost grow with the
// context. Internal to the runtime.
//
// One dispatch table per SimdLevel (scalar, AVX2 with F16C, AVX-512), chosen
// at run time. The arithmetic is llama.cpp's CPU flash attention, the path it
// takes by default for decoding and for batches of fewer than 64 queries, so
// that greedy output agrees with it where two logits nearly tie. For one
// query q (already rounded to binary16) against keys 0..n-1 in order:
//
//   s_j = scale * float(sum_i k_ji * q_i)   (products exact in float, the
//                                            sum in double)
//   running max M, sum S = 0, accumulator a = 0 (binary16 values):
//   if s_j > M:  ms = exp(M - s_j), vs = 1, M = s_j, a = h(a * ms)
//   else:        ms = 1, vs = exp(s_j - M)
//   a = h(fma(v_j, vs, a));  S = fma(S, ms, vs)
//   out = a * (1 / S)   (0 when S is 0)
//
// where h() rounds to binary16 (nearest-even) and exp is the C library's
// expf. Key scores are the same at every level (the double sum of at most a
// few hundred float products is exact unless their magnitudes span more than
// about 2^30; past that the levels may differ by a rounding), and
// online_values() is bit-identical at every level. Conversions are exact and
// equal at every level: ToHalf() rounds to nearest-even as
// format::FloatToHalf() does for every finite value and infinity (NaN stays
// NaN), ToFloat() widens exactly.
#ifndef ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_
#define ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "zcpack/format/q4_blocks.h"

namespace zcpack::runtime::attention {

struct AttentionKernels {
  format::SimdLevel level;
  // scores[j] = scale * float(double sum of keys[j * dim + i] * q[i]), j < n.
  void (*key_scores)(const uint16_t* keys, size_t n, size_t dim, const float* q, float scale,
                     float* scores);
  // The binary16 accumulator of the recurrence above after n values, widened
  // to float in out[0, dim): a = h(a * ms[j]) where ms[j] != 1, then
  // a = h(fma(values[j * dim + i], vs[j], a)), for j < n in order.
  void (*online_values)(const uint16_t* values, size_t n, size_t dim, const float* ms,
                        const float* vs, float* out);
  // dst[i] = src[i] rounded to binary16, i < n.
  void (*to_half)(const float* src, size_t n, uint16_t* dst);
  // dst[i] = src[i] widened to float, i < n.
  void (*to_float)(const uint16_t* src, size_t n, float* dst);
};

// OnlineSoftmax(): the scalar half of the recurrence above for scores[0, n):
// fills ms[j] and vs[j] and returns S.
float OnlineSoftmax(const float* scores, size_t n, float* ms, float* vs);

// The table for `level` after format::SupportedSimdLevel().
const AttentionKernels& AttentionKernelsFor(format::SimdLevel level);

const AttentionKernels& ScalarAttentionKernels();
// nullptr where the build has no code for the level (non-x86 hosts).
const AttentionKernels* Avx2AttentionKernels();
const AttentionKernels* Avx512AttentionKernels();

}  // namespace zcpack::runtime::attention

#endif  // ZCPACK_RUNTIME_SRC_ATTENTION_KERNELS_H_
