// Internal: the per-tensor rules shared by the reader (which rejects files that
// break them) and the writer (which refuses to plan such a file).
#ifndef ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_
#define ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format::internal {

// The header fields the tensor table is checked against.
struct DataLayout {
  uint64_t alignment = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t required_features = 0;  // for TensorLayoutProblem()
};

// AlignUp(): the next multiple of `alignment` (a power of two) at or above v.
// The caller guarantees v + alignment - 1 does not overflow.
inline uint64_t AlignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) & ~(alignment - 1);
}

// ValidateTensorTable(): checks every tensor entry against the layout and the
// limits, in file order: name (non-empty, bounded, unique), dtype known, rank
// in [1, max_rank], no zero dimension, byte size for dtype and shape (without
// overflow), nbytes equal to it, layout valid (TensorLayoutProblem()), offset aligned and inside the data region,
// offsets strictly increasing with no overlap, layer in [-1, count), each
// layer one contiguous run in non-decreasing layer order, and tensors outside
// the layers (layer -1) only before the first layer or after the last (SPEC.md,
// "Ordering and layers"). On success fills
// `layer_ranges` (index = layer; size 0 for a layer without tensors).
// Returns DataLoss for a defect, ResourceExhausted for an exceeded limit; the
// message names `file` and the tensor.
absl::Status ValidateTensorTable(const google::protobuf::RepeatedPtrField<TensorEntry>& tensors,
                                 const DataLayout& layout, const ReaderLimits& limits,
                                 absl::string_view file, std::vector<ByteRange>* layer_ranges);

}  // namespace zcpack::format::internal

#endif  // ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_
