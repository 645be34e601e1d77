// Quantized block decoders (q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k)
// and bulk conversion of stored element types to float. (The file keeps its
// historical q4 name.)
//
// The decoders below are the definition of the q4_0, q4_1, q5_0, q5_1, q8_0,
// q4_k, q5_k and q6_k block bytes: whatever they compute from a block is what
// that block means. The layouts are byte-identical to ggml's block_q4_0,
// block_q4_1, block_q5_0, block_q5_1, block_q8_0, block_q4_K, block_q5_K and
// block_q6_K (ggml-common.h), and every decoded float equals what ggml's
// dequantize_row_q4_0 / _q4_1 / _q5_0 / _q5_1 / _q8_0 / _q4_K / _q5_K / _q6_K
// compute from the same bytes.
//
// q4_0 block (kQ4_0BlockBytes = 18 bytes, kQ4_0BlockElements = 32 weights):
//
//   byte  0       2                                  18
//         +-------+----------------------------------+
//         | d     | qs[16]                           |
//         +-------+----------------------------------+
//   d: IEEE binary16 scale, little-endian.
//   element j (0 <= j < 16)  = ((qs[j] & 0xF) - 8) * d
//   element j + 16           = ((qs[j] >> 4)  - 8) * d
//
// q4_1 block (kQ4_1BlockBytes = 20 bytes, kQ4_1BlockElements = 32 weights):
//
//   byte  0       2       4                                  20
//         +-------+-------+----------------------------------+
//         | d     | m     | qs[16]                           |
//         +-------+-------+----------------------------------+
//   d, m: IEEE binary16 scale and offset, little-endian.
//   element j (0 <= j < 16)  = (qs[j] & 0xF) * d + m
//   element j + 16           = (qs[j] >> 4)  * d + m
//
// q5_0 block (kQ5_0BlockBytes = 22 bytes, kQ5_0BlockElements = 32 weights):
//
//   byte  0       2               6                                  22
//         +-------+---------------+----------------------------------+
//         | d     | qh            | qs[16]                           |
//         +-------+---------------+----------------------------------+
//   d: binary16 scale, little-endian. qh: a little-endian uint32 whose bit e
//   is the fifth (value 16) bit of element e's code, e in [0, 32).
//   u_j       = (qs[j] & 0xF) | (((qh >> j) & 1) << 4)          (0 <= j < 16)
//   u_{j+16}  = (qs[j] >> 4)  | (((qh >> (j + 16)) & 1) << 4)
//   element e = (u_e - 16) * d
//
// q5_1 block (kQ5_1BlockBytes = 24 bytes, kQ5_1BlockElements = 32 weights):
//
//   byte  0       2       4               8                                  24
//         +-------+-------+---------------+----------------------------------+
//         | d     | m     | qh            | qs[16]                           |
//         +-------+-------+---------------+----------------------------------+
//   d, m: binary16, little-endian; qh and the codes u_e as in q5_0.
//   element e = u_e * d + m
//
// q4_k super-block (kQ4_KBlockBytes = 144 bytes, kQ4_KBlockElements = 256):
//
//   byte  0      2      4              16                                 144
//         +------+------+--------------+----------------------------------+
//         | d    | dmin | scales[12]   | qs[128]                          |
//         +------+------+--------------+----------------------------------+
//   d, dmin: binary16, little-endian. Eight sub-blocks of 32 weights; sub-block
//   s has a 6-bit scale sc[s] and a 6-bit min m[s] packed in scales[]:
//     s < 4:  sc[s] = scales[s] & 63,   m[s] = scales[s + 4] & 63
//     s >= 4: sc[s] = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4)
//             m[s]  = (scales[s + 4] >> 4)  | ((scales[s]     >> 6) << 4)
//   qs holds four 32-byte chunks; chunk c covers elements [64c, 64c + 64):
//   the low nibble of qs[32c + l] is element 64c + l (sub-block 2c) and the
//   high nibble is element 64c + 32 + l (sub-block 2c + 1), l in [0, 32).
//   element = (d * sc[s]) * q - (dmin * m[s]).
//
// q8_0 block (kQ8_0BlockBytes = 34 bytes, kQ8_0BlockElements = 32 weights):
//
//   byte  0       2                                                  34
//         +-------+--------------------------------------------------+
//         | d     | qs[32]                                           |
//         +-------+--------------------------------------------------+
//   d: IEEE binary16 scale, little-endian.
//   qs[j]: element j as a two's-complement int8 (any of -128..127 decodes).
//   element j (0 <= j < 32) = qs[j] * d
//
// q5_k super-block (kQ5_KBlockBytes = 176 bytes, kQ5_KBlockElements = 256):
//
//   byte  0      2      4              16            48                   176
//         +------+------+--------------+-------------+--------------------+
//         | d    | dmin | scales[12]   | qh[32]      | qs[128]            |
//         +------+------+--------------+-------------+--------------------+
//   d, dmin, scales and the nibbles in qs as in q4_k (sc[s], m[s] unpacked the
//   same way; chunk c of qs covers elements [64c, 64c + 64)). The fifth bit of
//   element 64c + l is bit 2c of qh[l], that of element 64c + 32 + l is bit
//   2c + 1 of qh[l] (l in [0, 32)): element e of sub-block s = e / 32 has
//   q = nibble + 16 * ((qh[e % 32] >> s) & 1), in [0, 31], and
//   element = (d * sc[s]) * q - (dmin * m[s]).
//
// q6_k super-block (kQ6_KBlockBytes = 210 bytes, kQ6_KBlockElements = 256):
//
//   byte  0                    128           192            208    210
//         +--------------------+-------------+--------------+------+
//         | ql[128]            | qh[64]      | scales[16]   | d    |
//         +--------------------+-------------+--------------+------+
//   d: binary16, little-endian; scales: sixteen two's-complement int8 scales,
//   scales[t] for the 16 elements [16t, 16t + 16). Each half H (0 or 1) of
//   128 elements reads ql[64H, 64H + 64) and qh[32H, 32H + 32); for l in
//   [0, 32) and g in [0, 4), element 128H + 32g + l has the 6-bit
//     u = (ql[64H + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF
//         | ((qh[32H + l] >> (2g)) & 3) << 4
//   and element = (d * scales[t]) * (u - 32), t its 16-element sub-block.
//
// Exactness: every decoded value is a single IEEE-rounded float fixed by the
// block bytes alone. (q - 8) * d, (u - 16) * d, u * d, qs[j] * d, d * sc,
// dmin * m and (d * sc) * q are exact in binary32 (at most 21 significant
// bits), so the only roundings are the final addition of m (q4_1, q5_1) and
// the final subtraction of q4_k, and fused or unfused evaluation gives the
// same bits. q5_k is the same with q <= 31 (d * sc * q has at most 22
// significant bits). q6_k's d * scales[t] is exact (19 bits) and its one
// rounding is the final multiplication by (u - 32), as ggml's.
// Hence every SimdLevel produces identical bits for every output that is not
// NaN; an output that is NaN at one level is NaN at all (its payload may differ).
//
// Trust: block bytes are not validated; any byte pattern decodes (a NaN or
// infinite scale decodes to NaN or infinity). There are no bounds checks:
// callers pass buffers of the documented sizes.
//
// Thread-safety: all functions are reentrant and keep no state apart from the
// cached CPU detection, which is thread-safe.
#ifndef ZCPACK_FORMAT_Q4_BLOCKS_H_
#define ZCPACK_FORMAT_Q4_BLOCKS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format {

// SimdLevel: the instruction sets that zcpack's bulk kernels dispatch to at run
// time. kAvx2 requires AVX2, FMA and F16C; kAvx512 additionally requires
// AVX-512 F, BW, DQ and VL. AMX is never used, and no code is built for the
// host CPU (-march=native): each kernel carries its own target attribute and
// runs only after the CPU check. Kernels at every level produce the same
// results; the level only changes speed.
enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// DetectSimdLevel(): the highest level that this CPU and operating system
// support (checked once, then cached). kScalar on hosts other than x86-64.
SimdLevel DetectSimdLevel();

// SupportedSimdLevel(): `requested` lowered to DetectSimdLevel() when the
// machine cannot run it. Every function that takes a SimdLevel applies this
// first, so asking for a level the CPU lacks is safe (it runs a lower one).
SimdLevel SupportedSimdLevel(SimdLevel requested);

// SimdLevelName(): "scalar", "avx2" or "avx512".
absl::string_view SimdLevelName(SimdLevel level);

// DequantizeQ4_0(): decodes the n_elements / 32 q4_0 blocks at `blocks`
// (n_elements / 32 * 18 readable bytes) into out[0, n_elements). n_elements
// must be a multiple of kQ4_0BlockElements; a remainder is not written.
void DequantizeQ4_0(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ4_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// DequantizeQ4_1(), DequantizeQ5_0(), DequantizeQ5_1(): decode the
// n_elements / 32 blocks of their type at `blocks` (n_elements / 32 * 20, 22
// or 24 readable bytes) into out[0, n_elements). n_elements must be a
// multiple of 32; a remainder is not written.
void DequantizeQ4_1(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ4_1(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);
void DequantizeQ5_0(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ5_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);
void DequantizeQ5_1(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ5_1(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// DequantizeQ4_K(): decodes the n_elements / 256 q4_k super-blocks at `blocks`
// (n_elements / 256 * 144 readable bytes) into out[0, n_elements). n_elements
// must be a multiple of kQ4_KBlockElements; a remainder is not written.
void DequantizeQ4_K(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ4_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// DequantizeQ5_K(): decodes the n_elements / 256 q5_k super-blocks at `blocks`
// (n_elements / 256 * 176 readable bytes) into out[0, n_elements). n_elements
// must be a multiple of kQ5_KBlockElements; a remainder is not written.
void DequantizeQ5_K(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ5_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// DequantizeQ6_K(): decodes the n_elements / 256 q6_k super-blocks at `blocks`
// (n_elements / 256 * 210 readable bytes) into out[0, n_elements). n_elements
// must be a multiple of kQ6_KBlockElements; a remainder is not written.
void DequantizeQ6_K(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ6_K(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// DequantizeQ8_0(): decodes the n_elements / 32 q8_0 blocks at `blocks`
// (n_elements / 32 * 34 readable bytes) into out[0, n_elements). n_elements
// must be a multiple of kQ8_0BlockElements; a remainder is not written.
void DequantizeQ8_0(const uint8_t* blocks, size_t n_elements, float* out);
void DequantizeQ8_0(const uint8_t* blocks, size_t n_elements, float* out, SimdLevel level);

// ConvertToFloat(): decodes n elements stored as `src_dtype` (little-endian
// bytes at `src`, BlockBytes(src_dtype) * n / BlockElements(src_dtype) of
// them) into out[0, n). F32 is copied, F16 and BF16 are widened exactly and
// bit-for-bit as HalfToFloat() / BFloat16ToFloat() do (NaN payloads and
// signalling NaNs included), the quantized types are decoded as above.
// InvalidArgument, with nothing written, when src_dtype is not a known type
// or n is not a multiple of BlockElements(src_dtype); Unimplemented for a
// known type that has no decoder here.
absl::Status ConvertToFloat(DType src_dtype, const uint8_t* src, size_t n, float* out);
absl::Status ConvertToFloat(DType src_dtype, const uint8_t* src, size_t n, float* out,
                            SimdLevel level);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_Q4_BLOCKS_H_
