#include "zcpack/format/q4_blocks.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"

#if defined(__x86_64__)
// GCC 12 reports false -W(maybe-)uninitialized warnings inside its own AVX-512
// headers (GCC bug 105593, fixed in GCC 13).
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <cpuid.h>
#include <immintrin.h>
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define ZCPACK_Q4_X86 1
#endif

namespace zcpack::format {
namespace {

constexpr size_t kQ4_0Elems = kQ4_0BlockElements;
constexpr size_t kQ4_0Bytes = kQ4_0BlockBytes;
constexpr size_t kQ4_KElems = kQ4_KBlockElements;
constexpr size_t kQ4_KBytes = kQ4_KBlockBytes;
constexpr size_t kQ8_0Elems = kQ8_0BlockElements;
constexpr size_t kQ8_0Bytes = kQ8_0BlockBytes;
constexpr size_t kQ4_1Bytes = kQ4_1BlockBytes;
constexpr size_t kQ5_0Bytes = kQ5_0BlockBytes;
constexpr size_t kQ5_1Bytes = kQ5_1BlockBytes;
constexpr size_t kBlock32Elems = 32;
static_assert(kQ4_1BlockElements == kBlock32Elems && kQ5_0BlockElements == kBlock32Elems &&
              kQ5_1BlockElements == kBlock32Elems);
constexpr size_t kQ4_KScalesOffset = 4;
constexpr size_t kQ4_KQsOffset = 16;

SimdLevel DetectOnce() {
#if defined(ZCPACK_Q4_X86)
  __builtin_cpu_init();
  // clang 14's __builtin_cpu_supports does not know "f16c": ask CPUID
  // (leaf 1, ECX bit 29) directly.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)) {
    return SimdLevel::kScalar;
  }
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return SimdLevel::kAvx512;
  }
  return SimdLevel::kAvx2;
#else
  return SimdLevel::kScalar;
#endif
}

// The 6-bit scale and min of sub-block s, unpacked as ggml's get_scale_min_k4.
void Q4_KScaleMin(const uint8_t* scales, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

// Per-sub-block multipliers of a q4_k super-block: element = mul[s] * q -
// sub[s]. Both products are exact (see the header), so computing them once is
// safe.
void Q4_KSubBlockFactors(const uint8_t* block, float mul[8], float sub[8]) {
  const float d = HalfToFloat(DecodeFixed16(block));
  const float dmin = HalfToFloat(DecodeFixed16(block + 2));
  for (int s = 0; s < 8; ++s) {
    int sc = 0;
    int m = 0;
    Q4_KScaleMin(block + kQ4_KScalesOffset, s, &sc, &m);
    mul[s] = d * static_cast<float>(sc);
    sub[s] = dmin * static_cast<float>(m);
  }
}

// ---------------------------------------------------------------- scalar ---

void DequantizeQ4_0Scalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ4_0Bytes, out += kQ4_0Elems) {
    const float d = HalfToFloat(DecodeFixed16(blocks));
    const uint8_t* qs = blocks + 2;
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
      out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// q4_1, q5_0 and q5_1 have no SIMD variants: they decode only embedding
// rows and tensors being verified or requantized, never in a product.
void DequantizeQ4_1Scalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ4_1Bytes, out += kBlock32Elems) {
    const float d = HalfToFloat(DecodeFixed16(blocks));
    const float m = HalfToFloat(DecodeFixed16(blocks + 2));
    const uint8_t* qs = blocks + 4;
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<float>(qs[j] & 0xF) * d + m;
      out[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// The 5-bit codes u_e of a q5_0 or q5_1 block (see the header).
void Q5Codes(const uint8_t* qh_bytes, const uint8_t* qs, int u[32]) {
  const uint32_t qh = DecodeFixed32(qh_bytes);
  for (int j = 0; j < 16; ++j) {
    u[j] = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
    u[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
  }
}

void DequantizeQ5_0Scalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ5_0Bytes, out += kBlock32Elems) {
    const float d = HalfToFloat(DecodeFixed16(blocks));
    int u[32];
    Q5Codes(blocks + 2, blocks + 6, u);
    for (int e = 0; e < 32; ++e) out[e] = static_cast<float>(u[e] - 16) * d;
  }
}

void DequantizeQ5_1Scalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ5_1Bytes, out += kBlock32Elems) {
    const float d = HalfToFloat(DecodeFixed16(blocks));
    const float m = HalfToFloat(DecodeFixed16(blocks + 2));
    int u[32];
    Q5Codes(blocks + 4, blocks + 8, u);
    for (int e = 0; e < 32; ++e) out[e] = static_cast<float>(u[e]) * d + m;
  }
}

// q4_k decoding has no SIMD variants: compiled for the baseline, this loop
// already writes floats as fast as the AVX2 and AVX-512 versions did.
void DequantizeQ4_KScalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ4_KBytes, out += kQ4_KElems) {
    float mul[8];
    float sub[8];
    Q4_KSubBlockFactors(blocks, mul, sub);
    const uint8_t* qs = blocks + kQ4_KQsOffset;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * c + l];
        out[64 * c + l] = mul[2 * c] * static_cast<float>(byte & 0xF) - sub[2 * c];
        out[64 * c + 32 + l] = mul[2 * c + 1] * static_cast<float>(byte >> 4) - sub[2 * c + 1];
      }
    }
  }
}

// q5_k and q6_k decoding is scalar at every level: like q4_k's, the loops
// compile to code that writes floats about as fast as memory takes them,
// and they run once per tensor (conversion) or per embedding row.
void DequantizeQ5_KScalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  constexpr size_t kQhOffset = 16;
  constexpr size_t kQsOffset = 48;
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ5_KBlockBytes, out += kQ5_KBlockElements) {
    float mul[8];
    float sub[8];
    Q4_KSubBlockFactors(blocks, mul, sub);  // the same header as q4_k
    const uint8_t* qh = blocks + kQhOffset;
    const uint8_t* qs = blocks + kQsOffset;
    for (int c = 0; c < 4; ++c) {
      const int lo = 2 * c;
      const int hi = 2 * c + 1;
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * c + l];
        const int q_lo = (byte & 0xF) | (((qh[l] >> lo) & 1) << 4);
        const int q_hi = (byte >> 4) | (((qh[l] >> hi) & 1) << 4);
        out[64 * c + l] = mul[lo] * static_cast<float>(q_lo) - sub[lo];
        out[64 * c + 32 + l] = mul[hi] * static_cast<float>(q_hi) - sub[hi];
      }
    }
  }
}

void DequantizeQ6_KScalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  constexpr size_t kQhOffset = 128;
  constexpr size_t kScalesOffset = 192;
  constexpr size_t kDOffset = 208;
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ6_KBlockBytes, out += kQ6_KBlockElements) {
    const float d = HalfToFloat(DecodeFixed16(blocks + kDOffset));
    float mul[16];  // d * scales[t], exact
    for (int t = 0; t < 16; ++t) {
      mul[t] = d * static_cast<float>(static_cast<int8_t>(blocks[kScalesOffset + t]));
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blocks + 64 * h;
      const uint8_t* qh = blocks + kQhOffset + 32 * h;
      float* y = out + 128 * h;
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int u = ((ql[32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF) |
                        (((qh[l] >> (2 * g)) & 3) << 4);
          y[32 * g + l] = mul[8 * h + 2 * g + l / 16] * static_cast<float>(u - 32);
        }
      }
    }
  }
}

void DequantizeQ8_0Scalar(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ8_0Bytes, out += kQ8_0Elems) {
    const float d = HalfToFloat(DecodeFixed16(blocks));
    const uint8_t* qs = blocks + 2;
    for (size_t j = 0; j < kQ8_0Elems; ++j) {
      out[j] = static_cast<float>(static_cast<int8_t>(qs[j])) * d;
    }
  }
}

void ConvertF32Scalar(const uint8_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(DecodeFixed32(src + 4 * i));
}

void ConvertF16Scalar(const uint8_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(DecodeFixed16(src + 2 * i));
}

void ConvertBF16Scalar(const uint8_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = BFloat16ToFloat(DecodeFixed16(src + 2 * i));
}

#if defined(ZCPACK_Q4_X86)
// ------------------------------------------------------------------ AVX2 ---
// x86 is little-endian, so the SIMD paths load the stored bytes directly.

__attribute__((target("avx2,fma,f16c"))) void DequantizeQ4_0Avx2(const uint8_t* blocks,
                                                                 size_t n_blocks, float* out) {
  const __m128i low_mask = _mm_set1_epi8(0xF);
  const __m256i eight = _mm256_set1_epi32(8);
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ4_0Bytes, out += kQ4_0Elems) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(DecodeFixed16(blocks)));
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 2));
    const __m128i lo = _mm_and_si128(bytes, low_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(parts[k]), eight);
      _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

__attribute__((target("avx2,fma,f16c"))) void DequantizeQ8_0Avx2(const uint8_t* blocks,
                                                                 size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ8_0Bytes, out += kQ8_0Elems) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(DecodeFixed16(blocks)));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 18));
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_cvtepi8_epi32(parts[k]);
      _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

// vcvtph2ps quiets signalling NaNs; HalfToFloat() keeps them signalling. Lanes
// whose input is a signalling NaN get the quiet bit cleared again.
__attribute__((target("avx2,fma,f16c"))) void ConvertF16Avx2(const uint8_t* src, size_t n,
                                                             float* out) {
  const __m128i abs_mask = _mm_set1_epi16(0x7fff);
  const __m128i inf_bits = _mm_set1_epi16(0x7c00);
  const __m128i qnan_bits = _mm_set1_epi16(0x7e00);
  const __m256i quiet_bit = _mm256_set1_epi32(0x00400000);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    __m256 v = _mm256_cvtph_ps(h);
    const __m128i a = _mm_and_si128(h, abs_mask);
    const __m128i snan = _mm_and_si128(_mm_cmpgt_epi16(a, inf_bits), _mm_cmpgt_epi16(qnan_bits, a));
    if (_mm_movemask_epi8(snan) != 0) {
      const __m256i fix = _mm256_and_si256(_mm256_cvtepi16_epi32(snan), quiet_bit);
      v = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(v), fix));
    }
    _mm256_storeu_ps(out + i, v);
  }
  ConvertF16Scalar(src + 2 * i, n - i, out + i);
}

__attribute__((target("avx2,fma,f16c"))) void ConvertBF16Avx2(const uint8_t* src, size_t n,
                                                              float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(w));
  }
  ConvertBF16Scalar(src + 2 * i, n - i, out + i);
}

// --------------------------------------------------------------- AVX-512 ---

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))) void
DequantizeQ4_0Avx512(const uint8_t* blocks, size_t n_blocks, float* out) {
  const __m128i low_mask = _mm_set1_epi8(0xF);
  const __m512i eight = _mm512_set1_epi32(8);
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ4_0Bytes, out += kQ4_0Elems) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(DecodeFixed16(blocks)));
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 2));
    const __m128i lo = _mm_and_si128(bytes, low_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask);
    const __m512i qlo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(lo), eight);
    const __m512i qhi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(hi), eight);
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(qlo), d));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(qhi), d));
  }
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))) void
DequantizeQ8_0Avx512(const uint8_t* blocks, size_t n_blocks, float* out) {
  for (size_t b = 0; b < n_blocks; ++b, blocks += kQ8_0Bytes, out += kQ8_0Elems) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(DecodeFixed16(blocks)));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 18));
    _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
  }
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))) void ConvertF16Avx512(
    const uint8_t* src, size_t n, float* out) {
  const __m256i abs_mask = _mm256_set1_epi16(0x7fff);
  const __m256i inf_bits = _mm256_set1_epi16(0x7c00);
  const __m256i qnan_bits = _mm256_set1_epi16(0x7e00);
  const __m512i quiet_bit = _mm512_set1_epi32(0x00400000);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
    __m512 v = _mm512_cvtph_ps(h);
    const __m256i a = _mm256_and_si256(h, abs_mask);
    const __mmask16 snan =
        _mm256_cmpgt_epi16_mask(a, inf_bits) & _mm256_cmpgt_epi16_mask(qnan_bits, a);
    if (snan != 0) {
      v = _mm512_castsi512_ps(
          _mm512_mask_xor_epi32(_mm512_castps_si512(v), snan, _mm512_castps_si512(v), quiet_bit));
    }
    _mm512_storeu_ps(out + i, v);
  }
  ConvertF16Scalar(src + 2 * i, n - i, out + i);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))) void ConvertBF16Avx512(
    const uint8_t* src, size_t n, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
    const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(w));
  }
  ConvertBF16Scalar(src + 2 * i, n - i, out + i);
}
#endif  // ZCPACK_Q4_X86

void ConvertF32(const uint8_t* src, size_t n, float* out) {
  if constexpr (std::endian::native == std::endian::little) {
    if (n != 0) std::memcpy(out, src, n * sizeof(float));
  } else {
    ConvertF32Scalar(src, n, out);
  }
}

// The kernels of one SimdLevel. Block decoders take a block count.
struct DecodeKernels {
  void (*q4_0)(const uint8_t* blocks, size_t n_blocks, float* out);
  void (*q4_k)(const uint8_t* blocks, size_t n_blocks, float* out);
  void (*q8_0)(const uint8_t* blocks, size_t n_blocks, float* out);
  void (*f16)(const uint8_t* src, size_t n, float* out);
  void (*bf16)(const uint8_t* src, size_t n, float* out);
};

const DecodeKernels& KernelsFor(SimdLevel level) {
  static constexpr DecodeKernels kScalar = {DequantizeQ4_0Scalar, DequantizeQ4_KScalar,
                                            DequantizeQ8_0Scalar, ConvertF16Scalar,
                                            ConvertBF16Scalar};
#if defined(ZCPACK_Q4_X86)
  static constexpr DecodeKernels kAvx2 = {DequantizeQ4_0Avx2, DequantizeQ4_KScalar,
                                          DequantizeQ8_0Avx2, ConvertF16Avx2, ConvertBF16Avx2};
  static constexpr DecodeKernels kAvx512 = {DequantizeQ4_0Avx512, DequantizeQ4_KScalar,
                                            DequantizeQ8_0Avx512, ConvertF16Avx512,
                                            ConvertBF16Avx512};
  switch (SupportedSimdLevel(level)) {
    case SimdLevel::kAvx512: return kAvx512;
    case SimdLevel::kAvx2: return kAvx2;
    default: break;
  }
#endif
  return kScalar;
}

}  // namespace

SimdLevel DetectSimdLevel() {
  static const SimdLevel level = DetectOnce();
  return level;
}

SimdLevel SupportedSimdLevel(SimdLevel requested) {
  const SimdLevel best = DetectSimdLevel();
  return static_cast<int>(requested) > static_cast<int>(best) ? best : requested;
}

absl::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
    default: return "scalar";
  }
}

void DequantizeQ4_0(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ4_0(blocks, n_elements, out, DetectSimdLevel());
}

void DequantizeQ4_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level) {
  KernelsFor(level).q4_0(blocks, n_elements / kQ4_0Elems, out);
}

void DequantizeQ4_1(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ4_1Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ4_1(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel /*level*/) {
  DequantizeQ4_1Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ5_0(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ5_0Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ5_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel /*level*/) {
  DequantizeQ5_0Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ5_1(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ5_1Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ5_1(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel /*level*/) {
  DequantizeQ5_1Scalar(blocks, n_elements / kBlock32Elems, out);
}

void DequantizeQ4_K(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ4_K(blocks, n_elements, out, DetectSimdLevel());
}

void DequantizeQ4_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level) {
  KernelsFor(level).q4_k(blocks, n_elements / kQ4_KElems, out);
}

void DequantizeQ5_K(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ5_K(blocks, n_elements, out, DetectSimdLevel());
}

void DequantizeQ5_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel /*level*/) {
  DequantizeQ5_KScalar(blocks, n_elements / kQ5_KBlockElements, out);
}

void DequantizeQ6_K(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ6_K(blocks, n_elements, out, DetectSimdLevel());
}

void DequantizeQ6_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel /*level*/) {
  DequantizeQ6_KScalar(blocks, n_elements / kQ6_KBlockElements, out);
}

void DequantizeQ8_0(const uint8_t* blocks, size_t n_elements, float* out) {
  DequantizeQ8_0(blocks, n_elements, out, DetectSimdLevel());
}

void DequantizeQ8_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level) {
  KernelsFor(level).q8_0(blocks, n_elements / kQ8_0Elems, out);
}

absl::Status ConvertToFloat(DType src_dtype, const uint8_t* src, size_t n, float* out) {
  return ConvertToFloat(src_dtype, src, n, out, DetectSimdLevel());
}

absl::Status ConvertToFloat(DType src_dtype, const uint8_t* src, size_t n, float* out,
                            SimdLevel level) {
  const uint64_t block_elements = BlockElements(src_dtype);
  if (block_elements == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert dtype value ", static_cast<int>(src_dtype), " to float"));
  }
  if (n % block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert ", n, " elements of ",
                                                   DTypeName(src_dtype), ": not a multiple of ",
                                                   block_elements));
  }
  const DecodeKernels& kernels = KernelsFor(level);
  switch (src_dtype) {
    case DTYPE_F32: ConvertF32(src, n, out); break;
    case DTYPE_F16: kernels.f16(src, n, out); break;
    case DTYPE_BF16: kernels.bf16(src, n, out); break;
    case DTYPE_Q4_0: kernels.q4_0(src, n / kQ4_0Elems, out); break;
    case DTYPE_Q4_K: kernels.q4_k(src, n / kQ4_KElems, out); break;
    case DTYPE_Q8_0: kernels.q8_0(src, n / kQ8_0Elems, out); break;
    case DTYPE_Q4_1: DequantizeQ4_1Scalar(src, n / kBlock32Elems, out); break;
    case DTYPE_Q5_0: DequantizeQ5_0Scalar(src, n / kBlock32Elems, out); break;
    case DTYPE_Q5_1: DequantizeQ5_1Scalar(src, n / kBlock32Elems, out); break;
    case DTYPE_Q5_K: DequantizeQ5_KScalar(src, n / kQ5_KBlockElements, out); break;
    case DTYPE_Q6_K: DequantizeQ6_KScalar(src, n / kQ6_KBlockElements, out); break;
    default:
      return absl::UnimplementedError(
          absl::StrCat("cannot convert ", DTypeName(src_dtype), " to float: no decoder"));
  }
  return absl::OkStatus();
}

}  // namespace zcpack::format
