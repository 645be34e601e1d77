// Internal: the per-instruction-set quantization kernels behind quantize.h.
//
// quantize.cc dispatches to these after checking the CPU (format::
// SupportedSimdLevel); the AVX2 and AVX-512 kernels must not be called on a
// CPU without those instruction sets. All kernels of one family produce
// identical results (see quantize_lanes.h for why).
#ifndef ZCPACK_CONVERTER_SRC_QUANTIZE_KERNELS_H_
#define ZCPACK_CONVERTER_SRC_QUANTIZE_KERNELS_H_

#include <cstddef>
#include <cstdint>

namespace zcpack::converter::quantize_internal {

// Quantize n_blocks q4_0 blocks (32 floats each) from src into dst.
void QuantizeQ4_0Scalar(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ4_0Avx2(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ4_0Avx512(const float* src, size_t n_blocks, uint8_t* dst);

// Quantize n_blocks q8_0 blocks (32 floats each) from src into dst.
void QuantizeQ8_0Scalar(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ8_0Avx2(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ8_0Avx512(const float* src, size_t n_blocks, uint8_t* dst);

// Quantize n_blocks q4_k super-blocks (256 floats each) from src into dst.
void QuantizeQ4_KScalar(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ4_KAvx2(const float* src, size_t n_blocks, uint8_t* dst);
void QuantizeQ4_KAvx512(const float* src, size_t n_blocks, uint8_t* dst);

// Q4_KFinishScales(): the scalar step shared by every q4_k kernel. From the
// eight sub-block fits of one super-block (scale >= 0, min >= 0: x ~ scale*l -
// min), writes d, dmin and scales[12] of the super-block at `block`, and
// returns for each sub-block the quantized min `sub_min` and the inverse
// `inv_scale` of its quantized scale (0 when that scale is 0), from which the
// codes are clamp(round_even((x + sub_min) * inv_scale), 0, 15).
void Q4_KFinishScales(const float scales[8], const float mins[8], uint8_t* block, float sub_min[8],
                      float inv_scale[8]);

// Error sums of a span, in a fixed order that every kernel follows: element
// i goes to lane i % 16, where its x^2 and (x - y)^2 (y the decoded value,
// x - y rounded to float) are added to float partial sums with fused
// multiply-adds; after every 256 elements of the span (16 per lane), and at
// its end, each float partial is added to the lane's double sum and reset.
// The lanes' double sums are added in order 0..15 at the end. The maximum is
// order-independent.
inline constexpr int kErrorLanes = 16;
inline constexpr int kErrorGroup = 256;  // elements per float partial flush
struct ErrorLanes {
  double source[kErrorLanes] = {};
  double error[kErrorLanes] = {};
  float source_part[kErrorLanes] = {};
  float error_part[kErrorLanes] = {};
  float max_abs_error = 0.0f;
};
struct ErrorSums {
  double sum_sq_source = 0.0;
  double sum_sq_error = 0.0;
  float max_abs_error = 0.0f;
};

// MeasureErrorTail(): continues `lanes` with elements [begin, n), scalar.
void MeasureErrorTail(const float* source, const float* decoded, size_t begin, size_t n,
                      ErrorLanes* lanes);
// FinishErrorLanes(): flushes the float partials and returns the span's sums.
ErrorSums FinishErrorLanes(ErrorLanes& lanes);

ErrorSums MeasureErrorScalar(const float* source, const float* decoded, size_t n);
ErrorSums MeasureErrorAvx2(const float* source, const float* decoded, size_t n);
ErrorSums MeasureErrorAvx512(const float* source, const float* decoded, size_t n);

}  // namespace zcpack::converter::quantize_internal

#endif  // ZCPACK_CONVERTER_SRC_QUANTIZE_KERNELS_H_
