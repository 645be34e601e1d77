// AVX-512 kernels (F, BW, DQ, VL, with AVX2, FMA and F16C): 16 floats per
// vector. Every function carries its own target attribute; nothing here runs
// unless format::DetectSimdLevel() reported kAvx512. The accumulation order is
// the one kernels_internal.h defines.
//
// q4 decoding uses a 16-entry table per block: lane q of the table holds the
// decoded value of nibble q ((q - 8) * d for q4_0, d * sc * q - dmin * m for
// a q4_k sub-block), computed exactly as the reference decoder computes it,
// and vpermps picks each weight from its nibble (vpermps reads only the low 4
// bits of each index lane, so no mask is needed for the low nibble). Block
// scales come from HalfToFloatTable() (a broadcast load) rather than F16C:
// vcvtph2ps competes with the shuffles for the same ports. Eight rows share
// each x load; both choices were measured on Zen 4 and on an Intel Xeon
// (about 1.3-1.5 ns per q4_0 block-row, against 1.9 ns with F16C and four
// rows).
#include "kernels_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cstring>

#include "zcpack/format/format_constants.h"

// GCC 12 reports false -W(maybe-)uninitialized warnings inside its own AVX-512
// headers (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#define ZCPACK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#define ZCPACK_AVX512_INLINE ZCPACK_AVX512 inline __attribute__((always_inline))

namespace zcpack::runtime::kernels_internal {
namespace {

constexpr size_t kQ4_0Bytes = format::kQ4_0BlockBytes;
constexpr size_t kQ4_0Elements = format::kQ4_0BlockElements;
constexpr size_t kQ4_KBytes = format::kQ4_KBlockBytes;
constexpr size_t kQ4_KElements = format::kQ4_KBlockElements;

ZCPACK_AVX512_INLINE __m128i Load128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

ZCPACK_AVX512_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The horizontal sum of acc0 + acc1, in a fixed order.
ZCPACK_AVX512_INLINE float Finish(__m512 acc0, __m512 acc1) {
  const __m512 sum = _mm512_add_ps(acc0, acc1);
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(sum), _mm512_extractf32x8_ps(sum, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// ------------------------------------------------------------------ q4_0 ---

// R consecutive rows of q4_0 (row_bytes apart) against x: y[0, R).
template <int R>
ZCPACK_AVX512_INLINE void Q4_0Rows(const uint8_t* row0, size_t row_bytes, size_t blocks,
                                   const float* x, float* y, const float* half_to_float,
                                   PrefetchStream& prefetch) {
  const __m512 nibble_minus_8 = _mm512_setr_ps(-8.f, -7.f, -6.f, -5.f, -4.f, -3.f, -2.f, -1.f,
                                               0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f);
  __m512 acc0[R];
  __m512 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    prefetch.Advance(R * kQ4_0Bytes);
    // Elements [32b, 32b + 16) are the low nibbles (vector 2b, acc0), the
    // next 16 the high nibbles (vector 2b + 1, acc1).
    const __m512 x0 = _mm512_loadu_ps(x + kQ4_0Elements * b);
    const __m512 x1 = _mm512_loadu_ps(x + kQ4_0Elements * b + 16);
    for (int r = 0; r < R; ++r) {
      const uint8_t* block = row0 + r * row_bytes + kQ4_0Bytes * b;
      const __m512 d = _mm512_set1_ps(half_to_float[LoadU16(block)]);
      const __m512 table = _mm512_mul_ps(d, nibble_minus_8);
      const __m512i q = _mm512_cvtepu8_epi32(Load128(block + 2));
      acc0[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(q, table), x0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table), x1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

ZCPACK_AVX512 void MatVecQ4_0(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                              uint64_t row_end) {
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = w.cols / kQ4_0Elements;
  const float* const half_to_float = HalfToFloatTable();
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, 8 * row_bytes);
  uint64_t r = row_begin;
  for (; r + 8 <= row_end; r += 8) {
    Q4_0Rows<8>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
  for (; r + 4 <= row_end; r += 4) {
    Q4_0Rows<4>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
  for (; r < row_end; ++r) {
    Q4_0Rows<1>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
}

// ------------------------------------------------------------------ q4_k ---

// The super-block's sub-block factors: f[s] = d * sc[s], f[8 + s] = dmin *
// m[s] (both products exact), unpacked from the 12 scale bytes the way
// format/q4_blocks.h defines them, four sub-blocks per 32-bit word.
ZCPACK_AVX512_INLINE void Q4_KFactors(const uint8_t* block, const float* half_to_float,
                                      float f[16]) {
  uint32_t s[3];
  std::memcpy(s, block + 4, sizeof(s));
  constexpr uint32_t kLow6 = 0x3f3f3f3f;
  constexpr uint32_t kLow4 = 0x0f0f0f0f;
  constexpr uint32_t kLow2 = 0x03030303;
  const uint32_t sc_0_3 = s[0] & kLow6;
  const uint32_t m_0_3 = s[1] & kLow6;
  const uint32_t sc_4_7 = (s[2] & kLow4) | (((s[0] >> 6) & kLow2) << 4);
  const uint32_t m_4_7 = ((s[2] >> 4) & kLow4) | (((s[1] >> 6) & kLow2) << 4);
  const __m128i bytes = _mm_setr_epi32(static_cast<int>(sc_0_3), static_cast<int>(sc_4_7),
                                       static_cast<int>(m_0_3), static_cast<int>(m_4_7));
  const __m512 values = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
  const __m512 scale = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(half_to_float[LoadU16(block)]),
                                            _mm512_set1_ps(half_to_float[LoadU16(block + 2)]));
  _mm512_storeu_ps(f, _mm512_mul_ps(values, scale));
}

template <int R>
ZCPACK_AVX512_INLINE void Q4_KRows(const uint8_t* row0, size_t row_bytes, size_t blocks,
                                   const float* x, float* y, const float* half_to_float,
                                   PrefetchStream& prefetch) {
  const __m512 nibble = _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f,
                                       12.f, 13.f, 14.f, 15.f);
  __m512 acc0[R];
  __m512 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  alignas(64) float factors[R][16];
  for (size_t b = 0; b < blocks; ++b) {
    for (int r = 0; r < R; ++r) {
      Q4_KFactors(row0 + r * row_bytes + kQ4_KBytes * b, half_to_float, factors[r]);
    }
    const float* xb = x + kQ4_KElements * b;
    for (int c = 0; c < 4; ++c) {
      prefetch.Advance(R * kQ4_KBytes / 4);
      // Chunk c: 32 bytes whose low nibbles are elements [64c, 64c + 32)
      // (sub-block 2c, vectors 4c and 4c + 1) and high nibbles the next 32
      // (sub-block 2c + 1, vectors 4c + 2 and 4c + 3).
      const __m512 x0 = _mm512_loadu_ps(xb + 64 * c);
      const __m512 x1 = _mm512_loadu_ps(xb + 64 * c + 16);
      const __m512 x2 = _mm512_loadu_ps(xb + 64 * c + 32);
      const __m512 x3 = _mm512_loadu_ps(xb + 64 * c + 48);
      for (int r = 0; r < R; ++r) {
        const float* f = factors[r];
        const __m512 low_table = _mm512_fmsub_ps(_mm512_set1_ps(f[2 * c]), nibble,
                                                 _mm512_set1_ps(f[8 + 2 * c]));
        const __m512 high_table = _mm512_fmsub_ps(_mm512_set1_ps(f[2 * c + 1]), nibble,
                                                  _mm512_set1_ps(f[8 + 2 * c + 1]));
        const uint8_t* qs = row0 + r * row_bytes + kQ4_KBytes * b + 16 + 32 * c;
        const __m512i q0 = _mm512_cvtepu8_epi32(Load128(qs));
        const __m512i q1 = _mm512_cvtepu8_epi32(Load128(qs + 16));
        acc0[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(q0, low_table), x0, acc0[r]);
        acc1[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(q1, low_table), x1, acc1[r]);
        acc0[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q0, 4), high_table), x2,
                                  acc0[r]);
        acc1[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q1, 4), high_table), x3,
                                  acc1[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

ZCPACK_AVX512 void MatVecQ4_K(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                              uint64_t row_end) {
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = w.cols / kQ4_KElements;
  const float* const half_to_float = HalfToFloatTable();
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, 8 * row_bytes);
  uint64_t r = row_begin;
  for (; r + 8 <= row_end; r += 8) {
    Q4_KRows<8>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
  for (; r + 4 <= row_end; r += 4) {
    Q4_KRows<4>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
  for (; r < row_end; ++r) {
    Q4_KRows<1>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, half_to_float, prefetch);
  }
}

// ----------------------------------------------------- f32, f16 and bf16 ---

// Loaders: 16 elements from byte address p, widened exactly to float; the
// masked form reads only the lanes in `mask` (others are zero).
struct LoadF32 {
  static constexpr size_t kBytes = 4;
  ZCPACK_AVX512_INLINE static __m512 Full(const uint8_t* p) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  }
  ZCPACK_AVX512_INLINE static __m512 Masked(const uint8_t* p, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, p);
  }
};

struct LoadF16 {
  static constexpr size_t kBytes = 2;
  ZCPACK_AVX512_INLINE static __m512 Full(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  ZCPACK_AVX512_INLINE static __m512 Masked(const uint8_t* p, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
  }
};

struct LoadBF16 {
  static constexpr size_t kBytes = 2;
  ZCPACK_AVX512_INLINE static __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  ZCPACK_AVX512_INLINE static __m512 Full(const uint8_t* p) {
    return Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  ZCPACK_AVX512_INLINE static __m512 Masked(const uint8_t* p, __mmask16 mask) {
    return Widen(_mm256_maskz_loadu_epi16(mask, p));
  }
};

// R consecutive rows of `cols` elements (row_bytes apart) against x: y[0, R).
template <int R, typename Load>
ZCPACK_AVX512_INLINE void FloatRows(const uint8_t* row0, size_t row_bytes, size_t cols,
                                    const float* x, float* y, PrefetchStream* prefetch) {
  __m512 acc0[R];
  __m512 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= cols; i += 32) {
    if (prefetch != nullptr) prefetch->Advance(R * 32 * Load::kBytes);
    const __m512 x0 = _mm512_loadu_ps(x + i);
    const __m512 x1 = _mm512_loadu_ps(x + i + 16);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = row0 + r * row_bytes + Load::kBytes * i;
      acc0[r] = _mm512_fmadd_ps(Load::Full(p), x0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(Load::Full(p + 16 * Load::kBytes), x1, acc1[r]);
    }
  }
  bool odd = false;  // whether the next vector's index is odd
  if (i + 16 <= cols) {
    const __m512 x0 = _mm512_loadu_ps(x + i);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_fmadd_ps(Load::Full(row0 + r * row_bytes + Load::kBytes * i), x0, acc0[r]);
    }
    i += 16;
    odd = true;
  }
  if (i < cols) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (cols - i)) - 1);
    const __m512 xm = _mm512_maskz_loadu_ps(mask, x + i);
    for (int r = 0; r < R; ++r) {
      const __m512 wm = Load::Masked(row0 + r * row_bytes + Load::kBytes * i, mask);
      if (odd) {
        acc1[r] = _mm512_fmadd_ps(wm, xm, acc1[r]);
      } else {
        acc0[r] = _mm512_fmadd_ps(wm, xm, acc0[r]);
      }
    }
  }
  if (prefetch != nullptr) prefetch->Advance(R * (cols % 32) * Load::kBytes);
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

template <typename Load>
ZCPACK_AVX512 void MatVecFloat(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                               uint64_t row_end) {
  const size_t row_bytes = w.row_bytes();
  const size_t cols = w.cols;
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, 4 * row_bytes);
  uint64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    FloatRows<4, Load>(w.data + r * row_bytes, row_bytes, cols, x, y + r, &prefetch);
  }
  for (; r < row_end; ++r) {
    FloatRows<1, Load>(w.data + r * row_bytes, row_bytes, cols, x, y + r, &prefetch);
  }
}

ZCPACK_AVX512 void DotRows(const float* rows, size_t nrows, const float* x, size_t nvec,
                           size_t cols, float* y, size_t y_stride) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(rows);
  const size_t row_bytes = cols * sizeof(float);
  for (size_t j = 0; j < nvec; ++j) {
    const float* xj = x + j * cols;
    float* yj = y + j * y_stride;
    size_t r = 0;
    for (; r + 8 <= nrows; r += 8) {
      FloatRows<8, LoadF32>(bytes + r * row_bytes, row_bytes, cols, xj, yj + r, nullptr);
    }
    for (; r + 4 <= nrows; r += 4) {
      FloatRows<4, LoadF32>(bytes + r * row_bytes, row_bytes, cols, xj, yj + r, nullptr);
    }
    for (; r < nrows; ++r) {
      FloatRows<1, LoadF32>(bytes + r * row_bytes, row_bytes, cols, xj, yj + r, nullptr);
    }
  }
}

constexpr LevelKernels kAvx512Kernels = {
    format::SimdLevel::kAvx512,    MatVecQ4_0, MatVecQ4_K, MatVecFloat<LoadF16>,
    MatVecFloat<LoadBF16>, MatVecFloat<LoadF32>, DotRows,
};

}  // namespace

const LevelKernels* Avx512Kernels() { return &kAvx512Kernels; }

}  // namespace zcpack::runtime::kernels_internal

#else  // not x86

namespace zcpack::runtime::kernels_internal {
const LevelKernels* Avx512Kernels() { return nullptr; }
}  // namespace zcpack::runtime::kernels_internal

#endif
