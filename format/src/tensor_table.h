// Internal: the per-tensor rules of the container (format/SPEC.md, "Reader
// checks and limits", step 7), shared by CheckContainer() (reader and
// verify) and the writer (which refuses to plan a file that breaks them).
#ifndef ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_
#define ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/problem.h"
#include "zcpack/format/structural_rules.h"

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

// A rule over one tensor whose dtype, shape and nbytes agree (so its byte
// size is known), in a container with the header fields `layout`: returns the
// problem's detail, or nullopt. Per-tensor rules that need a well-sized
// tensor (such as the block layout of a quantized matrix) are added to
// kSizedTensorRules, and their names to StructuralRules() after "nbytes", in
// the same order. The first rule a tensor breaks is its only one reported.
struct SizedTensorRule {
  absl::string_view check;
  std::optional<std::string> (*problem)(const TensorEntry& tensor, const DataLayout& layout);
};

// LayoutRule(): format::TensorLayoutProblem() (row_groups.h) against the
// header's required features: the block order is one this reader knows, and
// row groups are only on a q4_0/q8_0/q4_k matrix with kFeatureRowGroups set.
std::optional<std::string> LayoutRule(const TensorEntry& tensor, const DataLayout& layout);

inline constexpr std::array<SizedTensorRule, 1> kSizedTensorRules{{
    {"layout", &LayoutRule},
}};

// CheckTensorTable(): the per-tensor rules over out->manifest.tensors(), in
// file order: tensor count within the limit (stops the checks when over),
// then per tensor: name (non-empty, bounded, unique), dtype known, rank in
// [1, max_rank], no zero dimension, byte size for dtype and shape without
// overflow, nbytes equal to it, kSizedTensorRules (layout), offset aligned
// and inside the data region, offsets strictly increasing with no overlap,
// layer in [-1, count), each layer one contiguous run in non-decreasing layer
// order, tensors outside the layers (layer -1) only before the first layer or
// after the last. A tensor that breaks a rule is reported and left out of the
// running state (previous offset, layer runs), so that one bad entry does not
// make its neighbours look bad too. Fills out->placed, sized, layer_ranges,
// table_checked and table_ok (and stopped_at for the tensor limit). Returns
// false when the sink stopped the checks.
bool CheckTensorTable(const DataLayout& layout, const ReaderLimits& limits, ProblemSink& sink,
                      CheckedContainer* out);

// ValidateTensorTable(): CheckTensorTable() over `tensors`, stopping at the
// first problem: its status (see ProblemStatus(), with `file`). On success
// fills `layer_ranges` (index = layer; size 0 for a layer without tensors).
absl::Status ValidateTensorTable(const google::protobuf::RepeatedPtrField<TensorEntry>& tensors,
                                 const DataLayout& layout, const ReaderLimits& limits,
                                 absl::string_view file, std::vector<ByteRange>* layer_ranges);

}  // namespace zcpack::format::internal

#endif  // ZCPACK_FORMAT_SRC_TENSOR_TABLE_H_
