#include "zcpack/converter/plan.h"

#include <fnmatch.h>

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

// Position of a role inside a layer, in forward-pass order; global tensors
// (embedding, final norm, output) use the same scale.
int RoleRank(format::TensorRole role) {
  switch (role) {
    case format::ROLE_TOKEN_EMBEDDING: return 0;
    case format::ROLE_ATTN_NORM: return 1;
    case format::ROLE_ATTN_Q: return 2;
    case format::ROLE_ATTN_Q_BIAS: return 3;
    case format::ROLE_ATTN_K: return 4;
    case format::ROLE_ATTN_K_BIAS: return 5;
    case format::ROLE_ATTN_V: return 6;
    case format::ROLE_ATTN_V_BIAS: return 7;
    case format::ROLE_ATTN_OUTPUT: return 8;
    case format::ROLE_FFN_NORM: return 9;
    case format::ROLE_FFN_GATE: return 10;
    case format::ROLE_FFN_UP: return 11;
    case format::ROLE_FFN_DOWN: return 12;
    case format::ROLE_OUTPUT_NORM: return 13;
    case format::ROLE_OUTPUT: return 14;
    default: return 15;
  }
}

// Sort key: (section, layer, role rank). Sections: 0 before the layers
// (embedding), 1 the layers, 2 after them (final norm, output), 3 unplaced.
std::tuple<int, int, int> OrderKey(const SourceTensor& t) {
  if (t.layer >= 0) return {1, t.layer, RoleRank(t.role)};
  switch (t.role) {
    case format::ROLE_TOKEN_EMBEDDING: return {0, 0, 0};
    case format::ROLE_OUTPUT_NORM:
    case format::ROLE_OUTPUT: return {2, 0, RoleRank(t.role)};
    default: return {3, 0, 0};
  }
}

// FallbackReason(): why a 2-D tensor with rows of `row_length` cannot be
// stored as `dtype` ("" when it can).
std::string FallbackReason(uint64_t row_length, format::DType dtype) {
  if (row_length % format::BlockElements(dtype) == 0) return "";
  return absl::StrCat("row length ", row_length, " is not a multiple of the ",
                      format::DTypeName(dtype), " block size ", format::BlockElements(dtype),
                      "; stored as f16");
}

// Whether the runtime multiplies by this tensor (a tied embedding is the
// output head).
bool IsMatMulWeight(const SourceTensor& t, bool tied_embeddings) {
  switch (t.role) {
    case format::ROLE_ATTN_Q:
    case format::ROLE_ATTN_K:
    case format::ROLE_ATTN_V:
    case format::ROLE_ATTN_OUTPUT:
    case format::ROLE_FFN_GATE:
    case format::ROLE_FFN_UP:
    case format::ROLE_FFN_DOWN:
    case format::ROLE_OUTPUT:
      return true;
    case format::ROLE_TOKEN_EMBEDDING:
      return tied_embeddings;
    default:
      return false;
  }
}

bool MatchesAny(const std::string& name, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
  });
}

}  // namespace

bool IsConversionTarget(format::DType dtype) {
  return std::find(std::begin(kConversionTargets), std::end(kConversionTargets), dtype) !=
         std::end(kConversionTargets);
}

std::string ConversionTargetList() {
  std::string list;
  const size_t n = std::size(kConversionTargets);
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&list, i == 0 ? "" : i + 1 == n ? " or " : ", ",
                    format::DTypeName(kConversionTargets[i]));
  }
  return list;
}

absl::Status CheckPlanOptions(const PlanOptions& options) {
  if (options.keep_source_dtypes) {
    if (options.output_quant != format::DTYPE_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          "--output-quant cannot be given with --quant keep (the default for a quantized "
          "source), which keeps every tensor's dtype");
    }
    if (!options.keep_f16.empty()) {
      return absl::InvalidArgumentError(
          "--keep-f16 cannot be given with --quant keep (the default for a quantized source), "
          "which keeps every tensor's dtype");
    }
  }
  const format::DType q = options.quant;
  if (!IsConversionTarget(q)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert to ", format::DTypeName(q),
                                                   " (expected ", ConversionTargetList(), ")"));
  }
  const format::DType head = options.output_quant == format::DTYPE_UNSPECIFIED
                                 ? kQuantizedHeadDType
                                 : options.output_quant;
  if (!IsConversionTarget(head)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot store the output head as ",
                                                   format::DTypeName(head), " (expected ",
                                                   ConversionTargetList(), ")"));
  }
  if (options.matrix_layout != format::LAYOUT_ROW_MAJOR &&
      options.matrix_layout != format::LAYOUT_ROW_GROUPS_16) {
    return absl::InvalidArgumentError(absl::StrCat("unknown matrix layout ",
                                                   static_cast<int>(options.matrix_layout)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PlannedTensor>> PlanConversion(const SourceModel& source,
                                                          const PlanOptions& options) {
  ZCPACK_RETURN_IF_ERROR(CheckPlanOptions(options));
  const format::DType q = options.quant;
  const format::DType head = options.output_quant == format::DTYPE_UNSPECIFIED
                                 ? kQuantizedHeadDType
                                 : options.output_quant;
  std::vector<PlannedTensor> plan;
  plan.reserve(source.tensors.size());
  std::vector<std::string> requantized;  // "name (from to to)"
  for (size_t i = 0; i < source.tensors.size(); ++i) {
    const SourceTensor& t = source.tensors[i];
    PlannedTensor p;
    p.source_index = i;
    p.dtype = t.dtype;
    if (t.shape.size() >= 2 && !options.keep_source_dtypes) {
      const bool is_head = t.role == format::ROLE_OUTPUT ||
                           (t.role == format::ROLE_TOKEN_EMBEDDING && source.model.tied_embeddings());
      const format::DType wanted = is_head ? head : q;
      if (!format::IsQuantized(q)) {
        p.dtype = q;
      } else if (MatchesAny(t.name, options.keep_f16)) {
        p.dtype = format::DTYPE_F16;
      } else if (std::string why = FallbackReason(t.shape.back(), wanted); !why.empty()) {
        p.dtype = format::DTYPE_F16;
        p.fallback_reason = std::move(why);
      } else {
        p.dtype = wanted;
      }
    }
    if (t.shape.size() == 2 && format::SupportsRowGroups(p.dtype) &&
        IsMatMulWeight(t, source.model.tied_embeddings())) {
      p.layout = options.matrix_layout;
    }
    if (format::IsQuantized(t.dtype) && p.dtype != t.dtype) {
      requantized.push_back(absl::StrCat(t.name, " (", format::DTypeName(t.dtype), " to ",
                                         format::DTypeName(p.dtype), ")"));
    }
    plan.push_back(std::move(p));
  }
  if (!requantized.empty() && !options.requantize) {
    return absl::InvalidArgumentError(absl::StrCat(
        requantized.size(), requantized.size() == 1 ? " tensor is" : " tensors are",
        " already quantized and this plan would requantize ",
        requantized.size() == 1 ? "it" : "them", ", adding a second rounding error to the "
        "first: ", absl::StrJoin(requantized, ", "),
        "; zcpack does not requantize: use --quant keep (the default for a quantized source)"));
  }
  std::stable_sort(plan.begin(), plan.end(), [&](const PlannedTensor& a, const PlannedTensor& b) {
    return OrderKey(source.tensors[a.source_index]) < OrderKey(source.tensors[b.source_index]);
  });
  return plan;
}

}  // namespace zcpack::converter
