#include "zcpack/converter/quantize.h"

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quantize_kernels.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/status_macros.h"

#if defined(__x86_64__)
#define ZCPACK_QUANTIZE_X86 1
#endif

namespace zcpack::converter {
namespace {

using format::SimdLevel;
using quantize_internal::ErrorSums;

// The kernels of one SimdLevel. Quantizers take a block count.
struct QuantizeKernels {
  void (*q4_0)(const float* src, size_t n_blocks, uint8_t* dst);
  void (*q4_k)(const float* src, size_t n_blocks, uint8_t* dst);
  void (*q8_0)(const float* src, size_t n_blocks, uint8_t* dst);
  ErrorSums (*measure)(const float* source, const float* decoded, size_t n);
};

const QuantizeKernels& KernelsFor(SimdLevel level) {
  namespace qi = quantize_internal;
  static constexpr QuantizeKernels kScalar = {qi::QuantizeQ4_0Scalar, qi::QuantizeQ4_KScalar,
                                              qi::QuantizeQ8_0Scalar, qi::MeasureErrorScalar};
#if defined(ZCPACK_QUANTIZE_X86)
  static constexpr QuantizeKernels kAvx2 = {qi::QuantizeQ4_0Avx2, qi::QuantizeQ4_KAvx2,
                                            qi::QuantizeQ8_0Avx2, qi::MeasureErrorAvx2};
  static constexpr QuantizeKernels kAvx512 = {qi::QuantizeQ4_0Avx512, qi::QuantizeQ4_KAvx512,
                                              qi::QuantizeQ8_0Avx512, qi::MeasureErrorAvx512};
  switch (format::SupportedSimdLevel(level)) {
    case SimdLevel::kAvx512: return kAvx512;
    case SimdLevel::kAvx2: return kAvx2;
    default: break;
  }
#endif
  return kScalar;
}

ErrorSums MeasureError(const float* source, const float* decoded, size_t n, SimdLevel level) {
  return KernelsFor(level).measure(source, decoded, n);
}

// Quantizes n floats (a multiple of dtype's block) into dst and decodes the
// blocks back into `decoded`; dtype is one of the block types QuantizeRows()
// accepts.
void QuantizeAndDecode(format::DType dtype, const float* src, size_t n, uint8_t* dst,
                       float* decoded, SimdLevel level) {
  switch (dtype) {
    case format::DTYPE_Q4_0:
      QuantizeQ4_0(src, n, dst, level);
      format::DequantizeQ4_0(dst, n, decoded, level);
      break;
    case format::DTYPE_Q4_K:
      QuantizeQ4_K(src, n, dst, level);
      format::DequantizeQ4_K(dst, n, decoded, level);
      break;
    case format::DTYPE_Q8_0:
      QuantizeQ8_0(src, n, dst, level);
      format::DequantizeQ8_0(dst, n, decoded, level);
      break;
    default: break;  // unreachable: QuantizeRows() checked the dtype
  }
}

// Bytes per element of the float source types QuantizeRows() reads; 0 otherwise.
uint64_t SourceElementBytes(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_F32:
    case format::DTYPE_F16:
    case format::DTYPE_BF16: return format::BlockBytes(dtype);
    default: return 0;
  }
}

}  // namespace

void QuantizeQ4_0(const float* src, size_t n, uint8_t* dst) {
  QuantizeQ4_0(src, n, dst, format::DetectSimdLevel());
}

void QuantizeQ4_0(const float* src, size_t n, uint8_t* dst, SimdLevel level) {
  KernelsFor(level).q4_0(src, n / format::kQ4_0BlockElements, dst);
}

void QuantizeQ4_K(const float* src, size_t n, uint8_t* dst) {
  QuantizeQ4_K(src, n, dst, format::DetectSimdLevel());
}

void QuantizeQ4_K(const float* src, size_t n, uint8_t* dst, SimdLevel level) {
  KernelsFor(level).q4_k(src, n / format::kQ4_KBlockElements, dst);
}

void QuantizeQ8_0(const float* src, size_t n, uint8_t* dst) {
  QuantizeQ8_0(src, n, dst, format::DetectSimdLevel());
}

void QuantizeQ8_0(const float* src, size_t n, uint8_t* dst, SimdLevel level) {
  KernelsFor(level).q8_0(src, n / format::kQ8_0BlockElements, dst);
}

// ------------------------------------------------------------- ExactSum ---

namespace quantize_internal {
namespace {
// Each Add() puts less than 2^32 into a limb; normalising this often keeps
// every limb far below 2^64.
constexpr uint32_t kNormalizeEvery = uint32_t{1} << 30;
}  // namespace

void ExactSum::Add(double value) {
  if (std::isnan(value)) {
    has_nan_ = true;
    return;
  }
  if (std::isinf(value)) {
    has_inf_ = true;
    return;
  }
  // value = mantissa * 2^(pos - 1074), pos >= 0 (the sign is ignored: terms
  // are non-negative by contract).
  const uint64_t bits = std::bit_cast<uint64_t>(value) & ~(uint64_t{1} << 63);
  if (bits == 0) return;
  const uint64_t biased_exponent = bits >> 52;
  uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
  int pos = 0;
  if (biased_exponent != 0) {
    mantissa |= uint64_t{1} << 52;
    pos = static_cast<int>(biased_exponent) - 1;
  }
  const int limb = pos / 32;
  const int shift = pos % 32;
  const uint64_t above_32 = shift == 0 ? mantissa >> 32 : mantissa >> (32 - shift);
  limbs_[limb] += (mantissa << shift) & 0xffffffffu;
  limbs_[limb + 1] += above_32 & 0xffffffffu;
  limbs_[limb + 2] += above_32 >> 32;
  if (++pending_ >= kNormalizeEvery) Normalize();
}

void ExactSum::Normalize() {
  uint64_t carry = 0;
  for (uint64_t& limb : limbs_) {
    const uint64_t t = limb + carry;
    limb = t & 0xffffffffu;
    carry = t >> 32;
  }
  pending_ = 0;
}

void ExactSum::Merge(const ExactSum& other) {
  ExactSum rhs = other;
  rhs.Normalize();
  Normalize();
  for (int i = 0; i < kLimbs; ++i) limbs_[i] += rhs.limbs_[i];
  has_nan_ = has_nan_ || rhs.has_nan_;
  has_inf_ = has_inf_ || rhs.has_inf_;
  Normalize();
}

double ExactSum::Value() const {
  if (has_nan_) return std::numeric_limits<double>::quiet_NaN();
  if (has_inf_) return std::numeric_limits<double>::infinity();
  ExactSum canonical = *this;
  canonical.Normalize();
  int top = kLimbs - 1;
  while (top >= 0 && canonical.limbs_[top] == 0) --top;
  if (top < 0) return 0.0;
  // The top four limbs (at least 97 significant bits) determine the double;
  // adding them from the top down is deterministic for the canonical state.
  double result = 0.0;
  for (int i = top; i >= 0 && i > top - 4; --i) {
    result += std::ldexp(static_cast<double>(canonical.limbs_[i]), 32 * i - 1074);
  }
  return result;
}

}  // namespace quantize_internal

// ------------------------------------------------- QuantErrorAccumulator ---

void QuantErrorAccumulator::Add(const float* source, const float* decoded, size_t n) {
  Add(source, decoded, n, format::DetectSimdLevel());
}

void QuantErrorAccumulator::Add(const float* source, const float* decoded, size_t n,
                                SimdLevel level) {
  if (n == 0) return;
  const ErrorSums sums = MeasureError(source, decoded, n, level);
  AddSums(sums.sum_sq_source, sums.sum_sq_error, sums.max_abs_error, n);
}

void QuantErrorAccumulator::AddRows(const float* source, const float* decoded, size_t n,
                                    size_t row_length) {
  AddRows(source, decoded, n, row_length, format::DetectSimdLevel());
}

void QuantErrorAccumulator::AddRows(const float* source, const float* decoded, size_t n,
                                    size_t row_length, SimdLevel level) {
  if (row_length == 0) row_length = n;
  const size_t piece = row_length < kQuantizePieceElements ? row_length : kQuantizePieceElements;
  for (size_t row = 0; row < n; row += row_length) {
    const size_t row_end = n - row < row_length ? n : row + row_length;
    for (size_t i = row; i < row_end; i += piece) {
      const size_t len = row_end - i < piece ? row_end - i : piece;
      Add(source + i, decoded + i, len, level);
    }
  }
}

void QuantErrorAccumulator::AddSums(double sum_sq_source, double sum_sq_error, float max_abs_error,
                                    uint64_t n) {
  sum_sq_source_.Add(sum_sq_source);
  sum_sq_error_.Add(sum_sq_error);
  if (max_abs_error > max_abs_error_) max_abs_error_ = max_abs_error;
  count_ += n;
}

void QuantErrorAccumulator::Merge(const QuantErrorAccumulator& other) {
  sum_sq_source_.Merge(other.sum_sq_source_);
  sum_sq_error_.Merge(other.sum_sq_error_);
  if (other.max_abs_error_ > max_abs_error_) max_abs_error_ = other.max_abs_error_;
  count_ += other.count_;
}

double QuantErrorAccumulator::rmse() const {
  if (count_ == 0) return 0.0;
  return std::sqrt(sum_squared_error() / static_cast<double>(count_));
}

double QuantErrorAccumulator::snr_db() const {
  const double error = sum_squared_error();
  const double source = sum_squared_source();
  if (error == 0.0) return kInfiniteSnrDb;
  if (source == 0.0) return -kInfiniteSnrDb;
  return 10.0 * std::log10(source / error);
}

format::QuantStats QuantErrorAccumulator::Stats() const {
  format::QuantStats stats;
  stats.set_rmse(rmse());
  stats.set_max_abs_error(max_abs_error());
  stats.set_snr_db(snr_db());
  return stats;
}

// ---------------------------------------------------------- QuantizeRows ---

absl::Status QuantizeRows(format::DType src_dtype, std::span<const uint8_t> src,
                          uint64_t row_length, format::DType dst_dtype, std::span<uint8_t> dst,
                          QuantErrorAccumulator* stats) {
  return QuantizeRows(src_dtype, src, row_length, dst_dtype, dst, stats, format::DetectSimdLevel());
}

absl::Status QuantizeRows(format::DType src_dtype, std::span<const uint8_t> src,
                          uint64_t row_length, format::DType dst_dtype, std::span<uint8_t> dst,
                          QuantErrorAccumulator* stats, SimdLevel level) {
  const uint64_t src_bytes = SourceElementBytes(src_dtype);
  if (src_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize from dtype ",
                                                   format::DTypeName(src_dtype),
                                                   " (expected f32, f16 or bf16)"));
  }
  if (!format::IsQuantized(dst_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize to dtype ",
                                                   format::DTypeName(dst_dtype),
                                                   " (expected q4_0, q4_k or q8_0)"));
  }
  const uint64_t block_elements = format::BlockElements(dst_dtype);
  const uint64_t block_bytes = format::BlockBytes(dst_dtype);
  if (row_length == 0 || row_length % block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("row length ", row_length,
                                                   " is not a multiple of ", block_elements, " as ",
                                                   format::DTypeName(dst_dtype), " requires"));
  }
  if (row_length > std::numeric_limits<uint64_t>::max() / src_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("row length ", row_length, " is too large"));
  }
  const uint64_t row_src_bytes = row_length * src_bytes;
  if (src.size() % row_src_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat("source holds ", src.size(),
                                                   " bytes, not a whole number of ", row_src_bytes,
                                                   "-byte rows"));
  }
  const uint64_t rows = src.size() / row_src_bytes;
  // Quantized rows are smaller than their source rows, so this cannot overflow.
  const uint64_t row_dst_bytes = row_length / block_elements * block_bytes;
  if (dst.size() != rows * row_dst_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("destination holds ", dst.size(), " bytes; ",
                                                   rows, " rows of ", format::DTypeName(dst_dtype),
                                                   " need ", rows * row_dst_bytes));
  }

  const uint64_t piece = row_length < kQuantizePieceElements ? row_length : kQuantizePieceElements;
  std::vector<float> source(piece);
  std::vector<float> decoded(piece);
  QuantErrorAccumulator local;
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t offset = 0; offset < row_length; offset += piece) {
      const uint64_t n = row_length - offset < piece ? row_length - offset : piece;
      const uint64_t first = r * row_length + offset;
      ZCPACK_RETURN_IF_ERROR(format::ConvertToFloat(src_dtype, src.data() + first * src_bytes, n,
                                                    source.data(), level));
      uint8_t* out = dst.data() + r * row_dst_bytes + offset / block_elements * block_bytes;
      QuantizeAndDecode(dst_dtype, source.data(), n, out, decoded.data(), level);
      const ErrorSums sums = MeasureError(source.data(), decoded.data(), n, level);
      if (!std::isfinite(sums.sum_sq_source) || !std::isfinite(sums.sum_sq_error)) {
        for (uint64_t i = 0; i < n; ++i) {
          if (!std::isfinite(source[i])) {
            return absl::InvalidArgumentError(
                absl::StrCat("element ", first + i, " (row ", r, ") is ", source[i],
                             "; only finite values can be quantized"));
          }
        }
        return absl::InvalidArgumentError(absl::StrCat("row ", r, " holds values too large for ",
                                                       format::DTypeName(dst_dtype),
                                                       " (its binary16 block scales overflow)"));
      }
      local.AddSums(sums.sum_sq_source, sums.sum_sq_error, sums.max_abs_error, n);
    }
  }
  if (stats != nullptr) stats->Merge(local);
  return absl::OkStatus();
}

}  // namespace zcpack::converter
