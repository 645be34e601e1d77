// The tensors a llama-family model needs, derived from its ModelInfo, and the
// model rules over a tensor table (CheckModel()). Shared by the converter
// (before it writes), the validator (structure level, every problem) and the
// runtime (at load, the first problem), so that all three agree on what a
// well-formed model is.
//
// The decoder: RMSNorm, RoPE, grouped-query attention with optional Q/K/V
// biases, SwiGLU MLP, optionally tied embeddings.
#ifndef ZCPACK_FORMAT_MODEL_LAYOUT_H_
#define ZCPACK_FORMAT_MODEL_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/problem.h"

namespace zcpack::format {

// Layer indices at or above this are rejected (bounds every per-layer table).
inline constexpr int32_t kMaxLayers = 1 << 20;

// MaxLayersFor(): the most layers a model with a table of `tensor_count`
// tensors may declare before its layers are even looked at: one per tensor.
// Every layer has nine tensors, so this is generous on purpose: a table that
// lacks a few layers still has each missing tensor reported, while a layer
// count of 2^20 over a small table is refused before anything proportional
// to it is allocated.
inline uint64_t MaxLayersFor(uint64_t tensor_count) { return tensor_count; }

// ValidateModelInfo(): InvalidArgument unless every size is positive, the
// layer count is below kMaxLayers, num_heads is a multiple of num_kv_heads,
// and rope_theta and rms_norm_eps are positive and finite.
absl::Status ValidateModelInfo(const ModelInfo& model);

// TensorRoleName(): a short name for messages: "token_embedding", "attn_q",
// "attn_q_bias", ..., "output".
absl::string_view TensorRoleName(TensorRole role);

// The two RoPE row layouts of the Q and K projections (ModelInfo's
// rope_layout): Hugging Face's half-split one pairs rows i and i + d/2 of a
// head of d rows, ggml's interleaved one (llama.cpp's permute() in
// convert_hf_to_gguf.py) rows 2i and 2i + 1. Within each head of
// `head_rows` rows (or bias elements):
// InterleavedRow(): the interleaved row that holds half-split row `row`;
// HalfSplitRow(): the half-split row that interleaved row `row` holds (the
// inverse).
inline uint64_t InterleavedRow(uint64_t row, uint64_t head_rows) {
  const uint64_t head = row / head_rows, within = row % head_rows, half = head_rows / 2;
  return head * head_rows + 2 * (within % half) + within / half;
}
inline uint64_t HalfSplitRow(uint64_t row, uint64_t head_rows) {
  const uint64_t head = row / head_rows, within = row % head_rows, half = head_rows / 2;
  return head * head_rows + (within % 2) * half + within / 2;
}
// IsQueryOrKey(): the roles whose rows RoPE pairs (Q, K and their biases).
inline bool IsQueryOrKey(TensorRole role) {
  return role == ROLE_ATTN_Q || role == ROLE_ATTN_Q_BIAS || role == ROLE_ATTN_K ||
         role == ROLE_ATTN_K_BIAS;
}

struct ExpectedTensor {
  TensorRole role = ROLE_UNSPECIFIED;
  int32_t layer = -1;
  std::vector<uint64_t> shape;  // row-major, outermost first
};

// ExpectedTensors(): every tensor a model with these hyperparameters needs,
// in forward-pass order: token embedding; per layer attn_norm, q (+bias),
// k (+bias), v (+bias), attn_output, ffn_norm, gate, up, down; output_norm;
// output (absent when embeddings are tied). Biases only when
// attention_bias. ValidateModelInfo()'s error for impossible hyperparameters.
// Its size is proportional to num_layers (up to kMaxLayers): with untrusted
// hyperparameters, check the layer count against the tensors first
// (MaxLayersFor(), which CheckTensorShapes() and CheckModel() do).
absl::StatusOr<std::vector<ExpectedTensor>> ExpectedTensors(const ModelInfo& model);

// A tensor as the check sees it (views; nothing is copied).
struct TensorShapeRef {
  absl::string_view name;
  TensorRole role = ROLE_UNSPECIFIED;
  int32_t layer = -1;
  std::span<const uint64_t> shape;
  // File offset, for problems reported against a container.
  std::optional<uint64_t> offset;
};

// CheckTensorShapes(): OK when the tensors are exactly ExpectedTensors(model)
// (ROLE_OTHER tensors are ignored). Otherwise DataLoss listing the first
// problems of the "model_tensors" rule (see CheckModel()). InvalidArgument if
// the model is invalid. Allocates nothing proportional to num_layers before
// checking it against the tensor count.
absl::Status CheckTensorShapes(const ModelInfo& model, std::span<const TensorShapeRef> tensors);

// CheckTensorTable(): CheckTensorShapes() over a container's tensor table.
absl::Status CheckTensorTable(const ModelInfo& model,
                              const google::protobuf::RepeatedPtrField<TensorEntry>& tensors);

// CheckModel(): the model rules (StructuralRules(), group "model") over a
// manifest whose tensor table passed the container rules, reported to `sink`
// in this order:
//   model_info     ValidateModelInfo() (stops the model rules);
//   rope           the RoPE row layout is recorded and head_dim is even
//                  (Unimplemented: the runtime cannot apply RoPE otherwise);
//   model_tensors  the layer count fits the tensor table (MaxLayersFor();
//                  stops the later rules, before anything proportional to
//                  num_layers is allocated), then per tensor: a layer beyond
//                  num_layers, a tensor the model does not use, two tensors
//                  for one (role, layer), a wrong shape; then every missing
//                  tensor (role, layer, expected shape);
//   access_order   tensors in the order the forward pass reads them;
//   layer_ranges   every layer has tensors and is one aligned range
//                  (`layer_ranges` and `alignment` from CheckContainer()).
// Returns the rule whose failure stopped the rules after it ("model_info" or
// "model_tensors"), or an empty string (also when the sink stopped them).
std::string CheckModel(const Manifest& manifest, std::span<const ByteRange> layer_ranges,
                       uint64_t alignment, ProblemSink& sink);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_MODEL_LAYOUT_H_
