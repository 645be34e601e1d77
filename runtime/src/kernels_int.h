// The integer dot-product family behind kernels.h: quantized weights (q4_0,
// q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, read in place in ggml's block
// layout) against activations quantized once per product to int8. Internal
// to the runtime.
//
// Activations come in two kinds (ActivationKindOf()): q4_0, q4_1, q5_0, q5_1
// and q8_0 weights
// read 32-blocks (ggml's block_q8_0), the k-quants (q4_k, q5_k, q6_k) read
// 256-element super-blocks (ggml's block_q8_K). Both are stored in one
// QuantizedActivations layout: int8 values, and per 32-block d_b, sum_b and
// negds_b (plus, for super-blocks, per-16 sums).
//
// 32-blocks. Each input vector is cut into blocks of 32 floats, and each
// block b is stored as
//   d_b      = max |x_i| / 127, rounded to binary16 (as block_q8_0 keeps it)
//   q_i      = nearbyint(x_i * (127 / max |x_i|)) in [-127, 127] (0 when the
//              max is below 127 / FLT_MAX, where 127 / max would overflow;
//              llama.cpp's x86 quantizer multiplies by 127 / max, not by
//              1 / d, and the two differ by an ulp for some maxima)
//   sum_b    = sum of the 32 q_i                      (exact integer)
//   negds_b  = -(float(sum_b) * d_b)                  (float, one rounding)
// A block holding a NaN or an infinity gets d_b = NaN and q = 0, so every
// product that reads it is NaN. The quantizer of every instruction set gives
// these bytes exactly (the rounding is the default round-to-nearest-even).
//
// Super-blocks (q8_K). Each input vector is cut into super-blocks of 256
// floats; for super-block B, with m the element of largest |x| (the first
// such one, with its sign) as ggml's quantize_row_q8_K picks it:
//   iscale   = -127 / m                                 (float)
//   q_i      = min(127, nearbyint(iscale * x_i))        (in [-127, 127])
//   d_B      = 1 / iscale                               (float; sign of -m)
//   sum16_t  = sum of the 16 q_i of sub-block t         (exact integer)
// and each of its eight 32-blocks b gets d_b = d_B, sum_b = sum16_{2b} +
// sum16_{2b+1} and negds_b = -(float(sum_b) * d_b). A super-block of zeros,
// or one whose iscale overflows (max |x| below about 3.7e-37), is stored as
// zeros with d = 0. One holding a NaN or an infinity gets q = 0, sums 0 and
// d_b = negds_b = NaN. The scalar code that derives the sums and negds from
// the int8 values is shared by every instruction set (FinishSuperBlock()).
//
// The one accumulation order. For weight row r and input vector j, with y
// accumulated in float from 0, block by block in increasing order:
//   q4_0 block b (fp16 scale dw, nibbles u):  i = sum (u_e - 8) * q_e
//       y = fma(float(i), dw * d_b, y)
//   q8_0 (fp16 scale dw, int8 w): eight partial sums instead of one, as
//     llama.cpp's x86 q8_0 dot products (ggml_vec_dot_q8_0_q8_0 for one
//     input, llamafile's tinyBLAS for several) keep them: for word g of 4
//     bytes (elements 4g .. 4g + 3) of block b,
//       i_g = sum_{e in word g} w_e * q_e;  y_g = fma(float(i_g), dw * d_b, y_g)
//     and at the end y = ((y0 + y4) + (y2 + y6)) + ((y1 + y5) + (y3 + y7))
//     (SumQ8Words(), their horizontal sum). Greedy decoding of random-weight
//     models meets near-ties that one ulp of difference flips, so matching
//     llama.cpp's order is what makes the same file give the same tokens.
//   q5_0 block b (fp16 scale dw, 5-bit codes u): i = sum (u_e - 16) * q_e
//       y = fma(float(i), dw * d_b, y)
//   q4_1 / q5_1 block b (fp16 scale dw, fp16 min m, 4- or 5-bit codes u):
//       i = sum u_e * q_e;  y = fma(float(i), dw * d_b, y);  y = fma(-m, negds_b, y)
//     (ggml pairs these with block_q8_1, whose s = d * sum is the -negds_b
//     here; -m * negds_b is m * sum_b * d_b, the min's share of the block.)
//   The k-quants follow llama.cpp's x86 kernels for them (q4_K's repacked
//   8x8 gemv and gemm, which it uses on every AVX2 CPU, q5_K's and q6_K's
//   AVX2 vec_dot). With da = d_B of the activations' super-block B and the
//   weight block's fp16 d (and dmin), all sums below exact integers:
//   q4_k (6-bit sc_s, m_s per sub-block s of 32, 4-bit codes u):
//       P = sum_s sc_s * sum_{e in s} u_e * q_e;  M = sum_s m_s * sum_s
//     gathered over F = Q4_KFoldSteps(j, n) sub-blocks, then
//       y = fma(float(P), d * da, y);  z = fma(float(M), dmin * da, z)
//     and at the end y - z. F is 8 (a super-block) for a single input and
//     for the n % 4 inputs after the last whole group of four, and 2 for
//     inputs in whole groups of four, which llama.cpp's gemm takes 64
//     weights at a time.
//   q5_k (as q4_k, 5-bit codes): eight word sums per super-block,
//       P_g = sum_s sc_s * sum_{e in word g of s} u_e * q_e   (g = 0..7)
//       y_g = fma(da * d, float(P_g), y_g);  z = fma(-(da * dmin), float(M), z)
//     and at the end SumQ8Words(y) + z.
//   q6_k (int8 scales sc_t per 16, 6-bit codes u, offset 32): eight word sums
//       P_g = sum_s sc_{t(s, g)} * sum_{e in word g of s} u_e * q_e
//             - 32 * (sc_{2g} * sum16_{2g} + sc_{2g+1} * sum16_{2g+1})
//     (t(s, g) = 2s for g < 4, else 2s + 1; the offset of 32-block g goes to
//     word g, as ggml's bsums fall in its lanes), y_g = fma(da * d,
//     float(P_g), y_g), and at the end SumQ8Words(y).
// The integer sums are exact at any width and in any order, so every
// instruction set, every row grouping and every thread split gives the same
// bits: MatMul() equals MatVec() of each input (for q4_k, of the inputs past
// the whole groups of four), at any thread count and at any level.
//
// Error against the float product (what the tests bound): only the
// activations are rounded, by at most |d_b| / 2 per element, so
//   |y - sum w_e x_e| <= sum_b (|d_b| / 2) * sum_{e in b} |w_e|
// plus float rounding of the accumulation (about 1e-6 of sum |w_e x_e|).
// For super-blocks |d_b| / 2 is max_B |x| / 254 up to the float rounding of
// iscale and d (a relative 2^-20 at most).
//
// Instruction sets. The SIMD kernels put weight rows in vector lanes (16 per
// AVX-512 vector, 8 per AVX2 vector): a group's blocks are transposed into
// per-tile scratch (or registers, for one input) so that lane L holds four
// consecutive bytes of its row, and each dot-product step multiplies them
// with four activation bytes broadcast to every lane. Each lane then holds a
// whole block's integer sum for its row, and one float multiply-add per block
// covers 16 (or 8) rows; q8_0 keeps each word's sum apart instead, with one
// multiply-add per word and eight accumulators per input. The k-quants keep
// their integer sums (per word for q5_k and q6_k) in lanes across the steps
// of a fold, and multiply-add them once per fold. A weight block is
// read from the mapping once per tile of rows, whatever the number of inputs.
// Nothing is repacked at load.
#ifndef ZCPACK_RUNTIME_SRC_KERNELS_INT_H_
#define ZCPACK_RUNTIME_SRC_KERNELS_INT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/kernels.h"

namespace zcpack::runtime::kernels_internal {

inline constexpr size_t kActivationBlock = 32;
inline constexpr size_t kActivationSuperBlock = 256;

// q8_0's partial sums (the header comment): one per 4-byte word of a block.
inline constexpr size_t kQ8Words = 8;
inline float SumQ8Words(const float y[kQ8Words]) {
  return ((y[0] + y[4]) + (y[2] + y[6])) + ((y[1] + y[5]) + (y[3] + y[7]));
}

// q4_k's fold period (kernels_int.h): the 32-blocks whose integer sums are
// gathered before one float multiply-add, for input j of n. ggml's repacked
// q4_K kernels take inputs in groups of four (its gemm, which folds every
// 64 weights) and the n % 4 left over one by one (its gemv, every super-block).
inline size_t Q4_KFoldSteps(size_t j, size_t n) { return j < n - n % 4 ? 2 : 8; }

// The integer instruction sets, best last. kAvx512VnniYmm is the AVX-VNNI
// kernel built with the EVEX (AVX-512 VL) encoding of the same instruction:
// it runs the AVX-VNNI code path on CPUs that have AVX-512 VNNI but not
// AVX-VNNI (so tests cover that path there); dispatch never picks it.
enum class DotIsa : int { kScalar = 0, kAvx2, kAvxVnni, kAvx512VnniYmm, kAvx512Vnni };

const char* DotIsaName(DotIsa isa);
// Whether this CPU can run `isa`.
bool DotIsaSupported(DotIsa isa);
// The isa MatVec()/MatMul() use at `level` (after format::SupportedSimdLevel):
// kAvx512 -> kAvx512Vnni when the CPU has it, else as kAvx2; kAvx2 ->
// kAvxVnni when the CPU has it, else kAvx2; kScalar -> kScalar.
DotIsa DotIsaFor(format::SimdLevel level);

// QuantizedActivations: n vectors of `cols` floats in the format above.
// Owns its storage, which grows and is reused.
class QuantizedActivations {
 public:
  // Resize(): room for n vectors of cols (a multiple of 32) elements.
  void Resize(size_t n, size_t cols);
  // StorageBytes(): the bytes Resize(n, cols) allocates (the buffers only
  // grow, so a buffer holds the largest n * cols it has been resized for).
  static uint64_t StorageBytes(size_t n, size_t cols);

  size_t n() const { return n_; }
  size_t cols() const { return cols_; }
  size_t blocks() const { return blocks_; }  // per vector
  // Vector j's int8 values (blocks() * 32, 64-byte aligned) and per-block data.
  int8_t* qs(size_t j) { return qs_ + j * blocks_ * kActivationBlock; }
  const int8_t* qs(size_t j) const { return qs_ + j * blocks_ * kActivationBlock; }
  float* d(size_t j) { return d_.data() + j * blocks_; }
  const float* d(size_t j) const { return d_.data() + j * blocks_; }
  int32_t* sum(size_t j) { return sum_.data() + j * blocks_; }
  const int32_t* sum(size_t j) const { return sum_.data() + j * blocks_; }
  float* negds(size_t j) { return negds_.data() + j * blocks_; }
  const float* negds(size_t j) const { return negds_.data() + j * blocks_; }
  // Super-blocks only: the sums of the 16-element sub-blocks (2 per block).
  int32_t* sum16(size_t j) { return sum16_.data() + j * 2 * blocks_; }
  const int32_t* sum16(size_t j) const { return sum16_.data() + j * 2 * blocks_; }
  // 32-blocks only: per 4-byte word k of block b (index b * kQ8Words + k),
  // -128 times the sum of its four quants: what the vpdpbusd kernels, which
  // read q8_0 weights biased by 128 to make them unsigned, subtract from
  // each word's partial sum (FillQ8Offsets()).
  int32_t* q8_offsets(size_t j) { return q8_offsets_.data() + j * kQ8Words * blocks_; }
  const int32_t* q8_offsets(size_t j) const {
    return q8_offsets_.data() + j * kQ8Words * blocks_;
  }

 private:
  // Elements of each buffer for n vectors of cols: the int8 values (with
  // room to align them to 64 bytes) and the per-block arrays (d, sum and
  // negds hold one per block, sum16 two).
  static size_t ValueBytes(size_t n, size_t cols) { return n * cols + 64; }
  static size_t PerBlock(size_t n, size_t cols) { return n * (cols / kActivationBlock); }

  size_t n_ = 0, cols_ = 0, blocks_ = 0;
  std::vector<int8_t> qs_storage_;
  int8_t* qs_ = nullptr;
  std::vector<float> d_, negds_;
  std::vector<int32_t> sum_, sum16_, q8_offsets_;
};

// Which activations a weight dtype reads (the header comment).
enum class ActivationKind : int { kBlock32 = 0, kSuperBlock = 1 };

inline ActivationKind ActivationKindOf(format::DType dtype) {
  return dtype == format::DTYPE_Q4_K || dtype == format::DTYPE_Q5_K ||
                 dtype == format::DTYPE_Q6_K
             ? ActivationKind::kSuperBlock
             : ActivationKind::kBlock32;
}

// FinishSuperBlock(): given super-block `sb` of vector j's int8 values, fills
// its sum16, and its 32-blocks' d (= d_super), sum and negds. Shared by every
// instruction set's super-block quantizer.
void FinishSuperBlock(QuantizedActivations& a, size_t j, size_t sb, float d_super);
// FillQ8Offsets(): vector j's q8_offsets() from its int8 values. Every
// instruction set's 32-block quantizer calls it last.
void FillQ8Offsets(QuantizedActivations& a, size_t j);
// SetNonFiniteSuperBlock(): super-block `sb` as a block holding NaN or inf.
void SetNonFiniteSuperBlock(QuantizedActivations& a, size_t j, size_t sb);

// QuantizeFn: vector j of `a` from x[0, a.cols()).
using QuantizeFn = void (*)(const float* x, QuantizedActivations& a, size_t j);

// IntRowsFn: y[j * y_stride + r] for r in [row_begin, row_end), j < a.n():
// weight row r against activation vector j, in the order above.
using ThreadScratchFn = size_t (*)(const WeightView& w, size_t n);
using IntRowsFn = void (*)(const WeightView& w, const QuantizedActivations& a, float* y,
                           size_t y_stride, uint64_t row_begin, uint64_t row_end);

struct DotKernels {
  DotIsa isa;
  // Rows a kernel computes together; thread pieces are multiples of it.
  uint64_t row_group;
  QuantizeFn quantize;
  // Row-major matrices: any row range.
  IntRowsFn q4_0;
  IntRowsFn q4_k;
  IntRowsFn q8_0;
  // LAYOUT_ROW_GROUPS_16 matrices: row_begin and row_end are multiples of 16
  // within the whole groups (the tail rows take the row-major kernels).
  IntRowsFn grouped_q4_0;
  IntRowsFn grouped_q4_k;
  IntRowsFn grouped_q8_0;
  // Row-major only: these types never have LAYOUT_ROW_GROUPS_16
  // (format::SupportsRowGroups() is false for them).
  IntRowsFn q4_1;
  IntRowsFn q5_0;
  IntRowsFn q5_1;
  // Super-block (q8_K) activations, for the k-quants.
  QuantizeFn quantize_k;
  // Row-major only: these types have no LAYOUT_ROW_GROUPS_16.
  IntRowsFn q5_k;
  IntRowsFn q6_k;
  // Bytes of ThreadScratch() one call of w's kernel with n inputs asks for
  // on its thread (the plan of memory_plan.h counts them); nullptr for
  // tables whose kernels use none.
  ThreadScratchFn thread_scratch;
};

// DotKernelsFor(): the table of `isa`, or nullptr when this build or CPU has
// no code for it.
const DotKernels* DotKernelsFor(DotIsa isa);

// Per-ISA tables (nullptr where the build has no code: non-x86 hosts).
const DotKernels& ScalarDotKernels();
const DotKernels* Avx2DotKernels();
const DotKernels* AvxVnniDotKernels();
const DotKernels* Avx512VnniYmmDotKernels();
const DotKernels* Avx512VnniDotKernels();

// Whether `dtype` runs through this family.
inline bool IsIntegerDType(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0:
    case format::DTYPE_Q4_1:
    case format::DTYPE_Q5_0:
    case format::DTYPE_Q5_1:
    case format::DTYPE_Q8_0:
    case format::DTYPE_Q4_K:
    case format::DTYPE_Q5_K:
    case format::DTYPE_Q6_K: return true;
    default: return false;
  }
}

// IntKernel(): the row-major kernel of an IsIntegerDType() type (nullptr for
// any other type).
inline IntRowsFn IntKernel(const DotKernels& kernels, format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0: return kernels.q4_0;
    case format::DTYPE_Q4_1: return kernels.q4_1;
    case format::DTYPE_Q5_0: return kernels.q5_0;
    case format::DTYPE_Q5_1: return kernels.q5_1;
    case format::DTYPE_Q8_0: return kernels.q8_0;
    case format::DTYPE_Q4_K: return kernels.q4_k;
    case format::DTYPE_Q5_K: return kernels.q5_k;
    case format::DTYPE_Q6_K: return kernels.q6_k;
    default: return nullptr;
  }
}

// The quantizer of the activations `dtype` reads.
inline QuantizeFn QuantizerFor(const DotKernels& kernels, format::DType dtype) {
  return ActivationKindOf(dtype) == ActivationKind::kSuperBlock ? kernels.quantize_k
                                                                 : kernels.quantize;
}

// GroupedKernel(): the LAYOUT_ROW_GROUPS_16 kernel of a type for which
// format::SupportsRowGroups() holds (nullptr for any other type; a
// WeightView never has that layout with one).
inline IntRowsFn GroupedKernel(const DotKernels& kernels, format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0: return kernels.grouped_q4_0;
    case format::DTYPE_Q4_K: return kernels.grouped_q4_k;
    case format::DTYPE_Q8_0: return kernels.grouped_q8_0;
    default: return nullptr;
  }
}

// Scratch: a per-thread, 64-byte aligned buffer for packed weight tiles.
uint8_t* ThreadScratch(size_t bytes);

}  // namespace zcpack::runtime::kernels_internal

#endif  // ZCPACK_RUNTIME_SRC_KERNELS_INT_H_
