#include "tensor_table.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"

namespace zcpack::format::internal {
namespace {

std::string ShapeString(std::span<const uint64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

std::optional<std::string> LayoutRule(const TensorEntry& tensor, const DataLayout& layout) {
  std::string problem = TensorLayoutProblem(tensor, layout.required_features);
  if (problem.empty()) return std::nullopt;
  return problem;
}

bool CheckTensorTable(const DataLayout& layout, const ReaderLimits& limits, ProblemSink& sink,
                      CheckedContainer* out) {
  const auto& tensors = out->manifest.tensors();
  const uint64_t count = static_cast<uint64_t>(tensors.size());
  sink.Ran("tensor_limit");
  if (count > limits.max_tensors) {
    sink.Add({"tensor_limit", absl::StatusCode::kResourceExhausted, "", std::nullopt,
              out->header_ok ? std::optional<uint64_t>(out->header.manifest_offset) : std::nullopt,
              absl::StrCat("the manifest lists ", count, " tensors, over the limit of ",
                           limits.max_tensors)});
    out->stopped_at = "tensor_limit";
    return false;
  }
  bool after_limit = false;
  for (const RuleInfo& rule : StructuralRules()) {
    if (rule.group != "tensor_table") continue;
    if (after_limit) sink.Ran(rule.name);
    if (rule.name == "tensor_limit") after_limit = true;
  }
  out->table_checked = true;
  out->table_ok = true;
  out->placed.assign(count, false);
  out->sized.assign(count, false);
  out->layer_ranges.clear();
  absl::flat_hash_set<absl::string_view> names;
  names.reserve(count);
  bool have_previous = false;
  uint64_t previous_offset = 0;
  uint64_t previous_end = layout.data_offset;  // aligned end of the previous placed tensor
  int64_t current_layer = -1;                  // highest layer of a run seen so far
  int64_t previous_tensor_layer = -1;
  bool left_layers = false;                    // a layer -1 tensor came after a layered one
  for (int i = 0; i < tensors.size(); ++i) {
    const TensorEntry& t = tensors[i];
    const std::string& name = t.name();
    // Names over the limit are shown cut short: the limit bounds messages too.
    const std::string label =
        name.size() > limits.max_name_bytes ? absl::StrCat(name.substr(0, 64), "...") : name;
    // Reports a problem; false when the sink says stop.
    auto add = [&](absl::string_view check, std::string what,
                   absl::StatusCode code = absl::StatusCode::kDataLoss) {
      out->table_ok = false;
      return sink.Add({check, code, label, i, t.offset(), std::move(what)});
    };

    if (name.empty()) {
      if (!add("empty_name", "empty name")) return false;
    } else if (name.size() > limits.max_name_bytes) {
      if (!add("name_limit",
               absl::StrCat("name of ", name.size(), " bytes, over the limit of ",
                            limits.max_name_bytes),
               absl::StatusCode::kResourceExhausted)) {
        return false;
      }
    } else if (!names.insert(name).second) {
      if (!add("duplicate_name", "duplicate tensor name")) return false;
    }

    const std::span<const uint64_t> shape(t.shape().data(), t.shape_size());
    if (!IsKnownDType(t.dtype())) {
      if (!add("dtype", absl::StrCat("unknown dtype ", static_cast<int>(t.dtype())))) return false;
    } else if (shape.size() > limits.max_rank) {
      if (!add("rank_limit",
               absl::StrCat("rank ", shape.size(), " over the limit of ", limits.max_rank),
               absl::StatusCode::kResourceExhausted)) {
        return false;
      }
    } else if (auto expected = TensorByteSize(t.dtype(), shape); !expected.ok()) {
      // TensorByteSize() checks these conditions in this order.
      const absl::string_view check =
          shape.empty()                                              ? "shape_rank"
          : std::find(shape.begin(), shape.end(), 0u) != shape.end() ? "shape_zero"
          : shape.back() % BlockElements(t.dtype()) != 0             ? "block_multiple"
                                                                     : "shape_overflow";
      if (!add(check, std::string(expected.status().message()))) return false;
    } else if (t.nbytes() != *expected) {
      if (!add("nbytes", absl::StrCat("nbytes is ", t.nbytes(), " but ", DTypeName(t.dtype()), " ",
                                      ShapeString(shape), " needs ", *expected))) {
        return false;
      }
    } else {
      bool sized = true;
      for (const SizedTensorRule& rule : kSizedTensorRules) {
        if (std::optional<std::string> problem = rule.problem(t, layout); problem.has_value()) {
          sized = false;
          if (!add(rule.check, *std::move(problem))) return false;
          break;
        }
      }
      out->sized[i] = sized;
    }

    bool placed = false;
    if (t.offset() % layout.alignment != 0) {
      if (!add("alignment", absl::StrCat("offset ", t.offset(),
                                         " is not a multiple of the alignment ",
                                         layout.alignment))) {
        return false;
      }
    } else if (t.offset() < layout.data_offset ||
               !ByteRangeInBounds(t.offset() - layout.data_offset, t.nbytes(), layout.data_size)) {
      if (!add("tensor_bounds", absl::StrCat("bytes [", t.offset(), ", +", t.nbytes(),
                                             ") lie outside the data region [", layout.data_offset,
                                             ", ", layout.data_offset + layout.data_size, ")"))) {
        return false;
      }
    } else if (have_previous && t.offset() <= previous_offset) {
      if (!add("order", absl::StrCat("offset ", t.offset(), " is not after the previous tensor's ",
                                     previous_offset, " (tensors must be in file order)"))) {
        return false;
      }
    } else if (t.offset() < previous_end) {
      if (!add("overlap", absl::StrCat("offset ", t.offset(),
                                       " overlaps the previous tensor, which extends to ",
                                       previous_end))) {
        return false;
      }
    } else {
      placed = true;
      out->placed[i] = true;
      have_previous = true;
      previous_offset = t.offset();
      // Inside an aligned region, so aligning up cannot overflow.
      previous_end = AlignUp(t.offset() + t.nbytes(), layout.alignment);
    }

    const int64_t layer = t.layer();
    // Below the tensor count, so layer_ranges never outgrows the table.
    if (layer < -1 || layer >= static_cast<int64_t>(count)) {
      if (!add("layer_range",
               absl::StrCat("layer index ", layer, " out of range [-1, ", count, ")"))) {
        return false;
      }
      continue;
    }
    if (layer >= 0) {
      bool in_run = false;
      if (layer < current_layer) {
        if (!add("layer_order", absl::StrCat("layer ", layer, " comes after layer ", current_layer,
                                             " (layers must be in order)"))) {
          return false;
        }
      } else if (layer == current_layer && previous_tensor_layer != layer) {
        if (!add("layer_contiguity",
                 absl::StrCat("layer ", layer, " is not one contiguous range"))) {
          return false;
        }
      } else if (left_layers) {
        if (!add("layer_outside", absl::StrCat("layer ", layer,
                                               " follows a tensor outside the layers (those must "
                                               "come before the first layer or after the last)"))) {
          return false;
        }
      } else {
        in_run = true;
      }
      if (in_run && placed) {
        if (static_cast<uint64_t>(layer) >= out->layer_ranges.size()) {
          out->layer_ranges.resize(static_cast<size_t>(layer) + 1);
        }
        ByteRange& range = out->layer_ranges[static_cast<size_t>(layer)];
        if (range.size == 0) range.offset = t.offset();
        range.size = previous_end - range.offset;
      }
      current_layer = std::max(current_layer, layer);
    } else if (current_layer >= 0) {
      left_layers = true;
    }
    previous_tensor_layer = layer;
  }
  return true;
}

absl::Status ValidateTensorTable(const google::protobuf::RepeatedPtrField<TensorEntry>& tensors,
                                 const DataLayout& layout, const ReaderLimits& limits,
                                 absl::string_view file, std::vector<ByteRange>* layer_ranges) {
  CheckedContainer checked;
  *checked.manifest.mutable_tensors() = tensors;
  FirstProblem first;
  CheckTensorTable(layout, limits, first, &checked);
  if (first.found()) return first.Status(file);
  *layer_ranges = std::move(checked.layer_ranges);
  return absl::OkStatus();
}

}  // namespace zcpack::format::internal
