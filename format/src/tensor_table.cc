#include "tensor_table.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"

namespace zcpack::format::internal {
namespace {

absl::Status TensorError(absl::string_view file, int index, absl::string_view name,
                         absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(file, ": tensor #", index, " '", name, "': ", what));
}

}  // namespace

absl::Status ValidateTensorTable(const google::protobuf::RepeatedPtrField<TensorEntry>& tensors,
                                 const DataLayout& layout, const ReaderLimits& limits,
                                 absl::string_view file, std::vector<ByteRange>* layer_ranges) {
  const uint64_t count = static_cast<uint64_t>(tensors.size());
  if (count > limits.max_tensors) {
    return absl::ResourceExhaustedError(absl::StrCat(
        file, ": manifest lists ", count, " tensors, over the limit of ", limits.max_tensors));
  }
  absl::flat_hash_set<absl::string_view> names;
  names.reserve(count);
  layer_ranges->clear();
  uint64_t previous_end = layout.data_offset;  // aligned end of the previous tensor
  uint64_t previous_offset = 0;
  int current_layer = -1;      // layer of the current run of layered tensors
  int previous_tensor_layer = -1;
  bool left_layers = false;    // a layer -1 tensor came after a layered one
  for (int i = 0; i < tensors.size(); ++i) {
    const TensorEntry& t = tensors[i];
    const std::string& name = t.name();
    if (name.empty()) return TensorError(file, i, name, "empty name");
    if (name.size() > limits.max_name_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(file, ": tensor #", i, ": name of ",
                                                       name.size(), " bytes, over the limit of ",
                                                       limits.max_name_bytes));
    }
    if (!names.insert(name).second) return TensorError(file, i, name, "duplicate tensor name");
    if (!IsKnownDType(t.dtype())) {
      return TensorError(file, i, name, absl::StrCat("unknown dtype ", static_cast<int>(t.dtype())));
    }
    if (static_cast<uint64_t>(t.shape_size()) > limits.max_rank) {
      return absl::ResourceExhaustedError(absl::StrCat(file, ": tensor #", i, " '", name,
                                                       "': rank ", t.shape_size(),
                                                       " over the limit of ", limits.max_rank));
    }
    const std::span<const uint64_t> shape(t.shape().data(), t.shape_size());
    auto expected = TensorByteSize(t.dtype(), shape);
    if (!expected.ok()) return TensorError(file, i, name, expected.status().message());
    if (t.nbytes() != *expected) {
      return TensorError(file, i, name,
                         absl::StrCat("nbytes is ", t.nbytes(), " but ", DTypeName(t.dtype()),
                                      " [", absl::StrJoin(shape, ", "), "] needs ", *expected));
    }
    if (std::string problem = TensorLayoutProblem(t, layout.required_features); !problem.empty()) {
      return TensorError(file, i, name, problem);
    }
    if (t.offset() % layout.alignment != 0) {
      return TensorError(file, i, name,
                         absl::StrCat("offset ", t.offset(), " is not a multiple of the alignment ",
                                      layout.alignment));
    }
    if (t.offset() < layout.data_offset ||
        !ByteRangeInBounds(t.offset() - layout.data_offset, t.nbytes(), layout.data_size)) {
      return TensorError(file, i, name,
                         absl::StrCat("bytes [", t.offset(), ", +", t.nbytes(),
                                      ") lie outside the data region [", layout.data_offset, ", ",
                                      layout.data_offset + layout.data_size, ")"));
    }
    if (i > 0 && t.offset() <= previous_offset) {
      return TensorError(file, i, name,
                         absl::StrCat("offset ", t.offset(), " is not after the previous tensor's ",
                                      previous_offset, " (tensors must be in file order)"));
    }
    if (t.offset() < previous_end) {
      return TensorError(file, i, name,
                         absl::StrCat("offset ", t.offset(), " overlaps the previous tensor, which ",
                                      "extends to ", previous_end));
    }
    // In bounds of an aligned region, so aligning up cannot overflow.
    const uint64_t end = AlignUp(t.offset() + t.nbytes(), layout.alignment);
    if (t.layer() < -1 || static_cast<int64_t>(t.layer()) >= static_cast<int64_t>(count)) {
      return TensorError(file, i, name, absl::StrCat("layer index ", t.layer(), " out of range"));
    }
    if (t.layer() >= 0) {
      const int layer = t.layer();
      if (layer < current_layer) {
        return TensorError(file, i, name, absl::StrCat("layer ", layer, " comes after layer ",
                                                       current_layer, " (layers must be in order)"));
      }
      if (layer == current_layer && previous_tensor_layer != layer) {
        return TensorError(file, i, name,
                           absl::StrCat("layer ", layer, " is not one contiguous range"));
      }
      if (left_layers) {
        return TensorError(file, i, name,
                           absl::StrCat("layer ", layer, " follows a tensor outside the layers "
                                        "(those must come before the first layer or after "
                                        "the last)"));
      }
      if (static_cast<size_t>(layer) >= layer_ranges->size()) layer_ranges->resize(layer + 1);
      ByteRange& range = (*layer_ranges)[layer];
      if (range.size == 0) range.offset = t.offset();
      range.size = end - range.offset;
      current_layer = layer;
    }
    if (t.layer() < 0 && current_layer >= 0) left_layers = true;
    previous_tensor_layer = t.layer();
    previous_offset = t.offset();
    previous_end = end;
  }
  return absl::OkStatus();
}

}  // namespace zcpack::format::internal
