// Matrix-vector and matrix-matrix products over weights read in place.
//
// A weight matrix W of shape [rows, cols] is stored row-major, so row r is
// contiguous: cols / 32 q4_0 blocks of 18 bytes, cols / 256 q4_k super-blocks
// of 144 bytes, or cols f16 / bf16 / f32 elements (little-endian). The
// kernels read those bytes directly from the mapped container: nothing is
// repacked or copied at load (MatMul() decodes a few rows at a time into a
// per-thread buffer).
//
// Arithmetic: every weight is decoded to exactly the float that format's
// reference decoders (DequantizeQ4_0(), DequantizeQ4_K(), HalfToFloat(),
// BFloat16ToFloat()) give, then multiplied by x and summed in float (x is
// never quantized). The summation order depends on the SimdLevel only, so:
//   - results differ between levels by float rounding (within about
//     1e-6 * sum |w_i * x_i| in practice), never by more;
//   - at one level, results are bit-identical for any ThreadPool size (rows
//     are split between threads, never a dot product), and
//     MatMul(w, x, n, y) gives bit for bit the MatVec() of each input vector.
// Non-finite weights or inputs give non-finite outputs (which NaN or infinity
// may differ between levels).
//
// Dispatch: the overloads without a SimdLevel use format::DetectSimdLevel();
// those with one apply format::SupportedSimdLevel() first, so asking for a
// level the CPU lacks runs a lower one.
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

  // FromTensor(): a view of a manifest tensor whose bytes are `data` (as
  // Container::TensorData() returns them). InvalidArgument, naming the tensor,
  // when the rank is not 2, the dtype is not one of the five v1 types, the
  // last dimension is not a multiple of the dtype's block, or data.size()
  // differs from entry.nbytes or from the size the dtype and shape imply.
  static absl::StatusOr<WeightView> FromTensor(const format::TensorEntry& entry,
                                               std::span<const uint8_t> data);

  // FromBytes(): the same checks for a matrix described directly.
  static absl::StatusOr<WeightView> FromBytes(format::DType dtype, uint64_t rows, uint64_t cols,
                                              std::span<const uint8_t> data);

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
// x + j * w.cols, bit for bit. Each weight row is read once for all n vectors
// (prompt processing). y must not overlap x.
void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool);
void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool,
            format::SimdLevel level);

// DequantizeRow(): out[0, w.cols) = row `row` of w as floats, exactly as the
// reference decoders give them (for embedding lookup). row < w.rows.
void DequantizeRow(const WeightView& w, uint64_t row, float* out);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_KERNELS_H_
