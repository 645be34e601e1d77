// SwiGLU: the scalar reference, AVX2 and AVX-512 versions (functions with
// their own target attribute, run only after the CPU check), and the dispatch.
#include "activation_kernels.h"

#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define ZCPACK_X86 1
#define ZCPACK_AVX2 __attribute__((target("avx2,fma")))
#define ZCPACK_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#endif

namespace zcpack::runtime::activation {
namespace {

// The constants of e(): the shift that rounds x / ln2 to an integer, 1 / ln2,
// ln2 in two parts, and the polynomial's coefficients.
constexpr float kShift = 0x1.8p23f;
constexpr float kInvLn2 = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
constexpr float kC0 = 0x1.ffffecp-1f;
constexpr float kC1 = 0x1.fffdb6p-2f;
constexpr float kC2 = 0x1.555e66p-3f;
constexpr float kC3 = 0x1.573e2ep-5f;
constexpr float kC4 = 0x1.0e4020p-7f;
// |n| beyond this: e() is 0 or infinity.
constexpr float kMaxExponent = 192.0f;

void SwiGluScalar(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float x = gate[i];
    gate[i] = x / (1.0f + ExpApprox(0.0f - x)) * up[i];
  }
}

#ifdef ZCPACK_X86

// e() of 8 floats. 2^n is built in the exponent field where |n| <= 126 (the
// product with p is then correctly rounded, as ldexp is); a vector with any
// lane beyond that goes through the scalar reference.
ZCPACK_AVX2 __m256 ExpApprox8(__m256 x) {
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(kInvLn2), _mm256_set1_ps(kShift));
  const __m256 n = _mm256_sub_ps(z, _mm256_set1_ps(kShift));
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 p = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(kC4), b, _mm256_set1_ps(kC3)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(kC2), b, _mm256_set1_ps(kC1))),
      u, _mm256_fmadd_ps(_mm256_set1_ps(kC0), b, _mm256_set1_ps(1.0f)));
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  // Not "<= 126" catches NaN too.
  const __m256 wide = _mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_NLE_UQ);
  if (_mm256_movemask_ps(wide) != 0) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, x);
    for (float& lane : lanes) lane = ExpApprox(lane);
    return _mm256_load_ps(lanes);
  }
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

ZCPACK_AVX2 void SwiGluAvx2(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256 e = ExpApprox8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    const __m256 silu = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  SwiGluScalar(gate + i, up + i, n - i);
}

ZCPACK_AVX512 __m512 ExpApprox16(__m512 x) {
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(kInvLn2), _mm512_set1_ps(kShift));
  const __m512 n = _mm512_sub_ps(z, _mm512_set1_ps(kShift));
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 p = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(kC4), b, _mm512_set1_ps(kC3)), u,
                      _mm512_fmadd_ps(_mm512_set1_ps(kC2), b, _mm512_set1_ps(kC1))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(kC0), b, _mm512_set1_ps(1.0f)));
  const __m512 result = _mm512_scalef_ps(p, n);
  const __mmask16 wide =
      _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(kMaxExponent), _CMP_GT_OQ);
  if (wide == 0) return result;
  const __mmask16 negative = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
  const __m512 limit = _mm512_mask_blend_ps(
      negative, _mm512_set1_ps(std::numeric_limits<float>::infinity()), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(wide, result, limit);
}

ZCPACK_AVX512 void SwiGluAvx512(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(gate + i);
    const __m512 e = ExpApprox16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __m512 silu = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_storeu_ps(gate + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
  SwiGluScalar(gate + i, up + i, n - i);
}

#endif  // ZCPACK_X86

}  // namespace

float ExpApprox(float x) {
  const float z = std::fma(x, kInvLn2, kShift);
  const float n = z - kShift;
  const float b = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  const float u = b * b;
  const float p = std::fma(std::fma(std::fma(kC4, b, kC3), u, std::fma(kC2, b, kC1)), u,
                           std::fma(kC0, b, 1.0f));
  if (std::fabs(n) > kMaxExponent) return n <= 0.0f ? 0.0f : std::numeric_limits<float>::infinity();
  if (std::isnan(n)) return n;
  return std::ldexp(p, static_cast<int>(n));
}

SwiGluFn ScalarSwiGlu() { return SwiGluScalar; }

SwiGluFn SwiGluFor(format::SimdLevel level) {
  level = format::SupportedSimdLevel(level);
#ifdef ZCPACK_X86
  if (level == format::SimdLevel::kAvx512) return SwiGluAvx512;
  if (level >= format::SimdLevel::kAvx2) return SwiGluAvx2;
#endif
  return SwiGluScalar;
}

}  // namespace zcpack::runtime::activation
