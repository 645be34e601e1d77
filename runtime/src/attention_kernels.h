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
//   s_j = scale * float(sum_i k_ji * q_i)   (products exact in float,
//                                            summed in ScoreSumForThisCpu()'s
//                                            order)
//   running max M, sum S = 0, accumulator a = 0 (binary16 values):
//   if s_j > M:  ms = exp(M - s_j), vs = 1, M = s_j, a = h(a * ms)
//   else:        ms = 1, vs = exp(s_j - M)
//   a = h(fma(v_j, vs, a));  S = fma(S, ms, vs)
//   out = a * (1 / S)   (0 when S is 0)
//
// where h() rounds to binary16 (nearest-even) and exp is the C library's
// expf. The key score's sum follows ggml_vec_dot_f16 as llama.cpp compiles
// it for the CPU it runs on (-march=native, its default build): its float
// lanes differ between CPUs, and one ulp of a score can flip a near-tied
// greedy token (ScoreSum below). Every level computes the same order, so key
// scores are the same at every level (the kExact sum, in double, of at most
// a few hundred float products is exact unless their magnitudes span more
// than about 2^30; past that the levels may differ by a rounding), and
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

// How ggml_vec_dot_f16 adds the dim products of a key score in llama.cpp
// built for this CPU. kLanes16 (AVX-512 F without AVX512-FP16) and kLanes8
// (AVX2 with FMA and F16C): each full step of 4 x L elements (L = 16 or 8)
// goes into four arrays of L float lanes by fma, element 4L * s + L * a + l
// into lane l of array a; then (a0 + a2) + (a1 + a3) lane by lane, then the
// L lanes in the order of _mm512_reduce_add_ps (GCC) or of ggml's AVX
// hadd reduction; the elements past the last full step are then added one
// by one in double. kExact: every product added in double, which is
// ggml's order where no full step exists (dims below 128 on CPUs with
// AVX512-FP16, whose wider steps use binary16 arithmetic that this does
// not reproduce; any other CPU).
enum class ScoreSum { kExact, kLanes8, kLanes16 };
// The order on this CPU (cpuid), decided once.
ScoreSum ScoreSumForThisCpu();
// One key's score sum in `order` (float(sum), before the scale): the scalar
// reference of every level.
float KeyScoreSum(ScoreSum order, const uint16_t* key, const float* q, size_t dim);
// The in-register version of a lane order (what key_scores() runs when it
// is this CPU's), for the tests; nullptr where this build or CPU has none.
using ScoreSumFn = float (*)(const uint16_t* key, const float* q, size_t dim);
ScoreSumFn RegisterScoreSum(ScoreSum order);

struct AttentionKernels {
  format::SimdLevel level;
  // scores[j] = scale * KeyScoreSum(ScoreSumForThisCpu(), keys + j * dim, q,
  // dim), j < n.
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
