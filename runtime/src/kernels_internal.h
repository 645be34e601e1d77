// Per-SimdLevel kernel tables behind kernels.h. Internal to the runtime.
//
// The one accumulation order. At a level with V-float vectors (16 for AVX-512,
// 8 for AVX2) the dot product of a decoded row w with x keeps two vector
// accumulators: vector k of the row (elements [kV, kV + V)) is added with a
// fused multiply-add into accumulator k % 2, in increasing k; a final partial
// vector is zero-padded. The result is the horizontal sum of acc0 + acc1.
// The scalar level keeps eight float accumulators (element i into i % 8,
// multiply then add) and sums them pairwise. The fused q4/f16/bf16/f32 MatVec
// kernels and the decoded-row MatMul kernels follow this order exactly, which
// is what makes MatMul() equal MatVec() bit for bit.
#ifndef ZCPACK_RUNTIME_SRC_KERNELS_INTERNAL_H_
#define ZCPACK_RUNTIME_SRC_KERNELS_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/kernels.h"

namespace zcpack::runtime::kernels_internal {

// The most rows a kernel computes together (register blocking: x is loaded
// once for all of them; 8 at AVX-512, 4 at AVX2). Thread pieces are multiples
// of this, so the smaller tail groups are rare.
inline constexpr uint64_t kRowGroup = 8;

// HalfToFloatTable(): HalfToFloat() of all 65536 binary16 values (256 KiB),
// built on first use (thread-safe). A table lookup (a broadcast load) is
// cheaper than converting one q4_0 scale per block with F16C, which occupies
// the same vector ports as the decoding shuffles.
const float* HalfToFloatTable();

// WeightUse: how a forward pass reads one weight, for KernelScratchBytes().
struct WeightUse {
  const WeightView* weight;
  // Inputs per product (MatMul(), MatMulMany(), MatVec() with n = 1); 0 for
  // a weight whose rows are decoded with DequantizeRow() (embeddings, norms).
  size_t n;
};

// KernelScratchBytes(): the thread-local buffers the kernels keep after the
// products and row decodes in `uses` ran on a pool of `threads` threads
// (buffers only grow, so this is their size from then on): the int8
// activations of each activation kind on the calling thread, the rounded
// activations of f16/bf16 products on the calling thread, the decoded row
// groups of float products of more than one input on every thread, and the
// row-major copy of a row decoded from a row-grouped matrix on every
// thread, and the packing scratch of the integer kernels this CPU runs on
// every thread (DotKernels::thread_scratch).
uint64_t KernelScratchBytes(std::span<const WeightUse> uses, int threads);

// How far ahead of its reads a MatVec kernel prefetches, beyond the rows it
// is computing. The kernels spend several cycles per cache line, so
// out-of-order execution alone keeps only a few misses in flight, and the
// hardware prefetchers do not reliably follow the interleaved row streams.
// A group of R rows is read in parallel, so the lead must cover the group
// (R * row_bytes) plus DRAM latency at ~10-15 GB/s per thread: a lead of
// 4 KiB beyond the group was at or near the best of 1-16 KiB measured on a
// Zen 4 and an Intel Xeon (AVX-512) virtual machine.
inline constexpr uint64_t kPrefetchLead = 4096;

// PrefetchStream: software prefetches that run `lead` bytes ahead of a kernel
// walking [first, limit) of `base` in address order. Advance(n) is called
// once per n bytes consumed; nothing at or past `limit` is touched.
struct PrefetchStream {
  const uint8_t* base;
  uint64_t next;   // offset of the next byte to prefetch
  uint64_t limit;  // end of the rows this call reads

  // Starts the stream: the first group and the lead are requested at once, so
  // that a call (or a thread's piece) does not begin with a run of misses.
  PrefetchStream(const uint8_t* data, uint64_t first, uint64_t end, uint64_t group_bytes)
      : base(data), next(first), limit(end) {
    Advance(group_bytes + kPrefetchLead);
  }

  void Advance(uint64_t bytes) {
    const uint64_t stop = std::min(next + bytes, limit);
    for (uint64_t offset = next; offset < stop; offset += 64) __builtin_prefetch(base + offset, 0, 1);
    next += bytes;
  }
};

// MatVecRowsFn: y[r] = dot(row r of w, x) for r in [row_begin, row_end).
// `y` is the whole output (indexed by r).
using MatVecRowsFn = void (*)(const WeightView& w, const float* x, float* y, uint64_t row_begin,
                              uint64_t row_end);

// DotRowsFn: for i < nrows (1..kRowGroup) and j < nvec:
// y[j * y_stride + i] = dot(rows + i * cols, x + j * cols), over cols floats.
using DotRowsFn = void (*)(const float* rows, size_t nrows, const float* x, size_t nvec,
                           size_t cols, float* y, size_t y_stride);

struct LevelKernels {
  format::SimdLevel level;
  MatVecRowsFn q4_0;
  MatVecRowsFn q4_k;
  MatVecRowsFn f16;
  MatVecRowsFn bf16;
  MatVecRowsFn f32;
  DotRowsFn dot_rows;  // decoded rows, for MatMul
};

const LevelKernels& ScalarKernels();
// nullptr when the build has no code for the level (non-x86 hosts).
const LevelKernels* Avx2Kernels();
const LevelKernels* Avx512Kernels();

}  // namespace zcpack::runtime::kernels_internal

#endif  // ZCPACK_RUNTIME_SRC_KERNELS_INTERNAL_H_
