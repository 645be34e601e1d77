// Element types of stored tensors: names, block geometry and byte sizes.
#ifndef ZCPACK_FORMAT_DTYPE_H_
#define ZCPACK_FORMAT_DTYPE_H_

#include <cstdint>
#include <span>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format {

// DTypeName(): "f32", "f16", "bf16", "q4_0", "q4_k", "q8_0", "q4_1", "q5_0",
// "q5_1", "q5_k", "q6_k"; "unspecified" otherwise.
absl::string_view DTypeName(DType dtype);

// ParseDType(): the inverse of DTypeName(), case-insensitive. InvalidArgument
// for an unknown name.
absl::StatusOr<DType> ParseDType(absl::string_view name);

// IsKnownDType(): one of the eleven types of the DType enum.
bool IsKnownDType(DType dtype);

// IsQuantized(): a block type (every known type but f32, f16 and bf16).
bool IsQuantized(DType dtype);

// BlockElements(): elements per block along the last dimension (1 for float
// types, 32 for q4_0, q4_1, q5_0, q5_1 and q8_0, 256 for q4_k, q5_k and
// q6_k). 0 for unknown types.
uint64_t BlockElements(DType dtype);

// BlockBytes(): bytes per block (4, 2, 2, 18, 144, 34). 0 for unknown types.
uint64_t BlockBytes(DType dtype);

// ElementCount(): the product of the dimensions. A rank-0 shape has one
// element. OutOfRange when the product overflows 2^63.
absl::StatusOr<uint64_t> ElementCount(std::span<const uint64_t> shape);

// TensorByteSize(): the exact stored size of a tensor of this type and shape.
// InvalidArgument when the type is unknown, the shape has rank 0 or a zero
// dimension, or the last dimension is not a multiple of BlockElements();
// OutOfRange when the size overflows 2^63.
absl::StatusOr<uint64_t> TensorByteSize(DType dtype, std::span<const uint64_t> shape);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_DTYPE_H_
