// AVX2 (+FMA, F16C) quantization kernels: one block per lane, 8 lanes per
// vector, two vectors side by side. Called only when format::DetectSimdLevel()
// reports kAvx2 or better.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "quantize_kernels.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"

// Everything defined below, including the shared lane templates, is compiled
// for AVX2; nothing defined above is (header inline functions and std
// templates keep the baseline target even when called from here). Only
// functions with internal linkage or declared in quantize_kernels.h are
// defined below, so no AVX2 code can end up in a function that other
// translation units share and might run on an older CPU.
#if defined(__clang__)
// clang ignores GCC target pragmas; its own form applies the same target.
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace zcpack::converter::quantize_internal {
namespace {

struct Avx2Vec {
  static constexpr int kLanes = 8;
  using F = __m256;
  using M = __m256;  // all-ones or all-zeros per lane

  static F Load(const float* p) { return _mm256_load_ps(p); }
  static void Store(float* p, F v) { _mm256_store_ps(p, v); }
  static F Set(float x) { return _mm256_set1_ps(x); }
  static F Add(F a, F b) { return _mm256_add_ps(a, b); }
  static F Sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F Div(F a, F b) { return _mm256_div_ps(a, b); }
  static F Sqrt(F a) { return _mm256_sqrt_ps(a); }
  static F Fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F Fnma(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F Min(F a, F b) { return _mm256_min_ps(a, b); }
  static F Max(F a, F b) { return _mm256_max_ps(a, b); }
  static F Abs(F a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
  static F Trunc(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F RoundEven(F a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F RoundToHalf(F a) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static F NanToInf(F a) {
    return _mm256_blendv_ps(a, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  static M Lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M Le(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static M Gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M Eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M And(M a, M b) { return _mm256_and_ps(a, b); }
  static F Select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
};

#include "quantize_lanes.h"

// The lane kernels run on pairs of vectors: 16 blocks per batch.
using BatchVec = LanePair<Avx2Vec>;
constexpr int kLanes = BatchVec::kLanes;

// Transposes 8 rows of 8 floats (row b at rows + b * stride) into out
// (column e at out + e * out_stride).
void Transpose8x8(const float* rows, size_t stride, float* out, size_t out_stride) {
  __m256 r[8];
  for (int b = 0; b < 8; ++b) r[b] = _mm256_loadu_ps(rows + b * stride);
  __m256 s[8];
  for (int g = 0; g < 2; ++g) {
    const __m256 t0 = _mm256_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    const __m256 t1 = _mm256_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m256 t3 = _mm256_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    // s[4g + c] holds column c (low half) and c + 4 (high half) of rows 4g..4g+3.
    s[4 * g + 0] = _mm256_shuffle_ps(t0, t2, 0x44);
    s[4 * g + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    s[4 * g + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
    s[4 * g + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_store_ps(out + c * out_stride, _mm256_permute2f128_ps(s[c], s[4 + c], 0x20));
    _mm256_store_ps(out + (c + 4) * out_stride, _mm256_permute2f128_ps(s[c], s[4 + c], 0x31));
  }
}

// Transposes kLanes blocks of 32 floats (contiguous at `in`) into
// xt[32][kLanes]: element e of block b at xt[e * kLanes + b].
void TransposeBlocks(const float* in, float* xt) {
  for (int g = 0; g < kLanes / 8; ++g) {
    for (int part = 0; part < 4; ++part) {
      Transpose8x8(in + g * 8 * kLaneRows + 8 * part, kLaneRows, xt + 8 * part * kLanes + 8 * g,
                   kLanes);
    }
  }
}

// 16 codes (int32, in lo0 then lo1) and 16 more for the high nibbles -> 16 bytes.
void StoreNibbles(__m256i lo0, __m256i lo1, __m256i hi0, __m256i hi1, uint8_t* dst) {
  const __m256i v0 = _mm256_or_si256(lo0, _mm256_slli_epi32(hi0, 4));
  const __m256i v1 = _mm256_or_si256(lo1, _mm256_slli_epi32(hi1, 4));
  // packs works within 128-bit halves; the permute restores element order.
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
  const __m128i bytes =
      _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
}

__m256i Q4_0Codes(const float* x, __m256 id) {
  using V = Avx2Vec;
  const __m256 t = V::Add(V::Mul(_mm256_loadu_ps(x), id), V::Set(8.5f));
  // cvtt truncates: the same codes as trunc-then-clamp, NaN included (-> 0).
  return _mm256_cvttps_epi32(V::Min(V::Max(t, V::Set(0.0f)), V::Set(15.0f)));
}

// 8 q8_0 codes (int32), as Q8_0Code() computes them: NaN products become 0,
// the rest are clamped to [-127, 127] and rounded half away from zero by
// trunc(c) + trunc(2 * (c - trunc(c))), every step of which is exact.
__m256i Q8_0Codes(const float* x, __m256 id) {
  using V = Avx2Vec;
  const __m256 t = V::Mul(_mm256_loadu_ps(x), id);
  const __m256 not_nan = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
  const __m256 c = V::Min(V::Max(not_nan, V::Set(-127.0f)), V::Set(127.0f));
  const __m256 whole = V::Trunc(c);
  const __m256 frac = V::Sub(c, whole);
  return _mm256_cvttps_epi32(V::Add(whole, V::Trunc(V::Add(frac, frac))));
}

// 32 codes (int32, in q[0] .. q[3]) in [-127, 127] -> 32 signed bytes.
void StoreBytes(const __m256i q[4], uint8_t* dst) {
  // packs works within 128-bit halves: after both, dword k holds codes 0..3
  // of q[k] for k < 4 and codes 4..7 of q[k - 4] for k >= 4; the permute
  // restores element order.
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                           _mm256_packs_epi32(q[2], q[3]));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(bytes, order));
}

__m256i Q4_KCodes(const float* x, __m256 sub_min, __m256 inv_scale) {
  using V = Avx2Vec;
  const __m256 t = V::RoundEven(V::Mul(V::Add(_mm256_loadu_ps(x), sub_min), inv_scale));
  return _mm256_cvttps_epi32(V::Min(V::Max(t, V::Set(0.0f)), V::Set(15.0f)));
}

struct Avx2Isa {
  using Vec = BatchVec;
  static void TransposeBlocks(const float* in, float* xt) {
    quantize_internal::TransposeBlocks(in, xt);
  }
  static void PackQ4_0(const float* x, float iscale, float scale, uint8_t* block) {
    // The scale is a binary16 value already: this conversion is exact.
    format::EncodeFixed16(block, _cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m256 id = _mm256_set1_ps(iscale);
    StoreNibbles(Q4_0Codes(x, id), Q4_0Codes(x + 8, id), Q4_0Codes(x + 16, id),
                 Q4_0Codes(x + 24, id), block + 2);
  }
  static void PackQ8_0(const float* x, float iscale, float scale, uint8_t* block) {
    // The scale is a binary16 value already: this conversion is exact.
    format::EncodeFixed16(block, _cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m256 id = _mm256_set1_ps(iscale);
    const __m256i q[4] = {Q8_0Codes(x, id), Q8_0Codes(x + 8, id), Q8_0Codes(x + 16, id),
                          Q8_0Codes(x + 24, id)};
    StoreBytes(q, block + 2);
  }
  static void PackQ4_KCodes(const float* x, const float sub_min[8], const float inv_scale[8],
                            uint8_t* qs) {
    for (int c = 0; c < 4; ++c) {
      const __m256 min_lo = _mm256_set1_ps(sub_min[2 * c]);
      const __m256 inv_lo = _mm256_set1_ps(inv_scale[2 * c]);
      const __m256 min_hi = _mm256_set1_ps(sub_min[2 * c + 1]);
      const __m256 inv_hi = _mm256_set1_ps(inv_scale[2 * c + 1]);
      for (int h = 0; h < 2; ++h) {
        const float* xl = x + 64 * c + 16 * h;
        StoreNibbles(Q4_KCodes(xl, min_lo, inv_lo), Q4_KCodes(xl + 8, min_lo, inv_lo),
                     Q4_KCodes(xl + 32, min_hi, inv_hi), Q4_KCodes(xl + 40, min_hi, inv_hi),
                     qs + 32 * c + 16 * h);
      }
    }
  }
};

}  // namespace

void QuantizeQ4_0Avx2(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_0Batches<Avx2Isa>(src, n_blocks, dst);
}

void QuantizeQ8_0Avx2(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ8_0Batches<Avx2Isa>(src, n_blocks, dst);
}

void QuantizeQ4_KAvx2(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_KBatches<Avx2Isa>(src, n_blocks, dst);
}

ErrorSums MeasureErrorAvx2(const float* source, const float* decoded, size_t n) {
  // Lanes 0-7 of the ErrorLanes order in the [0] vectors, 8-15 in the [1]
  // vectors; double sums in quarters of 4 lanes.
  __m256d src_acc[4];
  __m256d err_acc[4];
  for (int k = 0; k < 4; ++k) {
    src_acc[k] = _mm256_setzero_pd();
    err_acc[k] = _mm256_setzero_pd();
  }
  __m256 src_part[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 err_part[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 max_err = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + kErrorLanes <= n; i += kErrorLanes) {
    for (int h = 0; h < 2; ++h) {
      const __m256 x = _mm256_loadu_ps(source + i + 8 * h);
      const __m256 diff = _mm256_sub_ps(x, _mm256_loadu_ps(decoded + i + 8 * h));
      max_err = _mm256_max_ps(_mm256_and_ps(diff, abs_mask), max_err);
      src_part[h] = _mm256_fmadd_ps(x, x, src_part[h]);
      err_part[h] = _mm256_fmadd_ps(diff, diff, err_part[h]);
    }
    if ((i + kErrorLanes) % kErrorGroup == 0) {
      for (int h = 0; h < 2; ++h) {
        src_acc[2 * h] =
            _mm256_add_pd(src_acc[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(src_part[h])));
        src_acc[2 * h + 1] = _mm256_add_pd(src_acc[2 * h + 1],
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(src_part[h], 1)));
        err_acc[2 * h] =
            _mm256_add_pd(err_acc[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(err_part[h])));
        err_acc[2 * h + 1] = _mm256_add_pd(err_acc[2 * h + 1],
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(err_part[h], 1)));
        src_part[h] = _mm256_setzero_ps();
        err_part[h] = _mm256_setzero_ps();
      }
    }
  }
  ErrorLanes lanes;
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_pd(lanes.source + 4 * k, src_acc[k]);
    _mm256_storeu_pd(lanes.error + 4 * k, err_acc[k]);
  }
  for (int h = 0; h < 2; ++h) {
    _mm256_storeu_ps(lanes.source_part + 8 * h, src_part[h]);
    _mm256_storeu_ps(lanes.error_part + 8 * h, err_part[h]);
  }
  alignas(32) float maxes[8];
  _mm256_store_ps(maxes, max_err);
  for (float m : maxes) lanes.max_abs_error = m > lanes.max_abs_error ? m : lanes.max_abs_error;
  MeasureErrorTail(source, decoded, i, n, &lanes);
  return FinishErrorLanes(lanes);
}

}  // namespace zcpack::converter::quantize_internal

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
