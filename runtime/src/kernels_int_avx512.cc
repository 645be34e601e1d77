// AVX-512 VNNI integer kernels: 16 weight rows per vector, one vpdpbusd per
// four weights of 16 rows. Every function carries its own target attribute;
// nothing here runs unless the CPU reported AVX-512 VNNI. The arithmetic is
// the one kernels_int.h defines, so the results equal the scalar reference
// bit for bit.
//
// Packing. A group of 16 rows is transposed block by block: 16 bytes of each
// of 16 rows are loaded into four vectors (four rows each) and a 4x4 dword
// transpose inside each 128-bit lane leaves, in lane L, four consecutive
// bytes of row LaneRow(L). One "step" of 32 weights of all 16 rows is then
// eight vectors of unsigned bytes (weights 4k..4k+3 in vector k), the lanes'
// float scales, and for q4_k the lanes' min factors: StepBytes() bytes of
// per-thread scratch. The inputs' four int8 activations are broadcast to
// all lanes from memory. A weight block is read from the mapping once per
// group, whatever the number of inputs: for one input the steps of a block
// are packed and used at once, for several the whole group is packed and
// then swept by tiles of up to kTile inputs.
#include "kernels_int.h"

#if defined(__x86_64__) || defined(__i386__)

#include <algorithm>
#include <cstring>

#include "kernels_internal.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/row_groups.h"

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

#define ZCPACK_VNNI512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define ZCPACK_VNNI512_INLINE ZCPACK_VNNI512 inline __attribute__((always_inline))

namespace zcpack::runtime::kernels_internal {
namespace {

constexpr int kLanes = 16;
// Inputs per register tile of the several-input sweep.
constexpr size_t kTile = 4;

enum class Kind { kQ4_0, kQ8_0, kQ4_K, kQ4_1, kQ5_0, kQ5_1, kQ5_K };

template <Kind K>
struct Traits;
template <>
struct Traits<Kind::kQ4_0> {
  static constexpr size_t kBlockBytes = format::kQ4_0BlockBytes;
  static constexpr size_t kSteps = 1;  // 32-weight steps per block
  static constexpr int kOffset = 8;    // stored unsigned value - weight
  static constexpr bool kMins = false;
};
template <>
struct Traits<Kind::kQ8_0> {
  static constexpr size_t kBlockBytes = format::kQ8_0BlockBytes;
  static constexpr size_t kSteps = 1;
  static constexpr int kOffset = 128;
  static constexpr bool kMins = false;
};
template <>
struct Traits<Kind::kQ4_K> {
  static constexpr size_t kBlockBytes = format::kQ4_KBlockBytes;
  static constexpr size_t kSteps = 8;
  static constexpr int kOffset = 0;
  static constexpr bool kMins = true;
};

// q4_1, q5_0, q5_1: one step per block; kHeader bytes precede the codes
// (d, m for the _1 types; qh for the q5 types, at kHeader - 4); the step's
// "mins" are -m, so that Step()'s fma(mins, negds) adds m * sum * d_b.
template <size_t kBytes, int kCodeOffset, bool kWithMin, bool kFive, size_t kHeaderBytes>
struct Block32WithHeaderTraits {
  static constexpr size_t kBlockBytes = kBytes;
  static constexpr size_t kSteps = 1;
  static constexpr int kOffset = kCodeOffset;
  static constexpr bool kMins = kWithMin;
  static constexpr bool kFiveBits = kFive;
  static constexpr size_t kHeader = kHeaderBytes;
};
template <>
struct Traits<Kind::kQ4_1> : Block32WithHeaderTraits<format::kQ4_1BlockBytes, 0, true, false, 4> {};
template <>
struct Traits<Kind::kQ5_0> : Block32WithHeaderTraits<format::kQ5_0BlockBytes, 16, false, true, 6> {};
template <>
struct Traits<Kind::kQ5_1> : Block32WithHeaderTraits<format::kQ5_1BlockBytes, 0, true, true, 8> {};

template <Kind K>
constexpr bool IsBlock32WithHeader() {
  return K == Kind::kQ4_1 || K == Kind::kQ5_0 || K == Kind::kQ5_1;
}

template <>
struct Traits<Kind::kQ5_K> {
  static constexpr size_t kBlockBytes = format::kQ5_KBlockBytes;
  static constexpr size_t kSteps = 8;
  static constexpr int kOffset = 0;
  static constexpr bool kMins = true;
};

// q4_k and q5_k: integer sums gathered over several steps, then folded
// (kernels_int.h).
template <Kind K>
constexpr bool IsKQuant() {
  return K == Kind::kQ4_K || K == Kind::kQ5_K;
}

// Inputs per tile of Rows()'s several-input sweep: the eight accumulators
// per input of q8_0 leave registers for two inputs, q5_k's sixteen for one,
// q4_k's four for three (on this EPYC VM three ran 1.1x faster than two and
// 1.2x faster than four, kernels_benchmark BM_MatMulQ4_K).
template <Kind K>
constexpr int TileOf() {
  return K == Kind::kQ8_0   ? 2
         : K == Kind::kQ5_K ? 1
         : K == Kind::kQ4_K ? 3
                            : static_cast<int>(kTile);
}

// Packed step: 8 weight vectors, the scale vector, and for q4_1 and q5_1 the
// mins. k-quants: the sub-block's scales and mins as int32, and in each
// block's first step its rows' d and dmin as float.
template <Kind K>
constexpr size_t StepBytes() {
  return (IsKQuant<K>() ? 12 : Traits<K>::kMins ? 10 : 9) * 64;
}

// Lane L of a packed vector holds row LaneRow(L) of its group; the map is
// its own inverse, so it also gives the lane of a row.
constexpr int LaneRow(int lane) { return 4 * (lane % 4) + lane / 4; }

// Four rows' 16 bytes in the four 128-bit lanes. Masked broadcast loads
// rather than inserts: they need a blend, not a shuffle, and the transposes
// that follow already keep the shuffle unit busy.
ZCPACK_VNNI512_INLINE __m512i Load4Rows(const uint8_t* p, size_t row_bytes) {
  auto row = [&](int r) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * row_bytes));
  };
  __m512i v = _mm512_castsi128_si512(row(0));
  v = _mm512_inserti32x4(v, row(1), 1);
  v = _mm512_inserti32x4(v, row(2), 2);
  return _mm512_inserti32x4(v, row(3), 3);
}

// out[s], lane L = dword s of the 16 bytes at p + LaneRow(L) * row_bytes.
ZCPACK_VNNI512_INLINE void Transpose(const uint8_t* p, size_t row_bytes, __m512i out[4]) {
  const __m512i a = Load4Rows(p, row_bytes);
  const __m512i b = Load4Rows(p + 4 * row_bytes, row_bytes);
  const __m512i c = Load4Rows(p + 8 * row_bytes, row_bytes);
  const __m512i d = Load4Rows(p + 12 * row_bytes, row_bytes);
  const __m512i ab_lo = _mm512_unpacklo_epi32(a, b);
  const __m512i ab_hi = _mm512_unpackhi_epi32(a, b);
  const __m512i cd_lo = _mm512_unpacklo_epi32(c, d);
  const __m512i cd_hi = _mm512_unpackhi_epi32(c, d);
  out[0] = _mm512_unpacklo_epi64(ab_lo, cd_lo);
  out[1] = _mm512_unpackhi_epi64(ab_lo, cd_lo);
  out[2] = _mm512_unpacklo_epi64(ab_hi, cd_hi);
  out[3] = _mm512_unpackhi_epi64(ab_hi, cd_hi);
}

// Lane L = the fp16 value in the first two bytes at p + LaneRow(L) * row_bytes.
// Scalar loads into a stack buffer: they use the load and store ports, which
// the transposes leave idle, instead of more shuffles.
ZCPACK_VNNI512_INLINE __m512 HalfColumn(const uint8_t* p, size_t row_bytes) {
  alignas(32) uint16_t halves[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) {
    std::memcpy(&halves[lane], p + LaneRow(lane) * row_bytes, sizeof(uint16_t));
  }
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(halves)));
}

// Where a group's blocks come from. Both give, for a block of the group,
// Words(o): four vectors whose lane L holds the four bytes [o, o + 4) ... [o +
// 12, o + 16) of the block of row Row(L), and Half(): lane L = the block's fp16
// scale (its first two bytes) as float.
//
// RowMajor: ggml's order; lane L is row LaneRow(L) (the transposes' order).
struct RowMajorSource {
  static constexpr bool kNaturalLanes = false;
  const uint8_t* block;  // the block in the group's first row
  size_t row_bytes;
  ZCPACK_VNNI512_INLINE void Words(size_t offset, __m512i out[4]) const {
    Transpose(block + offset, row_bytes, out);
  }
  ZCPACK_VNNI512_INLINE __m512 Half() const { return HalfColumn(block, row_bytes); }
};

// RowGroup: LAYOUT_ROW_GROUPS_16 (format/row_groups.h), where the block's
// tile already holds each word of the 16 rows side by side; lane L is row L.
struct RowGroupSource {
  static constexpr bool kNaturalLanes = true;
  const uint8_t* tile;  // the block's 16 * block-bytes tile
  size_t prefix;        // format::RowGroupPrefixBytes() of the dtype
  ZCPACK_VNNI512_INLINE void Words(size_t offset, __m512i out[4]) const {
    const uint8_t* words = tile + kLanes * prefix + kLanes * (offset - prefix);
    for (int s = 0; s < 4; ++s) out[s] = _mm512_loadu_si512(words + 64 * s);
  }
  ZCPACK_VNNI512_INLINE __m512 Half() const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile)));
  }
};

ZCPACK_VNNI512_INLINE void Store(uint8_t* out, size_t index, __m512i v) {
  _mm512_store_si512(reinterpret_cast<__m512i*>(out + 64 * index), v);
}
ZCPACK_VNNI512_INLINE void Store(uint8_t* out, size_t index, __m512 v) {
  _mm512_store_ps(reinterpret_cast<float*>(out + 64 * index), v);
}

// Lane by lane, byte i of the result is `nibbles`' byte i plus 0x10 when bit
// 4k + i of the lane's dword qh is set: the fifth bits of weights 4k .. 4k + 3.
ZCPACK_VNNI512_INLINE __m512i AddFifthBits(__m512i nibbles, __m512i qh, int k) {
  // Byte k / 2 of each dword, copied to the dword's four bytes.
  const __m512i dword_base = _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0);
  const __m512i spread = _mm512_shuffle_epi8(
      qh, _mm512_add_epi8(dword_base, _mm512_set1_epi8(static_cast<char>(k / 2))));
  const __m512i bit = _mm512_set1_epi32(k % 2 == 0 ? 0x08040201 : static_cast<int>(0x80402010u));
  const __mmask64 set = _mm512_test_epi8_mask(spread, bit);
  return _mm512_mask_add_epi8(nibbles, set, nibbles, _mm512_set1_epi8(0x10));
}

// The one step of a q4_0, q8_0, q4_1, q5_0 or q5_1 block of a full group, in
// registers (`mins` is written for q4_1 and q5_1 only).
template <Kind K, typename Source>
ZCPACK_VNNI512_INLINE void LoadBlock(const Source& src, __m512i w[8], __m512* scale,
                                     __m512* mins) {
  __m512i p[4];
  if constexpr (IsBlock32WithHeader<K>()) {
    constexpr size_t kHeader = Traits<K>::kHeader;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    src.Words(0, p);
    *scale = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(p[0]));
    if constexpr (Traits<K>::kMins) {
      const __m512 m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(p[0], 16)));
      *mins = _mm512_castsi512_ps(
          _mm512_xor_si512(_mm512_castps_si512(m), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
    }
    __m512i qh = _mm512_setzero_si512();
    if constexpr (Traits<K>::kFiveBits) {
      src.Words(kHeader - 4, p);
      qh = p[0];
    }
    src.Words(kHeader, p);
    for (int s = 0; s < 4; ++s) {
      w[s] = _mm512_and_si512(p[s], low4);
      w[4 + s] = _mm512_and_si512(_mm512_srli_epi16(p[s], 4), low4);
      if constexpr (Traits<K>::kFiveBits) {
        w[s] = AddFifthBits(w[s], qh, s);
        w[4 + s] = AddFifthBits(w[4 + s], qh, 4 + s);
      }
    }
    return;
  } else if constexpr (K == Kind::kQ4_0) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    src.Words(2, p);
    for (int s = 0; s < 4; ++s) {
      w[s] = _mm512_and_si512(p[s], low4);
      w[4 + s] = _mm512_and_si512(_mm512_srli_epi16(p[s], 4), low4);
    }
  } else {
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    src.Words(2, p);
    for (int s = 0; s < 4; ++s) w[s] = _mm512_xor_si512(p[s], bias);
    src.Words(18, p);
    for (int s = 0; s < 4; ++s) w[4 + s] = _mm512_xor_si512(p[s], bias);
  }
  *scale = src.Half();
}

// Each byte's bits from `bit` up moved to bit 4, then masked (0x10: one bit
// for q5_k's fifth bit, 0x30: q6_k's two high bits). 16-bit shifts are safe:
// the mask keeps only bits that came from the same byte.
ZCPACK_VNNI512_INLINE __m512i BitsToBit4(__m512i v, int bit, int mask) {
  const __m512i moved = bit <= 4 ? _mm512_slli_epi16(v, 4 - bit) : _mm512_srli_epi16(v, bit - 4);
  return _mm512_and_si512(moved, _mm512_set1_epi8(static_cast<char>(mask)));
}

// Packs the steps of one block of a full group into `out` (Traits<K>::kSteps
// steps of StepBytes<K>() bytes).
// Each dword lane's int16 v in both halves: the multiplier vpmaddwd needs to
// scale a lane's two int16 pair sums by v.
ZCPACK_VNNI512_INLINE __m512i BothHalves(__m512i v) {
  return _mm512_or_si512(_mm512_and_si512(v, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(v, 16));
}

// Two int16 lanes side by side in a dword: lo in the low half, hi above.
ZCPACK_VNNI512_INLINE __m512i Int16Pair(__m512i lo, __m512i hi) {
  return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(hi, 16));
}
ZCPACK_VNNI512_INLINE __m512i Int16Pair(int32_t lo, int32_t hi) {
  return _mm512_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xffff) |
                                                (static_cast<uint32_t>(hi) << 16)));
}

template <Kind K, typename Source>
ZCPACK_VNNI512_INLINE void PackBlock(const Source& src, uint8_t* out) {
  if constexpr (Traits<K>::kSteps == 1) {
    __m512i w[8];
    __m512 scale;
    __m512 mins;
    LoadBlock<K>(src, w, &scale, &mins);
    for (int k = 0; k < 8; ++k) Store(out, k, w[k]);
    Store(out, 8, scale);
    if constexpr (Traits<K>::kMins) Store(out, 9, mins);
  } else {  // q4_k and q5_k: the same header, q5_k adds fifth bits
    constexpr size_t kQs = K == Kind::kQ5_K ? 48 : 16;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512i p[4];
    // Header: d and dmin, then the 12 scale bytes, as four dwords.
    src.Words(0, p);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(p[0]));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(p[0], 16)));
    const __m512i six = _mm512_set1_epi32(63);
    const __m512i four = _mm512_set1_epi32(15);
    const __m512i two = _mm512_set1_epi32(3);
    __m512i sc[8], m[8];
    for (int s = 0; s < 8; ++s) {
      if (s < 4) {
        sc[s] = _mm512_and_si512(_mm512_srli_epi32(p[1], 8 * s), six);
        m[s] = _mm512_and_si512(_mm512_srli_epi32(p[2], 8 * s), six);
      } else {
        const int shift = 8 * (s - 4);
        sc[s] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi32(p[3], shift), four),
            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(p[1], shift + 6), two), 4));
        m[s] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi32(p[3], shift + 4), four),
            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(p[2], shift + 6), two), 4));
      }
    }
    for (int s = 0; s < 8; ++s) {
      uint8_t* step = out + s * StepBytes<K>();
      // The scale as the product kernels read it: int32 for vpmulld (q4_k),
      // in both int16 halves for vpdpwssd (q5_k).
      Store(step, 8, K == Kind::kQ4_K ? sc[s] : BothHalves(sc[s]));
      // Even steps: the mins of this sub-block and the next as an int16 pair.
      if (s % 2 == 0) Store(step, 9, Int16Pair(m[s], m[s + 1]));
    }
    Store(out, 10, d);
    Store(out, 11, dmin);
    // Nibbles: chunk c of 32 bytes holds sub-block 2c in its low nibbles and
    // 2c + 1 in its high nibbles; half h holds weights [16h, 16h + 16).
    for (int c = 0; c < 4; ++c) {
      uint8_t* even = out + (2 * c) * StepBytes<K>();
      uint8_t* odd = out + (2 * c + 1) * StepBytes<K>();
      for (int h = 0; h < 2; ++h) {
        src.Words(kQs + 32 * c + 16 * h, p);
        __m512i qh[4];
        if constexpr (K == Kind::kQ5_K) src.Words(16 + 16 * h, qh);
        for (int s = 0; s < 4; ++s) {
          __m512i lo = _mm512_and_si512(p[s], low4);
          __m512i hi = _mm512_and_si512(_mm512_srli_epi16(p[s], 4), low4);
          if constexpr (K == Kind::kQ5_K) {
            lo = _mm512_or_si512(lo, BitsToBit4(qh[s], 2 * c, 0x10));
            hi = _mm512_or_si512(hi, BitsToBit4(qh[s], 2 * c + 1, 0x10));
          }
          Store(even, 4 * h + s, lo);
          Store(odd, 4 * h + s, hi);
        }
      }
    }
  }
}

ZCPACK_VNNI512_INLINE __m512i Broadcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// SumQ8Words(), lane by lane.
ZCPACK_VNNI512_INLINE __m512 SumWords(const __m512 y[kQ8Words]) {
  return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(y[0], y[4]), _mm512_add_ps(y[2], y[6])),
                       _mm512_add_ps(_mm512_add_ps(y[1], y[5]), _mm512_add_ps(y[3], y[7])));
}

// The accumulators of one input: one float vector, or one per 4-byte word of
// the blocks for q8_0 and q5_k (kernels_int.h). The k-quants also gather
// integer sums (per word for q5_k) and the mins' integer sum until a fold,
// and keep the mins' float sum apart. Total() gives the lanes' results.
template <Kind K>
struct Accumulator {
  static constexpr size_t kWords = K == Kind::kQ8_0 || K == Kind::kQ5_K ? kQ8Words : 1;
  __m512 v[kWords];
  __m512i ints[kWords];
  __m512i mins;
  __m512 float_mins;
};

template <Kind K>
ZCPACK_VNNI512_INLINE void Zero(Accumulator<K>& acc) {
  for (auto& v : acc.v) v = _mm512_setzero_ps();
  if constexpr (IsKQuant<K>()) {
    for (auto& i : acc.ints) i = _mm512_setzero_si512();
    acc.mins = _mm512_setzero_si512();
    acc.float_mins = _mm512_setzero_ps();
  }
}

template <Kind K>
ZCPACK_VNNI512_INLINE __m512 Total(const Accumulator<K>& acc) {
  if constexpr (K == Kind::kQ4_K) {
    return _mm512_sub_ps(acc.v[0], acc.float_mins);
  } else if constexpr (K == Kind::kQ5_K) {
    return _mm512_add_ps(SumWords(acc.v), acc.float_mins);
  } else if constexpr (Accumulator<K>::kWords == 1) {
    return acc.v[0];
  } else {
    return SumWords(acc.v);
  }
}

// A k-quant step (32-block st, sub-block st % 8 of its super-block) of input
// j: the integer sums grow, and every Q4_KFoldSteps() steps for q4_k (every
// super-block for q5_k) they are folded into the float sums. `step` is the
// packed step; its block's first step holds d and dmin.
template <Kind K>
ZCPACK_VNNI512_INLINE void KQuantStep(const uint8_t* step, const __m512i w[8], __m512i sc,
                                      __m512i m, const QuantizedActivations& a, size_t j,
                                      size_t st, Accumulator<K>& acc) {
  const int8_t* xq = a.qs(j) + st * kActivationBlock;
  if (st % 2 == 0) {
    // Even steps: this sub-block's and the next one's mins (< 64) times
    // their sums (|sum| <= 32 * 127), as int16 pairs.
    acc.mins = _mm512_dpwssd_epi32(acc.mins, m, Int16Pair(a.sum(j)[st], a.sum(j)[st + 1]));
  }
  if constexpr (K == Kind::kQ4_K) {
    __m512i i0 = _mm512_setzero_si512();
    __m512i i1 = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
      i0 = _mm512_dpbusd_epi32(i0, w[k], Broadcast32(xq + 4 * k));
      i1 = _mm512_dpbusd_epi32(i1, w[k + 1], Broadcast32(xq + 4 * k + 4));
    }
    acc.ints[0] = _mm512_add_epi32(acc.ints[0], _mm512_mullo_epi32(_mm512_add_epi32(i0, i1), sc));
  } else {
    // Each word alone: two pair sums of at most 2 * 31 * 127, times the scale
    // (in both halves).
    for (size_t k = 0; k < kQ8Words; ++k) {
      acc.ints[k] =
          _mm512_dpwssd_epi32(acc.ints[k], _mm512_maddubs_epi16(w[k], Broadcast32(xq + 4 * k)), sc);
    }
  }
  const size_t fold = K == Kind::kQ4_K ? Q4_KFoldSteps(j, a.n()) : 8;
  if (((st + 1) & (fold - 1)) != 0) return;
  const uint8_t* first = step - (st % 8) * StepBytes<K>();
  const __m512 d = _mm512_load_ps(reinterpret_cast<const float*>(first + 64 * 10));
  const __m512 dmin = _mm512_load_ps(reinterpret_cast<const float*>(first + 64 * 11));
  const __m512 da = _mm512_set1_ps(a.d(j)[st]);
  if constexpr (K == Kind::kQ4_K) {
    acc.v[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc.ints[0]), _mm512_mul_ps(d, da), acc.v[0]);
    acc.float_mins =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc.mins), _mm512_mul_ps(dmin, da), acc.float_mins);
  } else {
    const __m512 dd = _mm512_mul_ps(da, d);
    for (size_t k = 0; k < kQ8Words; ++k) {
      acc.v[k] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(acc.ints[k]), acc.v[k]);
    }
    const __m512 neg_dm = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(_mm512_mul_ps(da, dmin)), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
    acc.float_mins = _mm512_fmadd_ps(neg_dm, _mm512_cvtepi32_ps(acc.mins), acc.float_mins);
  }
  for (auto& i : acc.ints) i = _mm512_setzero_si512();
  acc.mins = _mm512_setzero_si512();
}

// One step (32-block st) of input j: acc + the step's contribution, per lane.
// For the k-quants, scale and mins hold the step's int32 scales and mins,
// and `step` is the packed step.
template <Kind K>
ZCPACK_VNNI512_INLINE void Step(const uint8_t* step, const __m512i w[8], __m512 scale,
                                __m512 mins, const QuantizedActivations& a, size_t j, size_t st,
                                Accumulator<K>& acc) {
  if constexpr (IsKQuant<K>()) {
    KQuantStep<K>(step, w, _mm512_castps_si512(scale), _mm512_castps_si512(mins), a, j, st, acc);
    return;
  }
  const int8_t* xq = a.qs(j) + st * kActivationBlock;
  const __m512 s = _mm512_mul_ps(scale, _mm512_set1_ps(a.d(j)[st]));
  if constexpr (K == Kind::kQ8_0) {
    // Word k's sum alone, the weights' bias of 128 taken out by its offset.
    const int32_t* offsets = a.q8_offsets(j) + st * kQ8Words;
    for (size_t k = 0; k < kQ8Words; ++k) {
      const __m512i i =
          _mm512_dpbusd_epi32(_mm512_set1_epi32(offsets[k]), w[k], Broadcast32(xq + 4 * k));
      acc.v[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), s, acc.v[k]);
    }
    return;
  }
  __m512i i0 = _mm512_set1_epi32(-Traits<K>::kOffset * a.sum(j)[st]);
  __m512i i1 = _mm512_setzero_si512();
  i0 = _mm512_dpbusd_epi32(i0, w[0], Broadcast32(xq));
  i1 = _mm512_dpbusd_epi32(i1, w[1], Broadcast32(xq + 4));
  i0 = _mm512_dpbusd_epi32(i0, w[2], Broadcast32(xq + 8));
  i1 = _mm512_dpbusd_epi32(i1, w[3], Broadcast32(xq + 12));
  i0 = _mm512_dpbusd_epi32(i0, w[4], Broadcast32(xq + 16));
  i1 = _mm512_dpbusd_epi32(i1, w[5], Broadcast32(xq + 20));
  i0 = _mm512_dpbusd_epi32(i0, w[6], Broadcast32(xq + 24));
  i1 = _mm512_dpbusd_epi32(i1, w[7], Broadcast32(xq + 28));
  const __m512 isum = _mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1));
  acc.v[0] = _mm512_fmadd_ps(isum, s, acc.v[0]);
  if constexpr (Traits<K>::kMins) {
    acc.v[0] = _mm512_fmadd_ps(mins, _mm512_set1_ps(a.negds(j)[st]), acc.v[0]);
  }
}

// Writes lanes' results for inputs to y in row order (valid rows only).
template <bool kNaturalLanes>
ZCPACK_VNNI512_INLINE void StoreRows(__m512 acc, float* y, __mmask16 valid) {
  if constexpr (kNaturalLanes) {
    _mm512_mask_storeu_ps(y, valid, acc);
    return;
  }
  const __m512i to_rows = _mm512_setr_epi32(LaneRow(0), LaneRow(1), LaneRow(2), LaneRow(3),
                                            LaneRow(4), LaneRow(5), LaneRow(6), LaneRow(7),
                                            LaneRow(8), LaneRow(9), LaneRow(10), LaneRow(11),
                                            LaneRow(12), LaneRow(13), LaneRow(14), LaneRow(15));
  _mm512_mask_storeu_ps(y, valid, _mm512_permutexvar_ps(to_rows, acc));
}

// T inputs [j0, j0 + T) over `steps` packed steps.
template <Kind K, int T, bool kNaturalLanes>
ZCPACK_VNNI512_INLINE void SweepTile(const uint8_t* packed, size_t steps,
                                     const QuantizedActivations& a, size_t j0, float* y,
                                     size_t y_stride, __mmask16 valid) {
  Accumulator<K> acc[T];
  for (int t = 0; t < T; ++t) Zero(acc[t]);
  for (size_t st = 0; st < steps; ++st) {
    const uint8_t* step = packed + st * StepBytes<K>();
    __m512i w[8];
    for (int k = 0; k < 8; ++k) w[k] = _mm512_load_si512(step + 64 * k);
    const __m512 scale = _mm512_load_ps(reinterpret_cast<const float*>(step + 64 * 8));
    __m512 mins = _mm512_setzero_ps();
    if constexpr (Traits<K>::kMins) mins = _mm512_load_ps(reinterpret_cast<const float*>(step + 64 * 9));
    for (int t = 0; t < T; ++t) {
      Step<K>(step, w, scale, mins, a, j0 + static_cast<size_t>(t), st, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    StoreRows<kNaturalLanes>(Total(acc[t]), y + (j0 + static_cast<size_t>(t)) * y_stride, valid);
  }
}

// The packed group Rows() keeps: every block's steps for a batch of inputs,
// one block's for a single input.
template <Kind K>
constexpr size_t PackedBytes(size_t row_bytes, size_t n) {
  const size_t steps = row_bytes / Traits<K>::kBlockBytes * Traits<K>::kSteps;
  return (n == 1 ? Traits<K>::kSteps : steps) * StepBytes<K>();
}

// Groups of 16 rows in [row_begin, row_end) of a matrix in `layout`: for
// row-major matrices any range (a partial last group is computed from a
// zero-padded copy), for row-grouped ones whole groups.
template <Kind K, format::TensorLayout kLayout>
ZCPACK_VNNI512 void Rows(const WeightView& w, const QuantizedActivations& a, float* y,
                         size_t y_stride, uint64_t row_begin, uint64_t row_end) {
  constexpr size_t kBlockBytes = Traits<K>::kBlockBytes;
  constexpr size_t kSteps = Traits<K>::kSteps;
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = row_bytes / kBlockBytes;
  const size_t steps = blocks * kSteps;
  const size_t n = a.n();
  const size_t group_bytes = kLanes * row_bytes;
  // Scratch: the packed group (one block's steps for a single input), then
  // room for a zero-padded copy of a partial group.
  const size_t packed_bytes = PackedBytes<K>(row_bytes, n);
  uint8_t* const packed = ThreadScratch(packed_bytes + group_bytes);
  uint8_t* const padded = packed + packed_bytes;
  constexpr bool kGrouped = kLayout == format::LAYOUT_ROW_GROUPS_16;
  const size_t prefix = format::RowGroupPrefixBytes(w.dtype);
  // Both layouts are prefetched in software, in the order the loop reads:
  // 16 row-major rows are 16 streams, which the hardware prefetchers do not
  // follow, and even the single stream of a row-grouped matrix ran at about
  // two thirds of the speed without it on one thread (Intel Xeon, AVX-512).
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, group_bytes);
  auto source = [&](const uint8_t* group, size_t b) {
    if constexpr (kGrouped) {
      return RowGroupSource{group + b * kLanes * kBlockBytes, prefix};
    } else {
      return RowMajorSource{group + b * kBlockBytes, row_bytes};
    }
  };
  constexpr bool kNatural = decltype(source(nullptr, 0))::kNaturalLanes;
  for (uint64_t r0 = row_begin; r0 < row_end; r0 += kLanes) {
    const size_t rows = static_cast<size_t>(std::min<uint64_t>(kLanes, row_end - r0));
    const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
    const uint8_t* group = w.data + r0 * row_bytes;
    if (!kGrouped && rows < kLanes) {
      std::memcpy(padded, group, rows * row_bytes);
      std::memset(padded + rows * row_bytes, 0, (kLanes - rows) * row_bytes);
      group = padded;
    }
    if (n == 1) {
      Accumulator<K> acc;
      Zero(acc);
      for (size_t b = 0; b < blocks; ++b) {
        prefetch.Advance(kLanes * kBlockBytes);
        const auto src = source(group, b);
        if constexpr (Traits<K>::kSteps == 1) {
          __m512i wv[8];
          __m512 scale;
          __m512 mins = _mm512_setzero_ps();
          LoadBlock<K>(src, wv, &scale, &mins);
          Step<K>(nullptr, wv, scale, mins, a, 0, b, acc);
          continue;
        }
        PackBlock<K>(src, packed);
        for (size_t s = 0; s < kSteps; ++s) {
          const uint8_t* step = packed + s * StepBytes<K>();
          __m512i wv[8];
          for (int k = 0; k < 8; ++k) wv[k] = _mm512_load_si512(step + 64 * k);
          const __m512 scale = _mm512_load_ps(reinterpret_cast<const float*>(step + 64 * 8));
          const __m512 mins = _mm512_load_ps(reinterpret_cast<const float*>(step + 64 * 9));
          Step<K>(step, wv, scale, mins, a, 0, b * kSteps + s, acc);
        }
      }
      StoreRows<kNatural>(Total(acc), y + r0, valid);
      continue;
    }
    for (size_t b = 0; b < blocks; ++b) {
      prefetch.Advance(kLanes * kBlockBytes);
      PackBlock<K>(source(group, b), packed + b * kSteps * StepBytes<K>());
    }
    float* out = y + r0;
    size_t j = 0;
    constexpr size_t kInputs = static_cast<size_t>(TileOf<K>());
    for (; j + kInputs <= n; j += kInputs) {
      SweepTile<K, TileOf<K>(), kNatural>(packed, steps, a, j, out, y_stride, valid);
    }
    switch (n - j) {
      case 3: SweepTile<K, 3, kNatural>(packed, steps, a, j, out, y_stride, valid); break;
      case 2: SweepTile<K, 2, kNatural>(packed, steps, a, j, out, y_stride, valid); break;
      case 1: SweepTile<K, 1, kNatural>(packed, steps, a, j, out, y_stride, valid); break;
      default: break;
    }
  }
}

// ------------------------------------------------------------------ q6_k ---
// Row-major only. A super-block of a group is packed into 8 steps of
// kQ6StepBytes: the 32 six-bit values of each row (unsigned, 0..63) as eight
// vectors of four bytes per lane, then the rows' fp16 d as float, then the
// int8 scales of the step's two 16-element sub-blocks, each in both int16
// halves of its lane, then the two times -32 side by side (low, high).
constexpr size_t kQ6StepBytes = 12 * 64;

ZCPACK_VNNI512_INLINE void PackQ6Block(const RowMajorSource& src, uint8_t* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i p[4];
  src.Words(192, p);  // scales[16]
  __m512i sc[16];
  for (int t = 0; t < 16; ++t) {
    sc[t] = _mm512_srai_epi32(_mm512_slli_epi32(p[t / 4], 24 - 8 * (t % 4)), 24);
  }
  src.Words(194, p);  // the last word holds bytes 206..209: d is its top half
  const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(p[3], 16)));
  for (int st = 0; st < 8; ++st) {
    uint8_t* step = out + st * kQ6StepBytes;
    Store(step, 8, d);
    Store(step, 9, BothHalves(sc[2 * st]));
    Store(step, 10, BothHalves(sc[2 * st + 1]));
    Store(step, 11, Int16Pair(_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sc[2 * st], 5)),
                              _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sc[2 * st + 1], 5))));
  }
  for (int half = 0; half < 2; ++half) {
    for (int h = 0; h < 2; ++h) {
      __m512i qh[4], ql0[4], ql1[4];
      src.Words(128 + 32 * half + 16 * h, qh);
      src.Words(64 * half + 16 * h, ql0);
      src.Words(64 * half + 32 + 16 * h, ql1);
      for (int g = 0; g < 4; ++g) {
        const __m512i* ql = g % 2 == 0 ? ql0 : ql1;
        uint8_t* step = out + (4 * half + g) * kQ6StepBytes;
        for (int s = 0; s < 4; ++s) {
          const __m512i nibble =
              _mm512_and_si512(g < 2 ? ql[s] : _mm512_srli_epi16(ql[s], 4), low4);
          Store(step, 4 * h + s, _mm512_or_si512(nibble, BitsToBit4(qh[s], 2 * g, 0x30)));
        }
      }
    }
  }
}

// q6_k's accumulators of one input: per word, the super-block's integer sum
// and the float sum (kernels_int.h).
struct Q6Accumulator {
  __m512i ints[kQ8Words];
  __m512 v[kQ8Words];
};

ZCPACK_VNNI512_INLINE void Zero(Q6Accumulator& acc) {
  for (size_t k = 0; k < kQ8Words; ++k) {
    acc.ints[k] = _mm512_setzero_si512();
    acc.v[k] = _mm512_setzero_ps();
  }
}

// One packed q6_k step against input j's 32-block st, step s (= st % 8) of
// its super-block: each word's integer sum grows (values <= 63 times int8:
// pair sums of at most 2 * 63 * 127, times the scale), and word s takes the
// codes' offset of 32 over this 32-block (-32 * scale times the 16-sums).
ZCPACK_VNNI512_INLINE void Q6Step(const uint8_t* step, const QuantizedActivations& a, size_t j, size_t st,
                   size_t s, Q6Accumulator& acc) {
  const int8_t* xq = a.qs(j) + st * kActivationBlock;
  const __m512i sc_lo = _mm512_load_si512(step + 64 * 9);
  const __m512i sc_hi = _mm512_load_si512(step + 64 * 10);
  for (size_t k = 0; k < kQ8Words; ++k) {
    const __m512i pairs = _mm512_maddubs_epi16(_mm512_load_si512(step + 64 * k), Broadcast32(xq + 4 * k));
    acc.ints[k] = _mm512_dpwssd_epi32(acc.ints[k], pairs, k < 4 ? sc_lo : sc_hi);
  }
  const int32_t* sum16 = a.sum16(j) + 2 * st;
  acc.ints[s] = _mm512_dpwssd_epi32(acc.ints[s], _mm512_load_si512(step + 64 * 11), Int16Pair(sum16[0], sum16[1]));
}

// The end of super-block sb of input j (`first` is its packed first step):
// each word's sum is folded into its float sum.
ZCPACK_VNNI512_INLINE void Q6Fold(const uint8_t* first, const QuantizedActivations& a, size_t j,
                                  size_t sb, Q6Accumulator& acc) {
  const __m512 d = _mm512_load_ps(reinterpret_cast<const float*>(first + 64 * 8));
  const __m512 dd = _mm512_mul_ps(_mm512_set1_ps(a.d(j)[8 * sb]), d);
  for (size_t k = 0; k < kQ8Words; ++k) {
    acc.v[k] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(acc.ints[k]), acc.v[k]);
    acc.ints[k] = _mm512_setzero_si512();
  }
}

// Input j over `steps` packed steps.
ZCPACK_VNNI512_INLINE void SweepQ6(const uint8_t* packed, size_t steps,
                                   const QuantizedActivations& a, size_t j, float* y,
                                   size_t y_stride, __mmask16 valid) {
  Q6Accumulator acc;
  Zero(acc);
  for (size_t b = 0; b < steps / 8; ++b) {
    const uint8_t* first = packed + 8 * b * kQ6StepBytes;
#pragma GCC unroll 8
    for (size_t s = 0; s < 8; ++s) Q6Step(first + s * kQ6StepBytes, a, j, 8 * b + s, s, acc);
    Q6Fold(first, a, j, b, acc);
  }
  StoreRows<false>(SumWords(acc.v), y + j * y_stride, valid);
}

// PackedBytes() of RowsQ6_K().
constexpr size_t PackedQ6Bytes(size_t row_bytes, size_t n) {
  return (n == 1 ? 8 : row_bytes / format::kQ6_KBlockBytes * 8) * kQ6StepBytes;
}

// As Rows() for a row-major matrix.
ZCPACK_VNNI512 void RowsQ6_K(const WeightView& w, const QuantizedActivations& a, float* y,
                             size_t y_stride, uint64_t row_begin, uint64_t row_end) {
  constexpr size_t kBlockBytes = format::kQ6_KBlockBytes;
  const size_t row_bytes = w.row_bytes();
  const size_t blocks = row_bytes / kBlockBytes;
  const size_t steps = blocks * 8;
  const size_t n = a.n();
  const size_t group_bytes = kLanes * row_bytes;
  const size_t packed_bytes = PackedQ6Bytes(row_bytes, n);
  uint8_t* const packed = ThreadScratch(packed_bytes + group_bytes);
  uint8_t* const padded = packed + packed_bytes;
  PrefetchStream prefetch(w.data, row_begin * row_bytes, row_end * row_bytes, group_bytes);
  for (uint64_t r0 = row_begin; r0 < row_end; r0 += kLanes) {
    const size_t rows = static_cast<size_t>(std::min<uint64_t>(kLanes, row_end - r0));
    const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
    const uint8_t* group = w.data + r0 * row_bytes;
    if (rows < kLanes) {
      std::memcpy(padded, group, rows * row_bytes);
      std::memset(padded + rows * row_bytes, 0, (kLanes - rows) * row_bytes);
      group = padded;
    }
    if (n == 1) {
      Q6Accumulator acc;
      Zero(acc);
      for (size_t b = 0; b < blocks; ++b) {
        prefetch.Advance(kLanes * kBlockBytes);
        PackQ6Block(RowMajorSource{group + b * kBlockBytes, row_bytes}, packed);
#pragma GCC unroll 8
        for (size_t s = 0; s < 8; ++s) Q6Step(packed + s * kQ6StepBytes, a, 0, b * 8 + s, s, acc);
        Q6Fold(packed, a, 0, b, acc);
      }
      StoreRows<false>(SumWords(acc.v), y + r0, valid);
      continue;
    }
    for (size_t b = 0; b < blocks; ++b) {
      prefetch.Advance(kLanes * kBlockBytes);
      PackQ6Block(RowMajorSource{group + b * kBlockBytes, row_bytes}, packed + b * 8 * kQ6StepBytes);
    }
    for (size_t j = 0; j < n; ++j) SweepQ6(packed, steps, a, j, y + r0, y_stride, valid);
  }
}

// ------------------------------------------------------------- quantizer ---

// Super-block (q8_K) activations, in the arithmetic of kernels_int.h: the
// scale from the first element of largest |x|, the quants 16 floats per
// vector; FinishSuperBlock() derives the rest from the int8 values.
ZCPACK_VNNI512 void QuantizeSuperBlocks(const float* x, QuantizedActivations& a, size_t j) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  constexpr int kVectors = static_cast<int>(kActivationSuperBlock / 16);
  for (size_t sb = 0; sb < a.cols() / kActivationSuperBlock; ++sb) {
    const float* xb = x + sb * kActivationSuperBlock;
    int8_t* qb = a.qs(j) + sb * kActivationSuperBlock;
    __m512 amax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int i = 0; i < kVectors; ++i) {
      const __m512 v = _mm512_loadu_ps(xb + 16 * i);
      bad |= _mm512_fpclass_ps_mask(v, 0x99);  // QNaN | SNaN | +inf | -inf
      amax = _mm512_max_ps(amax, _mm512_andnot_ps(sign, v));
    }
    if (bad != 0) {
      SetNonFiniteSuperBlock(a, j, sb);
      continue;
    }
    const float amax_f = _mm512_reduce_max_ps(amax);
    float iscale = 0.0f;
    if (amax_f != 0.0f) {
      const __m512 target = _mm512_set1_ps(amax_f);
      for (int i = 0; i < kVectors; ++i) {
        const __m512 abs = _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + 16 * i));
        const __mmask16 mask = _mm512_cmp_ps_mask(abs, target, _CMP_EQ_OQ);
        if (mask != 0) {
          iscale = -127.0f / xb[16 * i + __builtin_ctz(static_cast<unsigned>(mask))];
          break;
        }
      }
    }
    if (iscale == 0.0f || __builtin_isinf(iscale)) {
      std::memset(qb, 0, kActivationSuperBlock);
      FinishSuperBlock(a, j, sb, 0.0f);
      continue;
    }
    const __m512 scale = _mm512_set1_ps(iscale);
    const __m512i cap = _mm512_set1_epi32(127);
    for (int i = 0; i < kVectors; ++i) {
      const __m512i q = _mm512_min_epi32(
          _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * i), scale)), cap);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16 * i), _mm512_cvtepi32_epi8(q));
    }
    FinishSuperBlock(a, j, sb, 1.0f / iscale);
  }
}

ZCPACK_VNNI512 void Quantize(const float* x, QuantizedActivations& a, size_t j) {
  int8_t* qs = a.qs(j);
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (size_t b = 0; b < a.blocks(); ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * kActivationBlock);
    const __m512 x1 = _mm512_loadu_ps(x + b * kActivationBlock + 16);
    // Non-finite lanes: class 0x99 = QNaN | SNaN | +inf | -inf.
    const __mmask16 bad = _mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99);
    int8_t* qb = qs + b * kActivationBlock;
    if (bad != 0) {
      std::memset(qb, 0, kActivationBlock);
      a.d(j)[b] = __builtin_nanf("");
      a.sum(j)[b] = 0;
      a.negds(j)[b] = __builtin_nanf("");
      continue;
    }
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
    const float d = amax / 127.0f;
    // 127 / max overflows for maxima below about 3.7e-37, whose scale is 0
    // in binary16 anyway: such a block is stored as zeros.
    const float id = amax >= 127.0f / 3.4028235e38f ? 127.0f / amax : 0.0f;
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(id)));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(id)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), _mm512_cvtepi32_epi8(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    // The scale is kept in binary16, as ggml's block_q8_0 keeps it, so
    // products match llama.cpp's; the quants were rounded with the exact one.
    a.d(j)[b] = format::HalfToFloat(format::FloatToHalf(d));
    a.sum(j)[b] = sum;
    a.negds(j)[b] = -(static_cast<float>(sum) * a.d(j)[b]);
  }
  FillQ8Offsets(a, j);
}

// DotKernels::thread_scratch: what Rows() and RowsQ6_K() ask ThreadScratch()
// for.
size_t ScratchBytes(const WeightView& w, size_t n) {
  const size_t row_bytes = w.row_bytes();
  size_t packed = 0;
  switch (w.dtype) {
    case format::DTYPE_Q4_0: packed = PackedBytes<Kind::kQ4_0>(row_bytes, n); break;
    case format::DTYPE_Q4_K: packed = PackedBytes<Kind::kQ4_K>(row_bytes, n); break;
    case format::DTYPE_Q8_0: packed = PackedBytes<Kind::kQ8_0>(row_bytes, n); break;
    case format::DTYPE_Q4_1: packed = PackedBytes<Kind::kQ4_1>(row_bytes, n); break;
    case format::DTYPE_Q5_0: packed = PackedBytes<Kind::kQ5_0>(row_bytes, n); break;
    case format::DTYPE_Q5_1: packed = PackedBytes<Kind::kQ5_1>(row_bytes, n); break;
    case format::DTYPE_Q5_K: packed = PackedBytes<Kind::kQ5_K>(row_bytes, n); break;
    case format::DTYPE_Q6_K: packed = PackedQ6Bytes(row_bytes, n); break;
    default: return 0;
  }
  return packed + kLanes * row_bytes;
}

constexpr auto kRowMajor = format::LAYOUT_ROW_MAJOR;
constexpr auto kRowGroups = format::LAYOUT_ROW_GROUPS_16;
constexpr DotKernels kKernels = {
    DotIsa::kAvx512Vnni,
    kLanes,
    Quantize,
    Rows<Kind::kQ4_0, kRowMajor>,
    Rows<Kind::kQ4_K, kRowMajor>,
    Rows<Kind::kQ8_0, kRowMajor>,
    Rows<Kind::kQ4_0, kRowGroups>,
    Rows<Kind::kQ4_K, kRowGroups>,
    Rows<Kind::kQ8_0, kRowGroups>,
    Rows<Kind::kQ4_1, kRowMajor>,
    Rows<Kind::kQ5_0, kRowMajor>,
    Rows<Kind::kQ5_1, kRowMajor>,
    QuantizeSuperBlocks,
    Rows<Kind::kQ5_K, kRowMajor>,
    RowsQ6_K,
    ScratchBytes,
};

}  // namespace

const DotKernels* Avx512VnniDotKernels() { return &kKernels; }

}  // namespace zcpack::runtime::kernels_internal

#else  // not x86

namespace zcpack::runtime::kernels_internal {
const DotKernels* Avx512VnniDotKernels() { return nullptr; }
}  // namespace zcpack::runtime::kernels_internal

#endif
