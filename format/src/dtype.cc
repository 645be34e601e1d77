#include "zcpack/format/dtype.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::format {
namespace {

constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 63;

}  // namespace

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DTYPE_F32: return "f32";
    case DTYPE_F16: return "f16";
    case DTYPE_BF16: return "bf16";
    case DTYPE_Q4_0: return "q4_0";
    case DTYPE_Q4_K: return "q4_k";
    case DTYPE_Q8_0: return "q8_0";
    case DTYPE_Q4_1: return "q4_1";
    case DTYPE_Q5_0: return "q5_0";
    case DTYPE_Q5_1: return "q5_1";
    case DTYPE_Q5_K: return "q5_k";
    case DTYPE_Q6_K: return "q6_k";
    default: return "unspecified";
  }
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (DType d : {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q8_0, DTYPE_Q4_1,
                  DTYPE_Q5_0, DTYPE_Q5_1, DTYPE_Q5_K, DTYPE_Q6_K}) {
    if (lower == DTypeName(d)) return d;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype '", name,
      "' (expected f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k or q6_k)"));
}

bool IsKnownDType(DType dtype) { return BlockElements(dtype) != 0; }

bool IsQuantized(DType dtype) { return BlockElements(dtype) > 1; }

uint64_t BlockElements(DType dtype) {
  switch (dtype) {
    case DTYPE_F32:
    case DTYPE_F16:
    case DTYPE_BF16: return 1;
    case DTYPE_Q4_0: return kQ4_0BlockElements;
    case DTYPE_Q4_K: return kQ4_KBlockElements;
    case DTYPE_Q8_0: return kQ8_0BlockElements;
    case DTYPE_Q4_1: return kQ4_1BlockElements;
    case DTYPE_Q5_0: return kQ5_0BlockElements;
    case DTYPE_Q5_1: return kQ5_1BlockElements;
    case DTYPE_Q5_K: return kQ5_KBlockElements;
    case DTYPE_Q6_K: return kQ6_KBlockElements;
    default: return 0;
  }
}

uint64_t BlockBytes(DType dtype) {
  switch (dtype) {
    case DTYPE_F32: return 4;
    case DTYPE_F16:
    case DTYPE_BF16: return 2;
    case DTYPE_Q4_0: return kQ4_0BlockBytes;
    case DTYPE_Q4_K: return kQ4_KBlockBytes;
    case DTYPE_Q8_0: return kQ8_0BlockBytes;
    case DTYPE_Q4_1: return kQ4_1BlockBytes;
    case DTYPE_Q5_0: return kQ5_0BlockBytes;
    case DTYPE_Q5_1: return kQ5_1BlockBytes;
    case DTYPE_Q5_K: return kQ5_KBlockBytes;
    case DTYPE_Q6_K: return kQ6_KBlockBytes;
    default: return 0;
  }
}

absl::StatusOr<uint64_t> ElementCount(std::span<const uint64_t> shape) {
  uint64_t count = 1;
  for (uint64_t dim : shape) {
    if (dim != 0 && count > kMaxTensorBytes / dim) {
      return absl::OutOfRangeError(
          absl::StrCat("shape [", absl::StrJoin(shape, ", "), "] has more than 2^63 elements"));
    }
    count *= dim;
  }
  return count;
}

absl::StatusOr<uint64_t> TensorByteSize(DType dtype, std::span<const uint64_t> shape) {
  const uint64_t block_elements = BlockElements(dtype);
  if (block_elements == 0) {
    return absl::InvalidArgumentError(absl::StrCat("unknown dtype value ", static_cast<int>(dtype)));
  }
  if (shape.empty()) return absl::InvalidArgumentError("shape has rank 0");
  for (uint64_t dim : shape) {
    if (dim == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape [", absl::StrJoin(shape, ", "), "] has a zero dimension"));
    }
  }
  if (shape.back() % block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "last dimension ", shape.back(), " is not a multiple of the ", DTypeName(dtype),
        " block size ", block_elements));
  }
  auto count = ElementCount(shape);
  if (!count.ok()) return count.status();
  const uint64_t blocks = *count / block_elements;
  const uint64_t block_bytes = BlockBytes(dtype);
  if (blocks > kMaxTensorBytes / block_bytes) {
    return absl::OutOfRangeError(absl::StrCat("shape [", absl::StrJoin(shape, ", "), "] of ",
                                              DTypeName(dtype), " exceeds 2^63 bytes"));
  }
  return blocks * block_bytes;
}

}  // namespace zcpack::format
