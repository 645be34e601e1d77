// Attention kernels for AVX2 (with FMA and F16C; 8 floats per vector) and
// AVX-512 (16 per vector). Every function carries its own target attribute
// and runs only after the CPU check (attention_kernels.h).
#include "attention_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <algorithm>
#include <cmath>

#include "zcpack/format/half.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#define ZCPACK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ZCPACK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

namespace zcpack::runtime::attention {
namespace {

// Values accumulate in registers, up to this many vectors of a row at once.
constexpr size_t kValueVectors = 8;

// ------------------------------------------------------------------ AVX2 ---

ZCPACK_AVX2 inline __m256 Load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// ScoreSum::kLanes8 in registers (attention_kernels.h).
ZCPACK_AVX2 float Lanes8ScoreSum(const uint16_t* k, const float* q, size_t dim) {
  const size_t full = dim - dim % 32;
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                 _mm256_setzero_ps()};
  for (size_t i = 0; i < full; i += 32) {
    for (size_t x = 0; x < 4; ++x) {
      a[x] = _mm256_fmadd_ps(Load8(k + i + 8 * x), _mm256_loadu_ps(q + i + 8 * x), a[x]);
    }
  }
  const __m256 v = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
  const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t1 = _mm_hadd_ps(t0, t0);
  double sum = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
  for (size_t i = full; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
  return static_cast<float>(sum);
}

ZCPACK_AVX2 void KeyScoresAvx2(const uint16_t* keys, size_t n, size_t dim, const float* q,
                               float scale, float* scores) {
  const ScoreSum order = ScoreSumForThisCpu();
  if (order != ScoreSum::kExact) {
    for (size_t j = 0; j < n; ++j) {
      const uint16_t* k = keys + j * dim;
      const float sum =
          order == ScoreSum::kLanes8 ? Lanes8ScoreSum(k, q, dim) : KeyScoreSum(order, k, q, dim);
      scores[j] = sum * scale;
    }
    return;
  }
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* k = keys + j * dim;
    __m256d acc0 = _mm256_setzero_pd();
    __m256d acc1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      const __m256 p = _mm256_mul_ps(Load8(k + i), _mm256_loadu_ps(q + i));  // exact
      acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
      acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    }
    const __m256d acc = _mm256_add_pd(acc0, acc1);
    const __m128d two = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(two, _mm_unpackhi_pd(two, two)));
    for (; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
    scores[j] = static_cast<float>(sum) * scale;
  }
}

ZCPACK_AVX2 inline __m256 RoundToHalf8(__m256 x) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

ZCPACK_AVX2 void OnlineValuesAvx2(const uint16_t* values, size_t n, size_t dim, const float* ms,
                                  const float* vs, float* out) {
  size_t i0 = 0;
  for (; i0 + 8 <= dim; i0 += 8 * kValueVectors) {
    const size_t vectors = std::min(kValueVectors, (dim - i0) / 8);
    __m256 acc[kValueVectors];
    for (size_t v = 0; v < kValueVectors; ++v) acc[v] = _mm256_setzero_ps();
    for (size_t j = 0; j < n; ++j) {
      if (ms[j] != 1.0f) {
        const __m256 m = _mm256_set1_ps(ms[j]);
        for (size_t v = 0; v < vectors; ++v) acc[v] = RoundToHalf8(_mm256_mul_ps(acc[v], m));
      }
      const __m256 w = _mm256_set1_ps(vs[j]);
      const uint16_t* row = values + j * dim + i0;
      for (size_t v = 0; v < vectors; ++v) {
        acc[v] = RoundToHalf8(_mm256_fmadd_ps(Load8(row + 8 * v), w, acc[v]));
      }
    }
    for (size_t v = 0; v < vectors; ++v) _mm256_storeu_ps(out + i0 + 8 * v, acc[v]);
    if (vectors < kValueVectors) {
      i0 += 8 * vectors;
      break;
    }
  }
  for (size_t i = i0; i < dim; ++i) {
    float acc = 0.0f;
    for (size_t j = 0; j < n; ++j) {
      if (ms[j] != 1.0f) acc = format::HalfToFloat(format::FloatToHalf(acc * ms[j]));
      acc = format::HalfToFloat(
          format::FloatToHalf(std::fma(format::HalfToFloat(values[j * dim + i]), vs[j], acc)));
    }
    out[i] = acc;
  }
}

ZCPACK_AVX2 void ToHalfAvx2(const float* src, size_t n, uint16_t* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = format::FloatToHalf(src[i]);
}

ZCPACK_AVX2 void ToFloatAvx2(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, Load8(src + i));
  for (; i < n; ++i) dst[i] = format::HalfToFloat(src[i]);
}

// --------------------------------------------------------------- AVX-512 ---

ZCPACK_AVX512 inline __m512 Load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

ZCPACK_AVX512 inline __m512 Load16Masked(const uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

// Adds the 16 float products p (exact: binary16 times binary16) in double.
ZCPACK_AVX512 inline void AddProducts(__m512 p, __m512d& acc0, __m512d& acc1) {
  acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
  acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)));
}

// ScoreSum::kLanes16 in registers (attention_kernels.h), the lanes added in
// _mm512_reduce_add_ps's order spelled out (clang's intrinsic may differ).
ZCPACK_AVX512 float Lanes16ScoreSum(const uint16_t* k, const float* q, size_t dim) {
  const size_t full = dim - dim % 64;
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                 _mm512_setzero_ps()};
  for (size_t i = 0; i < full; i += 64) {
    for (size_t x = 0; x < 4; ++x) {
      a[x] = _mm512_fmadd_ps(Load16(k + i + 16 * x), _mm512_loadu_ps(q + i + 16 * x), a[x]);
    }
  }
  const __m512 v = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
  const __m256 t3 = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
  const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));  // t6[0] + t6[2], t6[1] + t6[3]
  double sum = _mm_cvtss_f32(_mm_add_ss(t8, _mm_movehdup_ps(t8)));
  for (size_t i = full; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
  return static_cast<float>(sum);
}

ZCPACK_AVX512 void KeyScoresAvx512(const uint16_t* keys, size_t n, size_t dim, const float* q,
                                   float scale, float* scores) {
  const ScoreSum order = ScoreSumForThisCpu();
  if (order != ScoreSum::kExact) {
    for (size_t j = 0; j < n; ++j) {
      const uint16_t* k = keys + j * dim;
      const float sum =
          order == ScoreSum::kLanes16 ? Lanes16ScoreSum(k, q, dim) : KeyScoreSum(order, k, q, dim);
      scores[j] = sum * scale;
    }
    return;
  }
  const size_t full = dim / 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim % 16)) - 1);
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* k = keys + j * dim;
    __m512d acc0 = _mm512_setzero_pd();
    __m512d acc1 = _mm512_setzero_pd();
    for (size_t v = 0; v < full; ++v) {
      AddProducts(_mm512_mul_ps(Load16(k + 16 * v), _mm512_loadu_ps(q + 16 * v)), acc0, acc1);
    }
    if (tail != 0) {
      AddProducts(_mm512_mul_ps(Load16Masked(k + 16 * full, tail),
                                _mm512_maskz_loadu_ps(tail, q + 16 * full)),
                  acc0, acc1);
    }
    scores[j] = static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1))) * scale;
  }
}

ZCPACK_AVX512 inline __m512 RoundToHalf16(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

ZCPACK_AVX512 void OnlineValuesAvx512(const uint16_t* values, size_t n, size_t dim,
                                      const float* ms, const float* vs, float* out) {
  for (size_t i0 = 0; i0 < dim; i0 += 16 * kValueVectors) {
    const size_t width = std::min(16 * kValueVectors, dim - i0);
    const size_t vectors = (width + 15) / 16;
    __mmask16 last = static_cast<__mmask16>(0xffff);
    if (width % 16 != 0) last = static_cast<__mmask16>((1u << (width % 16)) - 1);
    __m512 acc[kValueVectors];
    for (size_t v = 0; v < kValueVectors; ++v) acc[v] = _mm512_setzero_ps();
    for (size_t j = 0; j < n; ++j) {
      if (ms[j] != 1.0f) {
        const __m512 m = _mm512_set1_ps(ms[j]);
        for (size_t v = 0; v < vectors; ++v) acc[v] = RoundToHalf16(_mm512_mul_ps(acc[v], m));
      }
      const __m512 w = _mm512_set1_ps(vs[j]);
      const uint16_t* row = values + j * dim + i0;
      for (size_t v = 0; v + 1 < vectors; ++v) {
        acc[v] = RoundToHalf16(_mm512_fmadd_ps(Load16(row + 16 * v), w, acc[v]));
      }
      acc[vectors - 1] = RoundToHalf16(
          _mm512_fmadd_ps(Load16Masked(row + 16 * (vectors - 1), last), w, acc[vectors - 1]));
    }
    for (size_t v = 0; v + 1 < vectors; ++v) _mm512_storeu_ps(out + i0 + 16 * v, acc[v]);
    _mm512_mask_storeu_ps(out + i0 + 16 * (vectors - 1), last, acc[vectors - 1]);
  }
}

ZCPACK_AVX512 void ToHalfAvx512(const float* src, size_t n, uint16_t* dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = format::FloatToHalf(src[i]);
}

ZCPACK_AVX512 void ToFloatAvx512(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, Load16(src + i));
  for (; i < n; ++i) dst[i] = format::HalfToFloat(src[i]);
}

constexpr AttentionKernels kAvx2 = {format::SimdLevel::kAvx2, KeyScoresAvx2, OnlineValuesAvx2,
                                    ToHalfAvx2, ToFloatAvx2};
constexpr AttentionKernels kAvx512 = {format::SimdLevel::kAvx512, KeyScoresAvx512,
                                      OnlineValuesAvx512, ToHalfAvx512, ToFloatAvx512};

}  // namespace

const AttentionKernels* Avx2AttentionKernels() { return &kAvx2; }
const AttentionKernels* Avx512AttentionKernels() { return &kAvx512; }

ScoreSumFn RegisterScoreSum(ScoreSum order) {
  const format::SimdLevel level = format::DetectSimdLevel();
  if (order == ScoreSum::kLanes8 && level >= format::SimdLevel::kAvx2) return Lanes8ScoreSum;
  if (order == ScoreSum::kLanes16 && level == format::SimdLevel::kAvx512) return Lanes16ScoreSum;
  return nullptr;
}

}  // namespace zcpack::runtime::attention

#else  // not x86

namespace zcpack::runtime::attention {
const AttentionKernels* Avx2AttentionKernels() { return nullptr; }
const AttentionKernels* Avx512AttentionKernels() { return nullptr; }
ScoreSumFn RegisterScoreSum(ScoreSum) { return nullptr; }
}  // namespace zcpack::runtime::attention

#endif
