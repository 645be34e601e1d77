// Weight views, level dispatch, threading and the scalar kernels.
#include "zcpack/runtime/kernels.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels_int.h"
#include "kernels_internal.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/format/row_groups.h"

namespace zcpack::runtime {

using format::DType;
using format::SimdLevel;

namespace kernels_internal {
namespace {

// Decodes n elements of `dtype` (n a multiple of its block) at `level`.
void DecodeElements(DType dtype, const uint8_t* src, size_t n, float* out, SimdLevel level) {
  switch (dtype) {
    case format::DTYPE_Q4_0: format::DequantizeQ4_0(src, n, out, level); break;
    case format::DTYPE_Q4_K: format::DequantizeQ4_K(src, n, out, level); break;
    default:
      // The dtype was checked when the view was made, so this cannot fail.
      format::ConvertToFloat(dtype, src, n, out, level).IgnoreError();
      break;
  }
}

// ----------------------------------------------------------------- scalar ---

// Eight accumulators, element i into acc[i % 8]; `w` and `x` start at an
// element index that is a multiple of 8.
void AccumulateScalar(const float* w, const float* x, size_t n, float acc[8]) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < 8; ++k) acc[k] += w[i + k] * x[i + k];
  }
  for (size_t k = 0; i + k < n; ++k) acc[k] += w[i + k] * x[i + k];
}

float FinishScalar(const float acc[8]) {
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// Decodes a row in chunks of kScalarChunk elements (a multiple of every
// block size and of 8) and accumulates each chunk.
constexpr size_t kScalarChunk = 256;

template <DType kDType>
void MatVecScalar(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                  uint64_t row_end) {
  const uint64_t row_bytes = w.row_bytes();
  const uint64_t chunk_bytes =
      kScalarChunk / format::BlockElements(kDType) * format::BlockBytes(kDType);
  float decoded[kScalarChunk];
  for (uint64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = w.data + r * row_bytes;
    float acc[8] = {};
    for (uint64_t c = 0; c < w.cols; c += kScalarChunk, row += chunk_bytes) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kScalarChunk, w.cols - c));
      DecodeElements(kDType, row, n, decoded, SimdLevel::kScalar);
      AccumulateScalar(decoded, x + c, n, acc);
    }
    y[r] = FinishScalar(acc);
  }
}

void DotRowsScalar(const float* rows, size_t nrows, const float* x, size_t nvec, size_t cols,
                   float* y, size_t y_stride) {
  for (size_t j = 0; j < nvec; ++j) {
    for (size_t i = 0; i < nrows; ++i) {
      float acc[8] = {};
      AccumulateScalar(rows + i * cols, x + j * cols, cols, acc);
      y[j * y_stride + i] = FinishScalar(acc);
    }
  }
}

}  // namespace

const float* HalfToFloatTable() {
  static const float* const table = [] {
    auto* values = new float[65536];  // never freed: used until exit
    for (uint32_t h = 0; h < 65536; ++h) values[h] = format::HalfToFloat(static_cast<uint16_t>(h));
    return values;
  }();
  return table;
}

const LevelKernels& ScalarKernels() {
  static constexpr LevelKernels kKernels = {
      SimdLevel::kScalar,
      MatVecScalar<format::DTYPE_Q4_0>,
      MatVecScalar<format::DTYPE_Q4_K>,
      MatVecScalar<format::DTYPE_F16>,
      MatVecScalar<format::DTYPE_BF16>,
      MatVecScalar<format::DTYPE_F32>,
      DotRowsScalar,
  };
  return kKernels;
}

}  // namespace kernels_internal

namespace {

using kernels_internal::kRowGroup;
using kernels_internal::LevelKernels;
using kernels_internal::MatVecRowsFn;

// Smallest piece of a MatVec worth a thread: below this, waking a thread
// costs more than it saves.
constexpr uint64_t kMinPieceBytes = 16 << 10;

const LevelKernels& KernelsFor(SimdLevel requested) {
  const SimdLevel level = format::SupportedSimdLevel(requested);
  if (level == SimdLevel::kAvx512 && kernels_internal::Avx512Kernels() != nullptr) {
    return *kernels_internal::Avx512Kernels();
  }
  if (level >= SimdLevel::kAvx2 && kernels_internal::Avx2Kernels() != nullptr) {
    return *kernels_internal::Avx2Kernels();
  }
  return kernels_internal::ScalarKernels();
}

MatVecRowsFn MatVecKernel(const LevelKernels& kernels, DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0: return kernels.q4_0;
    case format::DTYPE_Q4_K: return kernels.q4_k;
    case format::DTYPE_F16: return kernels.f16;
    case format::DTYPE_BF16: return kernels.bf16;
    default: return kernels.f32;  // quantized types take the integer path
  }
}

// Rows per ParallelFor grain: a multiple of kRowGroup of at least
// kMinPieceBytes of weights.
size_t RowGrain(uint64_t row_bytes) {
  const uint64_t rows = (kMinPieceBytes + row_bytes - 1) / row_bytes;
  return static_cast<size_t>((rows + kRowGroup - 1) / kRowGroup * kRowGroup);
}

void DecodeRow(const WeightView& w, uint64_t row, float* out, SimdLevel level) {
  const uint8_t* bytes = w.data + row * w.row_bytes();
  if (w.layout != format::LAYOUT_ROW_MAJOR) {
    thread_local std::vector<uint8_t> row_major;
    row_major.resize(w.row_bytes());
    format::CopyRowMajorRow(w.dtype, w.layout, w.rows, w.row_bytes(), w.data, row, row_major.data());
    bytes = row_major.data();
  }
  kernels_internal::DecodeElements(w.dtype, bytes, static_cast<size_t>(w.cols), out, level);
}

// MatMul over rows [row_begin, row_end): decodes kRowGroup rows at a time into
// a buffer owned by the thread, then takes their dot products with every input.
void MatMulRows(const LevelKernels& kernels, const WeightView& w, const float* x, size_t n,
                float* y, uint64_t row_begin, uint64_t row_end) {
  thread_local std::vector<float> decoded;
  const size_t cols = static_cast<size_t>(w.cols);
  if (decoded.size() < kRowGroup * cols) decoded.resize(kRowGroup * cols);
  for (uint64_t r = row_begin; r < row_end; r += kRowGroup) {
    const size_t group = static_cast<size_t>(std::min<uint64_t>(kRowGroup, row_end - r));
    for (size_t i = 0; i < group; ++i) DecodeRow(w, r + i, decoded.data() + i * cols, kernels.level);
    kernels.dot_rows(decoded.data(), group, x, n, cols, y + r, static_cast<size_t>(w.rows));
  }
}

}  // namespace

// ------------------------------------------------------------- WeightView ---

absl::StatusOr<WeightView> WeightView::FromBytes(DType dtype, uint64_t rows, uint64_t cols,
                                                 std::span<const uint8_t> data,
                                                 format::TensorLayout layout) {
  if (!format::IsKnownDType(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight matrix has unsupported dtype value ", static_cast<int>(dtype)));
  }
  if (format::IsQuantized(dtype) && !kernels_internal::IsIntegerDType(dtype)) {
    return absl::UnimplementedError(absl::StrCat("weight matrix of ", format::DTypeName(dtype),
                                                 ": this runtime has no kernel for it"));
  }
  const uint64_t shape[2] = {rows, cols};
  absl::StatusOr<uint64_t> size = format::TensorByteSize(dtype, shape);
  if (!size.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("weight matrix [", rows, ", ", cols, "] of ",
                                                   format::DTypeName(dtype),
                                                   ": ", size.status().message()));
  }
  if (*size != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight matrix [", rows, ", ", cols, "] of ", format::DTypeName(dtype), " needs ", *size,
        " bytes, got ", data.size()));
  }
  if (layout != format::LAYOUT_ROW_MAJOR &&
      !(layout == format::LAYOUT_ROW_GROUPS_16 && format::SupportsRowGroups(dtype))) {
    return absl::InvalidArgumentError(absl::StrCat("weight matrix of ", format::DTypeName(dtype),
                                                   " cannot have layout ",
                                                   format::TensorLayout_Name(layout)));
  }
  return WeightView{dtype, rows, cols, data.data(), layout};
}

absl::StatusOr<WeightView> WeightView::FromTensor(const format::TensorEntry& entry,
                                                  std::span<const uint8_t> data) {
  if (entry.shape_size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", entry.name(),
                                                   "' is not a matrix: shape [",
                                                   absl::StrJoin(entry.shape(), ", "), "]"));
  }
  if (entry.nbytes() != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", entry.name(), "': manifest says ",
                                                   entry.nbytes(), " bytes, data holds ",
                                                   data.size()));
  }
  absl::StatusOr<WeightView> view =
      FromBytes(entry.dtype(), entry.shape(0), entry.shape(1), data, entry.layout());
  if (!view.ok()) {
    return absl::Status(view.status().code(),
                        absl::StrCat("tensor '", entry.name(), "': ", view.status().message()));
  }
  return view;
}

uint64_t WeightView::row_bytes() const {
  return cols / format::BlockElements(dtype) * format::BlockBytes(dtype);
}

// ---------------------------------------------------------------- products ---

namespace {

using kernels_internal::DotKernels;
using kernels_internal::IsIntegerDType;
using kernels_internal::QuantizedActivations;

// Inputs at or above which the activations are quantized in parallel.
constexpr size_t kParallelQuantizeInputs = 8;

// The integer products of `projections` (all quantized, equal cols): the
// inputs are quantized once into the calling thread's buffer, then one
// ParallelFor splits the row groups of all projections between threads.
void IntegerProducts(std::span<const Projection> projections, const float* x, size_t n,
                     ThreadPool* pool, SimdLevel level) {
  const DotKernels& kernels =
      *kernels_internal::DotKernelsFor(kernels_internal::DotIsaFor(level));
  const size_t cols = static_cast<size_t>(projections.front().weight->cols);
  // One buffer per activation kind that some projection reads (a Q4_K_M
  // layer mixes q4_k with q6_k, a Q4_0 model has a q6_k output head).
  thread_local QuantizedActivations thread_activations[2];
  // The calling thread's buffers, which the pool's threads read (naming the
  // thread_local inside the lambdas would give each thread its own).
  QuantizedActivations* const activations = thread_activations;
  bool needed[2] = {false, false};
  for (const Projection& p : projections) {
    needed[static_cast<int>(kernels_internal::ActivationKindOf(p.weight->dtype))] = true;
  }
  const bool parallel = pool != nullptr && pool->num_threads() > 1;
  for (int kind = 0; kind < 2; ++kind) {
    if (!needed[kind]) continue;
    QuantizedActivations& a = activations[kind];
    const kernels_internal::QuantizeFn quantize =
        kind == static_cast<int>(kernels_internal::ActivationKind::kSuperBlock)
            ? kernels.quantize_k
            : kernels.quantize;
    a.Resize(n, cols);
    if (parallel && n >= kParallelQuantizeInputs) {
      pool->ParallelFor(0, n, 1, [&](size_t begin, size_t end) {
        for (size_t j = begin; j < end; ++j) quantize(x + j * cols, a, j);
      });
    } else {
      for (size_t j = 0; j < n; ++j) quantize(x + j * cols, a, j);
    }
  }

  // Units of work: row groups, numbered across the projections in order:
  // the kernels' groups for row-major matrices, the layout's 16-row groups
  // for row-grouped ones (whose last rows % 16 rows are row-major).
  auto group_of = [&](const WeightView& w) {
    return w.layout == format::LAYOUT_ROW_GROUPS_16 ? format::kRowGroupRows : kernels.row_group;
  };
  size_t units = 0;
  uint64_t bytes = 0;
  for (const Projection& p : projections) {
    const uint64_t group = group_of(*p.weight);
    units += static_cast<size_t>((p.weight->rows + group - 1) / group);
    bytes += p.weight->rows * p.weight->row_bytes();
  }
  auto run = [&](size_t unit_begin, size_t unit_end) {
    size_t first = 0;  // first unit of the current projection
    for (const Projection& p : projections) {
      const WeightView& w = *p.weight;
      const QuantizedActivations& a =
          activations[static_cast<int>(kernels_internal::ActivationKindOf(w.dtype))];
      const uint64_t group = group_of(w);
      const size_t count = static_cast<size_t>((w.rows + group - 1) / group);
      const size_t begin = std::max(unit_begin, first);
      const size_t end = std::min(unit_end, first + count);
      if (begin < end) {
        const uint64_t row_begin = (begin - first) * group;
        const uint64_t row_end = std::min<uint64_t>(w.rows, (end - first) * group);
        const size_t stride = static_cast<size_t>(w.rows);
        if (w.layout == format::LAYOUT_ROW_GROUPS_16) {
          const uint64_t grouped = w.rows / group * group;  // rows in whole groups
          if (row_begin < grouped) {
            kernels_internal::GroupedKernel(kernels, w.dtype)(w, a, p.y, stride, row_begin,
                                                              std::min(row_end, grouped));
          }
          if (row_end > grouped) {  // the row-major tail
            kernels_internal::IntKernel(kernels, w.dtype)(w, a, p.y, stride,
                                                          std::max(row_begin, grouped), row_end);
          }
        } else {
          kernels_internal::IntKernel(kernels, w.dtype)(w, a, p.y, stride, row_begin, row_end);
        }
      }
      first += count;
    }
  };
  if (!parallel) {
    run(0, units);
    return;
  }
  // One input reads each weight once: a piece must hold enough bytes to be
  // worth a thread. Several inputs make every group worth one.
  size_t grain = 1;
  if (n == 1) {
    const uint64_t unit_bytes = std::max<uint64_t>(1, bytes / std::max<size_t>(units, 1));
    grain = static_cast<size_t>((kMinPieceBytes + unit_bytes - 1) / unit_bytes);
  }
  pool->ParallelFor(0, units, grain, run);
}

}  // namespace

void MatVec(const WeightView& w, const float* x, float* y, ThreadPool* pool) {
  MatVec(w, x, y, pool, format::DetectSimdLevel());
}

namespace {

// ggml multiplies f16 (bf16) weights by activations rounded to f16 (bf16),
// its vec_dot_type for them. The same rounding here keeps the greedy output
// of f16 containers identical to llama.cpp's where two logits nearly tie;
// it costs one conversion per input element. Returns `x` for other dtypes,
// else a thread-local copy valid until the next call on this thread.
const float* RoundActivations(DType dtype, const float* x, size_t count) {
  if (dtype != format::DTYPE_F16 && dtype != format::DTYPE_BF16) return x;
  thread_local std::vector<float> rounded;
  rounded.resize(count);
  if (dtype == format::DTYPE_F16) {
    for (size_t i = 0; i < count; ++i) rounded[i] = format::HalfToFloat(format::FloatToHalf(x[i]));
  } else {
    for (size_t i = 0; i < count; ++i) {
      rounded[i] = format::BFloat16ToFloat(format::FloatToBFloat16(x[i]));
    }
  }
  return rounded.data();
}

// MatVec() of a float weight type on activations already rounded.
void FloatMatVec(const WeightView& w, const float* x, float* y, ThreadPool* pool,
                 SimdLevel level) {
  const MatVecRowsFn kernel = MatVecKernel(KernelsFor(level), w.dtype);
  if (pool == nullptr || pool->num_threads() == 1) {
    kernel(w, x, y, 0, w.rows);
    return;
  }
  pool->ParallelFor(0, static_cast<size_t>(w.rows), RowGrain(w.row_bytes()),
                    [&](size_t begin, size_t end) { kernel(w, x, y, begin, end); });
}

}  // namespace

void MatVec(const WeightView& w, const float* x, float* y, ThreadPool* pool, SimdLevel level) {
  if (IsIntegerDType(w.dtype)) {
    const Projection projection{&w, y};
    IntegerProducts({&projection, 1}, x, 1, pool, level);
    return;
  }
  FloatMatVec(w, RoundActivations(w.dtype, x, static_cast<size_t>(w.cols)), y, pool, level);
}

void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool) {
  MatMul(w, x, n, y, pool, format::DetectSimdLevel());
}

void MatMul(const WeightView& w, const float* x, size_t n, float* y, ThreadPool* pool,
            SimdLevel level) {
  if (n == 0) return;
  if (IsIntegerDType(w.dtype)) {
    const Projection projection{&w, y};
    IntegerProducts({&projection, 1}, x, n, pool, level);
    return;
  }
  x = RoundActivations(w.dtype, x, n * static_cast<size_t>(w.cols));
  if (n == 1) {
    // The float MatVec kernels follow the same order as MatMulRows.
    FloatMatVec(w, x, y, pool, level);
    return;
  }
  const LevelKernels& kernels = KernelsFor(level);
  if (pool == nullptr || pool->num_threads() == 1) {
    MatMulRows(kernels, w, x, n, y, 0, w.rows);
    return;
  }
  pool->ParallelFor(0, static_cast<size_t>(w.rows), kRowGroup,
                    [&](size_t begin, size_t end) { MatMulRows(kernels, w, x, n, y, begin, end); });
}

void MatMulMany(std::span<const Projection> projections, const float* x, size_t n,
                ThreadPool* pool) {
  MatMulMany(projections, x, n, pool, format::DetectSimdLevel());
}

void MatMulMany(std::span<const Projection> projections, const float* x, size_t n,
                ThreadPool* pool, SimdLevel level) {
  if (n == 0 || projections.empty()) return;
  // Quantized weights share one pass; float ones (kept in f16 by policy, say)
  // run on their own.
  Projection integer[8];
  size_t count = 0;
  for (const Projection& p : projections) {
    if (IsIntegerDType(p.weight->dtype) && count < std::size(integer)) {
      integer[count++] = p;
    } else {
      MatMul(*p.weight, x, n, p.y, pool, level);
    }
  }
  if (count > 0) IntegerProducts({integer, count}, x, n, pool, level);
}

void DequantizeRow(const WeightView& w, uint64_t row, float* out) {
  DecodeRow(w, row, out, format::DetectSimdLevel());
}

namespace kernels_internal {

uint64_t KernelScratchBytes(std::span<const WeightUse> uses, int threads) {
  const uint64_t t = static_cast<uint64_t>(std::max(threads, 1));
  uint64_t activation_elements[2] = {0, 0};  // largest n * cols per activation kind
  uint64_t activation_cols[2] = {0, 0};
  uint64_t rounded = 0;       // RoundActivations(): n * cols floats
  uint64_t decoded_cols = 0;  // MatMulRows(): kRowGroup * cols floats
  uint64_t row_major = 0;     // DecodeRow(): one row's bytes
  for (const WeightUse& use : uses) {
    const WeightView& w = *use.weight;
    if (use.n == 0) {
      if (w.layout != format::LAYOUT_ROW_MAJOR) row_major = std::max(row_major, w.row_bytes());
      continue;
    }
    if (IsIntegerDType(w.dtype)) {
      const int kind = static_cast<int>(ActivationKindOf(w.dtype));
      if (use.n * w.cols > activation_elements[kind]) {
        activation_elements[kind] = use.n * w.cols;
        activation_cols[kind] = w.cols;
      }
      continue;
    }
    if (w.dtype == format::DTYPE_F16 || w.dtype == format::DTYPE_BF16) {
      rounded = std::max<uint64_t>(rounded, use.n * w.cols);
    }
    if (use.n > 1) decoded_cols = std::max(decoded_cols, w.cols);
  }
  uint64_t bytes = 0;
  for (int kind = 0; kind < 2; ++kind) {
    if (activation_elements[kind] == 0) continue;
    bytes += QuantizedActivations::StorageBytes(
        static_cast<size_t>(activation_elements[kind] / activation_cols[kind]),
        static_cast<size_t>(activation_cols[kind]));
  }
  // ThreadScratch() of the dot kernels this CPU runs: the largest call, on
  // every thread (plus its 64 bytes of alignment room).
  const DotKernels& dot = *DotKernelsFor(DotIsaFor(format::DetectSimdLevel()));
  uint64_t thread_scratch = 0;
  if (dot.thread_scratch != nullptr) {
    for (const WeightUse& use : uses) {
      if (use.n == 0 || !IsIntegerDType(use.weight->dtype)) continue;
      thread_scratch = std::max<uint64_t>(thread_scratch, dot.thread_scratch(*use.weight, use.n) + 64);
    }
  }
  bytes += t * thread_scratch;
  bytes += rounded * sizeof(float);
  bytes += t * kRowGroup * decoded_cols * sizeof(float);
  bytes += t * row_major;
  return bytes;
}

}  // namespace kernels_internal

}  // namespace zcpack::runtime
