// Model architecture: Hugging Face config.json -> ModelInfo, tensor names of
// both naming schemes -> (role, layer), and the tensors a llama-family model
// needs, with a checker shared by the conversion pipeline and the validator.
//
// Supported architectures: LlamaForCausalLM ("llama"), MistralForCausalLM
// ("mistral") and Qwen2ForCausalLM ("qwen2", which has Q/K/V biases). All are
// the same decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP.
#ifndef ZCPACK_CONVERTER_ARCHITECTURE_H_
#define ZCPACK_CONVERTER_ARCHITECTURE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

// ModelInfoFromHfConfig(): maps config.json text to ModelInfo.
// architectures[0] (or model_type when there is no "architectures") picks the
// architecture; unknown ones are Unimplemented, as are features the runtime
// cannot reproduce (hidden_act other than silu, rope_scaling, MLP or output
// projection biases). Defaults follow transformers: num_key_value_heads =
// num_attention_heads, head_dim = hidden_size / num_attention_heads,
// rope_theta = 10000, rms_norm_eps = 1e-6, tie_word_embeddings = false,
// bos/eos = -1 (the first id when eos_token_id is a list). rope_layout is
// ROPE_LAYOUT_HALF_SPLIT. InvalidArgument (naming `file_name` and the key)
// for text that is not a JSON object, or a required key that is missing, of
// the wrong type, out of range, or inconsistent with the others.
absl::StatusOr<format::ModelInfo> ModelInfoFromHfConfig(absl::string_view config_json,
                                                        absl::string_view file_name);

// Model-layout knowledge lives in format/ (model_layout.h), shared with the
// validator and the runtime.
using format::ExpectedTensor;
using format::ExpectedTensors;
using format::TensorRoleName;
using format::ValidateModelInfo;

enum class TensorNaming {
  kHuggingFace,  // model.layers.N.self_attn.q_proj.weight, ...
  kGguf,         // blk.N.attn_q.weight, ...
};

struct TensorPlacement {
  format::TensorRole role = format::ROLE_OTHER;
  int32_t layer = -1;  // -1 outside the decoder layers
};

// PlaceTensor(): the role and layer of a tensor name. Names the forward pass
// does not use give ROLE_OTHER, with the layer still parsed when the name
// has a layer prefix ("model.layers.N." / "blk.N.").
TensorPlacement PlaceTensor(absl::string_view name, TensorNaming naming);

// TensorName(): the canonical name of (role, layer) in `naming`; the inverse
// of PlaceTensor(). Empty for ROLE_OTHER and ROLE_UNSPECIFIED.
std::string TensorName(format::TensorRole role, int32_t layer, TensorNaming naming);

// CheckTensorsAgainstModel(): format::CheckTensorShapes() over source
// tensors: OK when the tensors are exactly
// ExpectedTensors(model) (ROLE_OTHER tensors are ignored). Otherwise DataLoss
// listing the first problems: a missing tensor (role, layer, expected shape),
// a wrong shape (tensor name, expected vs actual), two tensors for one
// (role, layer), a layer beyond num_layers, or a tensor the model does not
// use (for example a bias without attention_bias). InvalidArgument if the
// model itself is invalid. Messages begin with the file that holds the
// tensors (the shards' folder when there are several).
absl::Status CheckTensorsAgainstModel(const format::ModelInfo& model,
                                      std::span<const SourceTensor> tensors);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_ARCHITECTURE_H_
