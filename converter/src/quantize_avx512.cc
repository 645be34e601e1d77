// AVX-512 quantization kernels: one block per lane, 16 lanes per vector, two
// vectors side by side. Called only when format::DetectSimdLevel() reports
// kAvx512.
#include <cstddef>
#include <cstdint>

// GCC 12 reports false -W(maybe-)uninitialized warnings inside its own AVX-512
// headers (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "quantize_kernels.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"

// Everything defined below, including the shared lane templates, is compiled
// for AVX-512; nothing defined above is (header inline functions and std
// templates keep the baseline target even when called from here). Only
// functions with internal linkage or declared in quantize_kernels.h are
// defined below, so no AVX-512 code can end up in a function that other
// translation units share and might run on an older CPU.
#if defined(__clang__)
// clang ignores GCC target pragmas; its own form applies the same target.
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
#endif

namespace zcpack::converter::quantize_internal {
namespace {

struct Avx512Vec {
  static constexpr int kLanes = 16;
  using F = __m512;
  using M = __mmask16;

  static F Load(const float* p) { return _mm512_load_ps(p); }
  static void Store(float* p, F v) { _mm512_store_ps(p, v); }
  static F Set(float x) { return _mm512_set1_ps(x); }
  static F Add(F a, F b) { return _mm512_add_ps(a, b); }
  static F Sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F Div(F a, F b) { return _mm512_div_ps(a, b); }
  static F Sqrt(F a) { return _mm512_sqrt_ps(a); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F Fnma(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F Min(F a, F b) { return _mm512_min_ps(a, b); }
  static F Max(F a, F b) { return _mm512_max_ps(a, b); }
  static F Abs(F a) { return _mm512_abs_ps(a); }
  static F Trunc(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F RoundEven(F a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F RoundToHalf(F a) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static F NanToInf(F a) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a,
                                _mm512_set1_ps(__builtin_inff()));
  }
  static M Lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M Le(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static M Gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M Eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M And(M a, M b) { return static_cast<M>(a & b); }
  static F Select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
};

#include "quantize_lanes.h"

// The lane kernels run on pairs of vectors: 32 blocks per batch.
using BatchVec = LanePair<Avx512Vec>;
constexpr int kLanes = BatchVec::kLanes;

// Transposes 16 rows of 16 floats (row b at rows + b * stride) into out
// (column e at out + e * out_stride).
void Transpose16x16(const float* rows, size_t stride, float* out, size_t out_stride) {
  __m512 r[16];
  for (int b = 0; b < 16; ++b) r[b] = _mm512_loadu_ps(rows + b * stride);
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + c], c in 0..3: rows 4g..4g+3, column c of each 128-bit quarter.
  __m512 u[16];
  for (int g = 0; g < 4; ++g) {
    const __m512d a0 = _mm512_castps_pd(t[4 * g]);
    const __m512d a1 = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d b0 = _mm512_castps_pd(t[4 * g + 2]);
    const __m512d b1 = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
  }
  for (int c = 0; c < 4; ++c) {
    // Quarters of u[4g + c] hold columns c, c + 4, c + 8, c + 12 of rows 4g..4g+3.
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);       // cols c, c+8
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);       // cols c+4, c+12
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);  // rows 8..15
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    _mm512_store_ps(out + (c + 0) * out_stride, _mm512_shuffle_f32x4(v0, v2, 0x88));
    _mm512_store_ps(out + (c + 8) * out_stride, _mm512_shuffle_f32x4(v0, v2, 0xdd));
    _mm512_store_ps(out + (c + 4) * out_stride, _mm512_shuffle_f32x4(v1, v3, 0x88));
    _mm512_store_ps(out + (c + 12) * out_stride, _mm512_shuffle_f32x4(v1, v3, 0xdd));
  }
}

// Transposes kLanes blocks of 32 floats (contiguous at `in`) into
// xt[32][kLanes]: element e of block b at xt[e * kLanes + b].
void TransposeBlocks(const float* in, float* xt) {
  for (int g = 0; g < kLanes / 16; ++g) {
    const float* blocks = in + g * 16 * kLaneRows;
    Transpose16x16(blocks, kLaneRows, xt + g * 16, kLanes);
    Transpose16x16(blocks + 16, kLaneRows, xt + 16 * kLanes + g * 16, kLanes);
  }
}

// 16 codes (int32) -> 16 bytes: low nibbles from lo, high nibbles from hi.
void StoreNibbles(__m512i lo, __m512i hi, uint8_t* dst) {
  const __m512i packed = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(packed));
}

__m512i Q4_0Codes(const float* x, __m512 id) {
  using V = Avx512Vec;
  const __m512 t = V::Add(V::Mul(_mm512_loadu_ps(x), id), V::Set(8.5f));
  // cvtt truncates: the same codes as trunc-then-clamp, NaN included (-> 0).
  return _mm512_cvttps_epi32(V::Min(V::Max(t, V::Set(0.0f)), V::Set(15.0f)));
}

// 16 q8_0 codes (int32), as Q8_0Code() computes them (see quantize_avx2.cc's
// Q8_0Codes() for the exact rounding).
__m512i Q8_0Codes(const float* x, __m512 id) {
  using V = Avx512Vec;
  const __m512 t = V::Mul(_mm512_loadu_ps(x), id);
  const __m512 not_nan = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
  const __m512 c = V::Min(V::Max(not_nan, V::Set(-127.0f)), V::Set(127.0f));
  const __m512 whole = V::Trunc(c);
  const __m512 frac = V::Sub(c, whole);
  return _mm512_cvttps_epi32(V::Add(whole, V::Trunc(V::Add(frac, frac))));
}

__m512i Q4_KCodes(const float* x, __m512 sub_min, __m512 inv_scale) {
  using V = Avx512Vec;
  const __m512 t = V::RoundEven(V::Mul(V::Add(_mm512_loadu_ps(x), sub_min), inv_scale));
  return _mm512_cvttps_epi32(V::Min(V::Max(t, V::Set(0.0f)), V::Set(15.0f)));
}

struct Avx512Isa {
  using Vec = BatchVec;
  static void TransposeBlocks(const float* in, float* xt) {
    quantize_internal::TransposeBlocks(in, xt);
  }
  static void PackQ4_0(const float* x, float iscale, float scale, uint8_t* block) {
    // The scale is a binary16 value already: this conversion is exact.
    format::EncodeFixed16(block, _cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m512 id = _mm512_set1_ps(iscale);
    StoreNibbles(Q4_0Codes(x, id), Q4_0Codes(x + 16, id), block + 2);
  }
  static void PackQ8_0(const float* x, float iscale, float scale, uint8_t* block) {
    // The scale is a binary16 value already: this conversion is exact.
    format::EncodeFixed16(block, _cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m512 id = _mm512_set1_ps(iscale);
    // The codes are in [-127, 127]: vpmovdb's truncation keeps them.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + 2), _mm512_cvtepi32_epi8(Q8_0Codes(x, id)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + 18),
                     _mm512_cvtepi32_epi8(Q8_0Codes(x + 16, id)));
  }
  static void PackQ4_KCodes(const float* x, const float sub_min[8], const float inv_scale[8],
                            uint8_t* qs) {
    for (int c = 0; c < 4; ++c) {
      const __m512 min_lo = _mm512_set1_ps(sub_min[2 * c]);
      const __m512 inv_lo = _mm512_set1_ps(inv_scale[2 * c]);
      const __m512 min_hi = _mm512_set1_ps(sub_min[2 * c + 1]);
      const __m512 inv_hi = _mm512_set1_ps(inv_scale[2 * c + 1]);
      for (int h = 0; h < 2; ++h) {
        const float* xl = x + 64 * c + 16 * h;
        StoreNibbles(Q4_KCodes(xl, min_lo, inv_lo), Q4_KCodes(xl + 32, min_hi, inv_hi),
                     qs + 32 * c + 16 * h);
      }
    }
  }
};

}  // namespace

void QuantizeQ4_0Avx512(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_0Batches<Avx512Isa>(src, n_blocks, dst);
}

void QuantizeQ8_0Avx512(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ8_0Batches<Avx512Isa>(src, n_blocks, dst);
}

void QuantizeQ4_KAvx512(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeQ4_KBatches<Avx512Isa>(src, n_blocks, dst);
}

ErrorSums MeasureErrorAvx512(const float* source, const float* decoded, size_t n) {
  // Lane l of each vector is lane l of the ErrorLanes order (16 lanes).
  __m512d src_lo = _mm512_setzero_pd();
  __m512d src_hi = _mm512_setzero_pd();
  __m512d err_lo = _mm512_setzero_pd();
  __m512d err_hi = _mm512_setzero_pd();
  __m512 src_part = _mm512_setzero_ps();
  __m512 err_part = _mm512_setzero_ps();
  __m512 max_err = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + kErrorLanes <= n; i += kErrorLanes) {
    const __m512 x = _mm512_loadu_ps(source + i);
    const __m512 diff = _mm512_sub_ps(x, _mm512_loadu_ps(decoded + i));
    max_err = _mm512_max_ps(_mm512_abs_ps(diff), max_err);
    src_part = _mm512_fmadd_ps(x, x, src_part);
    err_part = _mm512_fmadd_ps(diff, diff, err_part);
    if ((i + kErrorLanes) % kErrorGroup == 0) {
      src_lo = _mm512_add_pd(src_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(src_part)));
      src_hi = _mm512_add_pd(src_hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(src_part, 1)));
      err_lo = _mm512_add_pd(err_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(err_part)));
      err_hi = _mm512_add_pd(err_hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(err_part, 1)));
      src_part = _mm512_setzero_ps();
      err_part = _mm512_setzero_ps();
    }
  }
  ErrorLanes lanes;
  _mm512_storeu_pd(lanes.source, src_lo);
  _mm512_storeu_pd(lanes.source + 8, src_hi);
  _mm512_storeu_pd(lanes.error, err_lo);
  _mm512_storeu_pd(lanes.error + 8, err_hi);
  _mm512_storeu_ps(lanes.source_part, src_part);
  _mm512_storeu_ps(lanes.error_part, err_part);
  lanes.max_abs_error = _mm512_reduce_max_ps(max_err);
  MeasureErrorTail(source, decoded, i, n, &lanes);
  return FinishErrorLanes(lanes);
}

}  // namespace zcpack::converter::quantize_internal

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
