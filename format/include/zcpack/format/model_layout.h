// The tensors a llama-family model needs, derived from its ModelInfo, and the
// check of a tensor table against them. Shared by the converter (before it
// writes), the validator (structure level) and the runtime (at open), so that
// all three agree on what a well-formed model is.
//
// The decoder: RMSNorm, RoPE, grouped-query attention with optional Q/K/V
// biases, SwiGLU MLP, optionally tied embeddings.
#ifndef ZCPACK_FORMAT_MODEL_LAYOUT_H_
#define ZCPACK_FORMAT_MODEL_LAYOUT_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format {

// Layer indices at or above this are rejected (bounds every per-layer table).
inline constexpr int32_t kMaxLayers = 1 << 20;

// ValidateModelInfo(): InvalidArgument unless every size is positive, the
// layer count is below kMaxLayers, num_heads is a multiple of num_kv_heads,
// and rope_theta and rms_norm_eps are positive and finite.
absl::Status ValidateModelInfo(const ModelInfo& model);

// TensorRoleName(): a short name for messages: "token_embedding", "attn_q",
// "attn_q_bias", ..., "output".
absl::string_view TensorRoleName(TensorRole role);

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
absl::StatusOr<std::vector<ExpectedTensor>> ExpectedTensors(const ModelInfo& model);

// A tensor as the check sees it (views; nothing is copied).
struct TensorShapeRef {
  absl::string_view name;
  TensorRole role = ROLE_UNSPECIFIED;
  int32_t layer = -1;
  std::span<const uint64_t> shape;
};

// CheckTensorShapes(): OK when the tensors are exactly ExpectedTensors(model)
// (ROLE_OTHER tensors are ignored). Otherwise DataLoss listing the first
// problems: a missing tensor (role, layer, expected shape), a wrong shape
// (tensor name, expected vs actual), two tensors for one (role, layer), a
// layer beyond num_layers, or a tensor the model does not use (for example a
// bias without attention_bias). InvalidArgument if the model is invalid.
absl::Status CheckTensorShapes(const ModelInfo& model, std::span<const TensorShapeRef> tensors);

// CheckTensorTable(): CheckTensorShapes() over a container's tensor table.
absl::Status CheckTensorTable(const ModelInfo& model,
                              const google::protobuf::RepeatedPtrField<TensorEntry>& tensors);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_MODEL_LAYOUT_H_
