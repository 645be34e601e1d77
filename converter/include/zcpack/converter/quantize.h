// Block quantizers: float weights to ggml-compatible q4_0, q4_k and q8_0
// blocks, with per-tensor error statistics.
//
// The block layouts are defined by the decoders in zcpack/format/q4_blocks.h;
// everything written here decodes correctly with them and with ggml.
//
// Determinism: for the same input floats, every function here produces the
// same bytes (and the same statistics) on every CPU. The SIMD kernels
// (AVX2+FMA+F16C, AVX-512) run, lane by lane, exactly the sequence of IEEE
// operations the scalar kernel runs, and the SimdLevel overloads let tests
// and benchmarks pick a kernel. This assumes the default floating-point
// environment (round to nearest even, no flush-to-zero), which is what every
// zcpack program runs in.
//
// Thread-safety: all functions are reentrant. A QuantErrorAccumulator is not
// synchronised: give each thread its own and Merge() them.
#ifndef ZCPACK_CONVERTER_QUANTIZE_H_
#define ZCPACK_CONVERTER_QUANTIZE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack::converter {

// QuantizeQ4_0(): quantizes src[0, n) into n / 32 q4_0 blocks at dst
// (n / 32 * 18 writable bytes). n must be a multiple of 32; a remainder is
// ignored.
//
// Each block's scale is chosen by an error search. Candidates: ggml's
// reference block (scale max / -8 and codes exactly as quantize_row_q4_0_ref
// computes them), the reference codes with their least-squares scale, and
// the codes of three more inverse scales (1.075, 0.9 and 1.025 times the
// reference's), each with its least-squares scale. Every error is
// measured with the scale rounded to binary16, as the decoder sees it. The
// reference is replaced only by a candidate whose squared error is smaller
// by more than the rounding in computing it (a 2^-12 relative margin), so no
// block is ever worse than ggml's reference, and a block is byte-identical
// to ggml's whenever the reference is kept. On normal or heavy-tailed
// weights the search removes about 7% of the reference's squared error
// (0.3 dB of SNR).
//
// Any input is accepted. Non-finite inputs, or magnitudes of about 8 * 65504
// and more (the binary16 scale overflows), give blocks that decode to
// non-finite values; QuantizeRows() rejects such tensors.
void QuantizeQ4_0(const float* src, size_t n, uint8_t* dst);
void QuantizeQ4_0(const float* src, size_t n, uint8_t* dst, format::SimdLevel level);

// QuantizeQ4_K(): quantizes src[0, n) into n / 256 q4_k super-blocks at dst
// (n / 256 * 144 writable bytes). n must be a multiple of 256; a remainder is
// ignored.
//
// Each 32-element sub-block gets a scale and a min found as ggml's
// quantize_row_q4_K_ref finds them (make_qkx2_quants: a 21-step search over
// inverse scales, each with a weighted least-squares refit, weights rms +
// |x|), with the errors computed from residuals so that they stay accurate
// next to outliers. The eight scales and mins are then quantized to 6 bits
// against the binary16 super-block factors as rounded (ggml quantizes them
// against the unrounded factors; a factor that would round to 0 becomes the
// smallest binary16 value instead), packed exactly as ggml packs them, and
// the codes are recomputed from the quantized factors. The squared error is
// within 0.1% of ggml's reference quantizer or better on the distributions
// tested. Inputs as for QuantizeQ4_0().
void QuantizeQ4_K(const float* src, size_t n, uint8_t* dst);
void QuantizeQ4_K(const float* src, size_t n, uint8_t* dst, format::SimdLevel level);

// QuantizeQ8_0(): quantizes src[0, n) into n / 32 q8_0 blocks at dst
// (n / 32 * 34 writable bytes). n must be a multiple of 32; a remainder is
// ignored.
//
// Exactly ggml's reference quantizer (quantize_row_q8_0_ref), with no search:
// amax = max |x|, d = amax / 127, id = d != 0 ? 1 / d : 0, code j =
// round(x[j] * id) with halfway cases rounded away from zero (roundf), and
// the stored scale d rounded to binary16 (to nearest, ties to even). The codes
// use the unrounded d, as ggml's do. The bytes equal ggml's wherever ggml
// defines them; where its result is undefined or order-dependent this
// defines it: NaN elements are skipped when finding amax, a NaN product gives code 0,
// and a product beyond +-127 (only when 1 / d overflows, for amax below about
// 3.7e-37, where the binary16 scale is 0 anyway) saturates to +-127.
//
// Magnitudes of about 127 * 65520 and more overflow the binary16 scale and
// give blocks that decode to non-finite values; QuantizeRows() rejects such
// tensors, and non-finite inputs.
void QuantizeQ8_0(const float* src, size_t n, uint8_t* dst);
void QuantizeQ8_0(const float* src, size_t n, uint8_t* dst, format::SimdLevel level);

// The longest span QuantizeRows() and QuantErrorAccumulator::AddRows()
// quantize and measure at once; longer rows are cut into spans of this many
// elements (a multiple of 256).
inline constexpr uint64_t kQuantizePieceElements = 16384;

namespace quantize_internal {

// ExactSum: the exact sum of finite non-negative doubles, kept as a 2176-bit
// fixed-point integer, so the result does not depend on the order of Add()
// and Merge() calls. Infinite or NaN terms make the sum infinite or NaN.
class ExactSum {
 public:
  void Add(double value);
  void Merge(const ExactSum& other);
  // Value(): the sum rounded to a double (deterministically, from the exact
  // value alone).
  double Value() const;

 private:
  static constexpr int kLimbs = 68;  // 32-bit limbs; bit 0 weighs 2^-1074
  void Normalize();

  std::array<uint64_t, kLimbs> limbs_{};
  uint32_t pending_ = 0;  // Add() calls since the last Normalize()
  bool has_nan_ = false;
  bool has_inf_ = false;
};

}  // namespace quantize_internal

// QuantErrorAccumulator: error statistics of a quantized tensor, gathered
// span by span.
//
// How to combine: Add() computes each span's two sums of squares in a fixed
// order (which depends only on the span's contents and length) and adds them
// to exact accumulators. The statistics therefore depend only on the set of
// spans added, never on the order of Add() calls, on which accumulator they
// went to, or on the order of Merge() calls. They do depend, in the last bits,
// on where spans begin and end: a pipeline whose work chunks vary in size
// (with the thread count or a chunk-size option) should add whole rows with
// AddRows(), as QuantizeRows() does; then the statistics are the same for any
// chunking, thread count and scheduling.
class QuantErrorAccumulator {
 public:
  // Add(): the error of decoded[0, n) against source[0, n), as one span.
  void Add(const float* source, const float* decoded, size_t n);
  void Add(const float* source, const float* decoded, size_t n, format::SimdLevel level);

  // AddRows(): the error of n elements that are whole rows of row_length
  // elements (n a multiple of row_length > 0; otherwise the tail is one more
  // span), one span per row or per kQuantizePieceElements of a longer row.
  void AddRows(const float* source, const float* decoded, size_t n, size_t row_length);
  void AddRows(const float* source, const float* decoded, size_t n, size_t row_length,
               format::SimdLevel level);

  // Merge(): adds everything `other` has seen.
  void Merge(const QuantErrorAccumulator& other);

  uint64_t count() const { return count_; }
  double sum_squared_source() const { return sum_sq_source_.Value(); }
  double sum_squared_error() const { return sum_sq_error_.Value(); }
  // rmse(): sqrt(sum (source - decoded)^2 / count); 0 when empty.
  double rmse() const;
  // max_abs_error(): max |source - decoded| (each difference rounded to float).
  double max_abs_error() const { return max_abs_error_; }
  // snr_db(): 10 * log10(sum source^2 / sum (source - decoded)^2). A zero
  // error (including an empty accumulator) reports kInfiniteSnrDb; a zero
  // source with a nonzero error reports -kInfiniteSnrDb.
  double snr_db() const;
  // Stats(): the three figures above, as stored in the manifest.
  format::QuantStats Stats() const;

  static constexpr double kInfiniteSnrDb = 1e9;

 private:
  friend absl::Status QuantizeRows(format::DType src_dtype, std::span<const uint8_t> src,
                                   uint64_t row_length, format::DType dst_dtype,
                                   std::span<uint8_t> dst, QuantErrorAccumulator* stats,
                                   format::SimdLevel level);
  // AddSums(): adds one span's sums, already measured.
  void AddSums(double sum_sq_source, double sum_sq_error, float max_abs_error, uint64_t n);

  quantize_internal::ExactSum sum_sq_source_;
  quantize_internal::ExactSum sum_sq_error_;
  float max_abs_error_ = 0.0f;
  uint64_t count_ = 0;
};

// QuantizeRows(): quantizes a row-major block of rows, the unit a conversion
// pipeline hands to a thread.
//
// `src` holds whole rows of `row_length` elements of `src_dtype` (F32, F16 or
// BF16, little-endian); its size fixes the row count. `dst` must be exactly
// the quantized size of those rows in `dst_dtype` (Q4_0, Q4_K or Q8_0): rows *
// row_length / BlockElements * BlockBytes. The rows are converted, quantized,
// decoded and measured one span at a time (see kQuantizePieceElements), so
// scratch memory stays at about 128 KiB whatever the tensor size. The error of
// every span is added to *stats (which may be null).
//
// Returns InvalidArgument, having written nothing or only part of dst, when
// the dtypes are not supported, row_length is 0 or not a multiple of the
// block size, src is not a whole number of rows, dst has the wrong size, a
// source value is not finite, or a value is too large for the binary16 block
// scales (the decoded block would not be finite). *stats is left unchanged
// on failure.
//
// Thread-safety: calls on disjoint dst ranges may run concurrently, each with
// its own accumulator; Merge() the accumulators afterwards in any order.
absl::Status QuantizeRows(format::DType src_dtype, std::span<const uint8_t> src,
                          uint64_t row_length, format::DType dst_dtype, std::span<uint8_t> dst,
                          QuantErrorAccumulator* stats);
absl::Status QuantizeRows(format::DType src_dtype, std::span<const uint8_t> src,
                          uint64_t row_length, format::DType dst_dtype, std::span<uint8_t> dst,
                          QuantErrorAccumulator* stats, format::SimdLevel level);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_QUANTIZE_H_
