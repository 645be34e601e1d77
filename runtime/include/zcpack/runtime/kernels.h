// Matrix-vector and matrix-matrix products over weights read in place.
//
// A weight matrix W of shape [rows, cols] holds cols / 32 q4_0 blocks of 18
// bytes per row, cols / 32 q4_1, q5_0 or q5_1 blocks of 20, 22 or 24 bytes,
// cols / 256 q4_k, q5_k or q6_k super-blocks of 144, 176 or 210 bytes,
// cols / 32 q8_0 blocks of 34 bytes, or cols f16 / bf16 / f32 elements
// (little-endian), in one of two layouts: row-major (ggml's order, row r
// contiguous), or for q4_0, q4_k and q8_0 also LAYOUT_ROW_GROUPS_16
// (format/row_groups.h: each block's
// bytes interleaved across 16 rows, which the kernels read as one
// sequential stream; the converter writes the matrices that are multiplied
// this way). The kernels read those bytes directly
// from the mapped container: nothing is repacked or copied at load (a
// product transposes a tile of rows at a time into per-thread scratch).
//
// Arithmetic, float weights (f16, bf16, f32): every weight is decoded to
// exactly the float that format's reference decoders give, multiplied by x
// and summed in float. For f16 and bf16 weights x is first rounded to the
// weight's type (nearest-even), as ggml does for them, so that f16 models
// give llama.cpp's greedy output where two logits nearly tie. The summation order depends on the SimdLevel only, so
// results differ between levels by float rounding (within about
// 1e-6 * sum |w_i * x_i| in practice), never by more.
//
// Arithmetic, quantized weights (q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k,
// q6_k): x is quantized once per call to int8 (shared by every row and
// thread), each block's dot product is an exact integer, and the blocks are
// summed in float in a fixed order (runtime/src/kernels_int.h defines it).
// The activations are those llama.cpp multiplies each type by: for q4_0,
// q4_1, q5_0, q5_1 and q8_0, blocks of 32 (quants rounded with d = max|x| /
// 127, which is then kept in binary16 as in ggml's block_q8_0); for the
// k-quants q4_k, q5_k and q6_k, super-blocks of 256 with a float scale, as
// ggml's block_q8_K. Results are bit-identical at every SimdLevel. Tolerance
// against the float product sum_i w_i * x_i, which the tests check: for the
// 32-element types at most sum over blocks b of 32 of (max_{i in b} |x_i| /
// 254) * (1 + 1/8) * sum_{i in b} |w_i| (the 1/8: 127 times the binary16
// scale's relative rounding of 2^-11, against half a step); for the k-quants
// at most sum over super-blocks B of 256 of (max_{i in B} |x_i| / 254) *
// (1 + 2^-10) * sum_{i in B} |w_i| (the 2^-10 covers the float rounding of
// the scale); plus float rounding (about 1e-6 * sum |w_i * x_i|).
//
// Both kinds: at one level, results are bit-identical for any ThreadPool size
// (rows are split between threads, never a dot product), and
// MatMul(w, x, n, y) gives bit for bit the MatVec() of each input vector,
// except for q4_k inputs in whole groups of four (the first n - n % 4),
// whose float sums are folded every 64 weights instead of every 256, as
// llama.cpp's batched q4_K kernel does (kernels_int.h).
// Non-finite weights or inputs give non-finite outputs (which NaN or infinity
// may differ between levels).
//
// Dispatch: the overloads without a SimdLevel use format::DetectSimdLevel();
// those with one apply format::SupportedSimdLevel() first, so asking for a
// level the CPU lacks runs a lower one. For quantized weights the level picks
// the integer instruction: kAvx512 runs AVX-512 VNNI where the CPU has it;
// kAvx2 runs AVX-VNNI where the CPU has it, else AVX2.
//
// Trust: a WeightView made by WeightView::FromTensor() / FromBytes() has been
// checked once; the products themselves check nothing (pointers and sizes are
// preconditions).
//
// Thread-safety: all functions are reentrant. Several threads may run
// products at once, on the same pool too (its calls are serialised).
#ifndef ZCPACK_RUNTIME_KERNELS_H_
#define ZCPACK_RUNTIME_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/thread_pool.h"

namespace zcpack::runtime {

// WeightView: a zero-copy view of a [rows, cols] weight matrix. It does not
// own `data`, which must stay mapped (the Container open) while the view is
// used. Build one with FromTensor() or FromBytes(), which check that the bytes
// match the dtype and shape.
struct WeightView {
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  uint64_t rows = 0;
  uint64_t cols = 0;
  const uint8_t* data = nullptr;
  format::TensorLayout layout = format::LAYOUT_ROW_MAJOR;

  // FromTensor(): a view of a manifest tensor whose bytes are `data` (as
  // Container::TensorData() returns them), in the entry's layout.
  // InvalidArgument, naming the tensor, when the rank is not 2, the dtype is
  // not a known one, the last dimension is not a multiple of the dtype's
  // block, data.size() differs from entry.nbytes or from the size the dtype
  // and shape imply, or the layout is not one the dtype can have.
  static absl::StatusOr<WeightView> FromTensor(const format::TensorEntry& entry,
                                               std::span<const uint8_t> data);

  // FromBytes(): the same checks for a matrix described directly.
  static absl::StatusOr<WeightView> FromBytes(
      format::DType dtype, uint64_t rows, uint64_t cols, std::span<const uint8_t> data,
      format::TensorLayout layout = format::LAYOUT_ROW_MAJOR);

  // Bytes of one stored row.
  uint64_t row_bytes() const;
};

// MatVec(): y[r] = dot(row r of w, x) for r in [0, w.rows). x holds w.cols
// floats, y w.rows floats; y must not overlap x. pool may be null (runs on
// the calling thread).
void MatVec(const WeightView& w, const float* x, float* y, ThreadPool* pool);
void MatVec(const WeightView& w, const float* x, float* y, ThreadPool* pool,
            format::SimdLevel level);

// MatMul(): y = x * w^T for n input vectors: x is n x w.cols row-major, y is
// n x w.rows row-major, and y[j * w.rows + r] is MatVec()'s y[r] for input
// x + j * w.cols, bit for bit (for q4_k: inputs j >= n - n % 4). Each weight row is read once for all n vectors
// (prompt processing). y must not overlap x.
void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool);
void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool,
            format::SimdLevel level);

// Projection: a weight matrix and the n x weight->rows row-major output of
// its product with MatMulMany()'s inputs.
struct Projection {
  const WeightView* weight;
  float* y;
};

// MatMulMany(): MatMul(*p.weight, x, n, p.y) for every projection p, in one
// parallel pass: the weights must share their column count, x is quantized
// once for all the quantized ones, and the pool runs one call for them (q, k
// and v, or gate and up). Results equal MatMul() of each, bit for bit.
void MatMulMany(std::span<const Projection> projections, const float* x, size_t n,
                ThreadPool* pool);
void MatMulMany(std::span<const Projection> projections, const float* x, size_t n,
                ThreadPool* pool, format::SimdLevel level);

// DequantizeRow(): out[0, w.cols) = row `row` of w as floats, exactly as the
// reference decoders give them (for embedding lookup). row < w.rows.
void DequantizeRow(const WeightView& w, uint64_t row, float* out);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_KERNELS_H_
