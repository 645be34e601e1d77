// AVX2 kernels (with FMA and F16C): 8 floats per vector. Every function
// carries its own target attribute; nothing here runs unless
// format::DetectSimdLevel() reported kAvx2 or higher. The accumulation order
// is the one kernels_internal.h defines.
//
// q4 weights are decoded with one fused multiply-add per vector from the
// nibble q as a float: q4_0 as q * d + (-8 * d), q4_k as q * (d * sc) -
// dmin * m. q * d and q * (d * sc) are exact in binary32, and so is (q - 8) *
// d, so both give exactly the reference decoder's value for finite scales.
#include "kernels_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cstring>

#include "zcpack/format/format_constants.h"

#include <immintrin.h>

#define ZCPACK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ZCPACK_AVX2_INLINE ZCPACK_AVX2 inline __attribute__((always_inline))

namespace zcpack::runtime::kernels_internal {
namespace {

constexpr size_t kQ4_0Bytes = format::kQ4_0BlockBytes;
constexpr size_t kQ4_0Elements = format::kQ4_0BlockElements;
constexpr size_t kQ4_KBytes = format::kQ4_KBlockBytes;
constexpr size_t kQ4_KElements = format::kQ4_KBlockElements;

// Eight bytes at p, zero-extended to 32-bit lanes.
ZCPACK_AVX2_INLINE __m256i Widen8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

ZCPACK_AVX2_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The horizontal sum of acc0 + acc1, in a fixed order.
ZCPACK_AVX2_INLINE float Finish(__m256 acc0, __m256 acc1) {
  const __m256 sum = _mm256_add_ps(acc0, acc1);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// ------------------------------------------------------------------ q4_0 ---

template <int R>
ZCPACK_AVX2_INLINE void Q4_0Rows(const uint8_t* row0, size_t row_bytes, size_t blocks,
                                 const float* x, float* y, PrefetchStream& prefetch) {
  const __m256i low4 = _mm256_set1_epi32(0xf);
  const __m256 minus_8 = _mm256_set1_ps(-8.f);
  __m256 acc0[R];
  __m256 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    prefetch.Advance(R * kQ4_0Bytes);
    // Vectors 4b .. 4b + 3: low nibbles of bytes 0-7 and 8-15, then high
    // nibbles of bytes 0-7 and 8-15; even ones into acc0.
    const float* xb = x + kQ4_0Elements * b;
    const __m256 x0 = _mm256_loadu_ps(xb);
    const __m256 x1 = _mm256_loadu_ps(xb + 8);
    const __m256 x2 = _mm256_loadu_ps(xb + 16);
    const __m256 x3 = _mm256_loadu_ps(xb + 24);
    for (int r = 0; r < R; ++r) {
      const uint8_t* block = row0 + r * row_bytes + kQ4_0Bytes * b;
      const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(LoadU16(block))));
      const __m256 offset = _mm256_mul_ps(d, minus_8);
      const __m256i q0 = Widen8(block + 2);
      const __m256i q1 = Widen8(block + 10);
      const __m256 w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q0, low4)), d, offset);
      const __m256 w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q1, low4)), d, offset);
      const __m256 w2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q0, 4)), d, offset);
      const __m256 w3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q1, 4)), d, offset);
      acc0[r] = _mm256_fmadd_ps(w0, x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(w1, x1, acc1[r]);
      acc0[r] = _mm256_fmadd_ps(w2, x2, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(w3, x3, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

ZCPACK_AVX2 void MatVecQ4_0(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                            uint64_t row_end) {
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = w.cols / kQ4_0Elements;
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, 4 * row_bytes);
  uint64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    Q4_0Rows<4>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, prefetch);
  }
  for (; r < row_end; ++r) Q4_0Rows<1>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, prefetch);
}

// ------------------------------------------------------------------ q4_k ---

// f[s] = d * sc[s], f[8 + s] = dmin * m[s]: see kernels_avx512.cc.
ZCPACK_AVX2_INLINE void Q4_KFactors(const uint8_t* block, float f[16]) {
  uint32_t s[3];
  std::memcpy(s, block + 4, sizeof(s));
  constexpr uint32_t kLow6 = 0x3f3f3f3f;
  constexpr uint32_t kLow4 = 0x0f0f0f0f;
  constexpr uint32_t kLow2 = 0x03030303;
  const uint32_t sc_0_3 = s[0] & kLow6;
  const uint32_t m_0_3 = s[1] & kLow6;
  const uint32_t sc_4_7 = (s[2] & kLow4) | (((s[0] >> 6) & kLow2) << 4);
  const uint32_t m_4_7 = ((s[2] >> 4) & kLow4) | (((s[1] >> 6) & kLow2) << 4);
  const __m128i sc = _mm_setr_epi32(static_cast<int>(sc_0_3), static_cast<int>(sc_4_7), 0, 0);
  const __m128i m = _mm_setr_epi32(static_cast<int>(m_0_3), static_cast<int>(m_4_7), 0, 0);
  const __m256 d = _mm256_set1_ps(_cvtsh_ss(LoadU16(block)));
  const __m256 dmin = _mm256_set1_ps(_cvtsh_ss(LoadU16(block + 2)));
  _mm256_storeu_ps(f, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)), d));
  _mm256_storeu_ps(f + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m)), dmin));
}

template <int R>
ZCPACK_AVX2_INLINE void Q4_KRows(const uint8_t* row0, size_t row_bytes, size_t blocks,
                                 const float* x, float* y, PrefetchStream& prefetch) {
  const __m256i low4 = _mm256_set1_epi32(0xf);
  __m256 acc0[R];
  __m256 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  alignas(32) float factors[R][16];
  for (size_t b = 0; b < blocks; ++b) {
    for (int r = 0; r < R; ++r) Q4_KFactors(row0 + r * row_bytes + kQ4_KBytes * b, factors[r]);
    const float* xb = x + kQ4_KElements * b;
    for (int c = 0; c < 4; ++c) {
      prefetch.Advance(R * kQ4_KBytes / 4);
      // Chunk c, 32 bytes: low nibbles are vectors 8c .. 8c + 3 (sub-block
      // 2c), high nibbles vectors 8c + 4 .. 8c + 7 (sub-block 2c + 1).
      const float* xc = xb + 64 * c;
      for (int r = 0; r < R; ++r) {
        const float* f = factors[r];
        const __m256 low_mul = _mm256_set1_ps(f[2 * c]);
        const __m256 low_sub = _mm256_set1_ps(f[8 + 2 * c]);
        const __m256 high_mul = _mm256_set1_ps(f[2 * c + 1]);
        const __m256 high_sub = _mm256_set1_ps(f[8 + 2 * c + 1]);
        const uint8_t* qs = row0 + r * row_bytes + kQ4_KBytes * b + 16 + 32 * c;
        for (int k = 0; k < 4; k += 2) {
          const __m256i q0 = Widen8(qs + 8 * k);
          const __m256i q1 = Widen8(qs + 8 * k + 8);
          const __m256 w0 =
              _mm256_fmsub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q0, low4)), low_mul, low_sub);
          const __m256 w1 =
              _mm256_fmsub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q1, low4)), low_mul, low_sub);
          acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc + 8 * k), acc0[r]);
          acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xc + 8 * k + 8), acc1[r]);
        }
        for (int k = 0; k < 4; k += 2) {
          const __m256i q0 = Widen8(qs + 8 * k);
          const __m256i q1 = Widen8(qs + 8 * k + 8);
          const __m256 w0 =
              _mm256_fmsub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q0, 4)), high_mul, high_sub);
          const __m256 w1 =
              _mm256_fmsub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q1, 4)), high_mul, high_sub);
          acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc + 32 + 8 * k), acc0[r]);
          acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xc + 32 + 8 * k + 8), acc1[r]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

ZCPACK_AVX2 void MatVecQ4_K(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                            uint64_t row_end) {
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = w.cols / kQ4_KElements;
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, 4 * row_bytes);
  uint64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    Q4_KRows<4>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, prefetch);
  }
  for (; r < row_end; ++r) Q4_KRows<1>(w.data + r * row_bytes, row_bytes, blocks, x, y + r, prefetch);
}

// ----------------------------------------------------- f32, f16 and bf16 ---

// Loaders: 8 elements from byte address p, widened exactly to float.
struct LoadF32 {
  static constexpr size_t kBytes = 4;
  ZCPACK_AVX2_INLINE static __m256 Full(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
};

struct LoadF16 {
  static constexpr size_t kBytes = 2;
  ZCPACK_AVX2_INLINE static __m256 Full(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

struct LoadBF16 {
  static constexpr size_t kBytes = 2;
  ZCPACK_AVX2_INLINE static __m256 Full(const uint8_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};

template <int R, typename Load>
ZCPACK_AVX2_INLINE void FloatRows(const uint8_t* row0, size_t row_bytes, size_t cols,
                                  const float* x, float* y, PrefetchStream* prefetch) {
  __m256 acc0[R];
  __m256 acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= cols; i += 16) {
    if (prefetch != nullptr) prefetch->Advance(R * 16 * Load::kBytes);
    const __m256 x0 = _mm256_loadu_ps(x + i);
    const __m256 x1 = _mm256_loadu_ps(x + i + 8);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = row0 + r * row_bytes + Load::kBytes * i;
      acc0[r] = _mm256_fmadd_ps(Load::Full(p), x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(Load::Full(p + 8 * Load::kBytes), x1, acc1[r]);
    }
  }
  bool odd = false;  // whether the next vector's index is odd
  if (i + 8 <= cols) {
    const __m256 x0 = _mm256_loadu_ps(x + i);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_fmadd_ps(Load::Full(row0 + r * row_bytes + Load::kBytes * i), x0, acc0[r]);
    }
    i += 8;
    odd = true;
  }
  if (i < cols) {
    // The last partial vector, zero-padded through a copy (AVX2 has no
    // masked 16-bit loads).
    const size_t n = cols - i;
    alignas(32) float x_tail[8] = {};
    std::memcpy(x_tail, x + i, n * sizeof(float));
    const __m256 xm = _mm256_load_ps(x_tail);
    for (int r = 0; r < R; ++r) {
      alignas(32) uint8_t w_tail[8 * Load::kBytes] = {};
      std::memcpy(w_tail, row0 + r * row_bytes + Load::kBytes * i, n * Load::kBytes);
      const __m256 wm = Load::Full(w_tail);
      if (odd) {
        acc1[r] = _mm256_fmadd_ps(wm, xm, acc1[r]);
      } else {
        acc0[r] = _mm256_fmadd_ps(wm, xm, acc0[r]);
      }
    }
  }
  if (prefetch != nullptr) prefetch->Advance(R * (cols % 16) * Load::kBytes);
  for (int r = 0; r < R; ++r) y[r] = Finish(acc0[r], acc1[r]);
}

template <typename Load>
ZCPACK_AVX2 void MatVecFloat(const WeightView& w, const float* x, float* y, uint64_t row_begin,
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

ZCPACK_AVX2 void DotRows(const float* rows, size_t nrows, const float* x, size_t nvec, size_t cols,
                         float* y, size_t y_stride) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(rows);
  const size_t row_bytes = cols * sizeof(float);
  for (size_t j = 0; j < nvec; ++j) {
    const float* xj = x + j * cols;
    float* yj = y + j * y_stride;
    size_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
      FloatRows<4, LoadF32>(bytes + r * row_bytes, row_bytes, cols, xj, yj + r, nullptr);
    }
    for (; r < nrows; ++r) {
      FloatRows<1, LoadF32>(bytes + r * row_bytes, row_bytes, cols, xj, yj + r, nullptr);
    }
  }
}

constexpr LevelKernels kAvx2Kernels = {
    format::SimdLevel::kAvx2, MatVecQ4_0, MatVecQ4_K, MatVecFloat<LoadF16>,
    MatVecFloat<LoadBF16>,    MatVecFloat<LoadF32>, DotRows,
};

}  // namespace

const LevelKernels* Avx2Kernels() { return &kAvx2Kernels; }

}  // namespace zcpack::runtime::kernels_internal

#else  // not x86

namespace zcpack::runtime::kernels_internal {
const LevelKernels* Avx2Kernels() { return nullptr; }
}  // namespace zcpack::runtime::kernels_internal

#endif
