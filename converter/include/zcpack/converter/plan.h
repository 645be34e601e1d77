// The tensor-order planner and the dtype policy of a conversion.
//
// Order: the order the forward pass reads tensors (ExpectedTensors() in
// architecture.h): token embedding; per layer attention norm, q (bias), k
// (bias), v (bias), attention output, FFN norm, gate, up, down; final norm;
// output head. Tensors the forward pass does not use (ROLE_OTHER) are kept,
// never dropped silently: inside their layer's run after the known tensors,
// or at the end of the file when they have no layer.
//
// Dtype policy, for a target quantization type Q (q4_0, q4_k or q8_0):
//   - 1-D tensors (norms, biases) keep their source dtype;
//   - the output head (and a tied token embedding, which is the output head)
//     is stored as PlanOptions::output_quant when set, else as
//     kQuantizedHeadDType (q8_0): it dominates quantization loss
//     in the logits, which is why llama.cpp, too, keeps it at higher
//     precision. q8_0 keeps 41-43 dB of SNR on synthetic llama weights (q4_0
//     about 18) in 8.5 bits per weight, about half the bytes of f16, and the
//     head is the largest single matrix of small models;
//   - every other 2-D tensor, token embedding included, becomes Q;
//   - a tensor whose name matches a --keep-f16 pattern is stored as f16;
//   - a tensor whose row length is not a multiple of its target's block size
//     (Q's, or q8_0's for the head) falls back to f16, with the reason
//     recorded for the report.
// For Q = f16 or f32, every tensor of rank >= 2 becomes Q and 1-D tensors
// keep their source dtype.
// With PlanOptions::keep_source_dtypes (`--quant keep`), every tensor keeps
// its source dtype; a quantized source tensor (GGUF Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q4_K) keeps its block bytes, only reordered when its layout is row
// groups.
// A quantized source tensor is requantized only when asked
// (PlanOptions::requantize): without it, a plan that would store it as
// another dtype (a different Q, the q8_0 head, a --keep-f16 match, f16 or
// f32) is refused, since the new rounding error adds to the source's. With
// it, the policy above applies to quantized source tensors as to float ones;
// one whose planned dtype is its own keeps its block bytes.
//
// Layout policy (PlanOptions::matrix_layout): the matrices the runtime
// multiplies by (q, k, v, attention output, gate, up, down, the output head,
// and the token embedding when it is tied, since it is then the output head)
// take matrix_layout when their dtype supports it (format::SupportsRowGroups);
// everything else is row-major. An untied token embedding stays row-major:
// the runtime only looks rows up in it, one token at a time, and row groups
// would make each lookup a gather for no gain.
#ifndef ZCPACK_CONVERTER_PLAN_H_
#define ZCPACK_CONVERTER_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

// The dtype of the output head when the target type is quantized.
inline constexpr format::DType kQuantizedHeadDType = format::DTYPE_Q8_0;

// The types the planner stores converted tensors as: the choices of a
// target type (`--quant`) and of the output head's type, in the order they
// are listed to users.
inline constexpr format::DType kConversionTargets[] = {format::DTYPE_Q4_0, format::DTYPE_Q4_K,
                                                       format::DTYPE_Q8_0, format::DTYPE_F16,
                                                       format::DTYPE_F32};

// IsConversionTarget(): whether `dtype` is one of kConversionTargets.
bool IsConversionTarget(format::DType dtype);

// ConversionTargetList(): kConversionTargets as text: "q4_0, q4_k, q8_0, f16
// or f32".
std::string ConversionTargetList();

struct PlanOptions {
  format::DType quant = format::DTYPE_Q4_0;
  // Keep every tensor's source dtype (`quant` and `output_quant` unused).
  bool keep_source_dtypes = false;
  // fnmatch(3) patterns over source tensor names; matches stay f16.
  std::vector<std::string> keep_f16;
  // The output head's dtype when Q is quantized (any of Q's choices);
  // DTYPE_UNSPECIFIED means kQuantizedHeadDType. llama-quantize's
  // --output-tensor-type; q4_0 with --quant q4_0 is its --pure.
  format::DType output_quant = format::DTYPE_UNSPECIFIED;
  // The block order of the matrices the runtime multiplies by (see above).
  format::TensorLayout matrix_layout = format::LAYOUT_ROW_GROUPS_16;
  // Allow quantized source tensors to be stored as another dtype: Convert()
  // decodes them (format::ConvertToFloat()) and encodes the values again.
  // Convert() sets it when the target type was asked for explicitly.
  bool requantize = false;
};

struct PlannedTensor {
  size_t source_index = 0;  // into SourceModel::tensors
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  format::TensorLayout layout = format::LAYOUT_ROW_MAJOR;
  // Why a tensor that would be quantized is not ("" when it is, or when the
  // policy never quantizes it).
  std::string fallback_reason;
};

// CheckPlanOptions(): InvalidArgument naming the accepted types when the
// target type or the output head's type is not one the planner produces, or
// when the matrix layout is unknown, or with keep_source_dtypes, when an
// output head type or --keep-f16 patterns are given too (both would change a
// dtype). Needs no source, so a caller can refuse
// bad options before reading one.
absl::Status CheckPlanOptions(const PlanOptions& options);

// PlanConversion(): the tensors in file order with their target dtypes and
// layouts. InvalidArgument for an unsupported target type or layout
// (CheckPlanOptions()), or, in one line naming them, for quantized source
// tensors the plan would store as another dtype when options.requantize is
// false (see the file comment).
absl::StatusOr<std::vector<PlannedTensor>> PlanConversion(const SourceModel& source,
                                                          const PlanOptions& options);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_PLAN_H_
