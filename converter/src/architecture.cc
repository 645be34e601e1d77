#include "zcpack/converter/architecture.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

using Json = nlohmann::json;
using format::TensorRole;

// Decoder layers are numbered below this; it bounds layer parsing and keeps
// every layer index an int32.
constexpr int32_t kMaxLayerIndex = format::kMaxLayers;

absl::string_view View(const std::string& s) { return absl::string_view(s.data(), s.size()); }

struct ArchitectureName {
  absl::string_view hf_class;
  absl::string_view model_type;
};
constexpr ArchitectureName kArchitectures[] = {
    {"LlamaForCausalLM", "llama"},
    {"MistralForCausalLM", "mistral"},
    {"Qwen2ForCausalLM", "qwen2"},
};

// Per-role names: the part after the layer prefix (layer roles) or the whole
// name (global roles), in each naming scheme.
struct RoleNames {
  TensorRole role;
  bool per_layer;
  absl::string_view hf;
  absl::string_view gguf;
};
constexpr RoleNames kRoleNames[] = {
    {format::ROLE_TOKEN_EMBEDDING, false, "model.embed_tokens.weight", "token_embd.weight"},
    {format::ROLE_ATTN_NORM, true, "input_layernorm.weight", "attn_norm.weight"},
    {format::ROLE_ATTN_Q, true, "self_attn.q_proj.weight", "attn_q.weight"},
    {format::ROLE_ATTN_Q_BIAS, true, "self_attn.q_proj.bias", "attn_q.bias"},
    {format::ROLE_ATTN_K, true, "self_attn.k_proj.weight", "attn_k.weight"},
    {format::ROLE_ATTN_K_BIAS, true, "self_attn.k_proj.bias", "attn_k.bias"},
    {format::ROLE_ATTN_V, true, "self_attn.v_proj.weight", "attn_v.weight"},
    {format::ROLE_ATTN_V_BIAS, true, "self_attn.v_proj.bias", "attn_v.bias"},
    {format::ROLE_ATTN_OUTPUT, true, "self_attn.o_proj.weight", "attn_output.weight"},
    {format::ROLE_FFN_NORM, true, "post_attention_layernorm.weight", "ffn_norm.weight"},
    {format::ROLE_FFN_GATE, true, "mlp.gate_proj.weight", "ffn_gate.weight"},
    {format::ROLE_FFN_UP, true, "mlp.up_proj.weight", "ffn_up.weight"},
    {format::ROLE_FFN_DOWN, true, "mlp.down_proj.weight", "ffn_down.weight"},
    {format::ROLE_OUTPUT_NORM, false, "model.norm.weight", "output_norm.weight"},
    {format::ROLE_OUTPUT, false, "lm_head.weight", "output.weight"},
};

absl::string_view LayerPrefix(TensorNaming naming) {
  return naming == TensorNaming::kHuggingFace ? "model.layers." : "blk.";
}

absl::string_view SchemeName(const RoleNames& names, TensorNaming naming) {
  return naming == TensorNaming::kHuggingFace ? names.hf : names.gguf;
}

// Parses "N." at the front of `rest` (decimal, no sign, no leading zeros).
std::optional<int32_t> ConsumeLayerIndex(absl::string_view* rest) {
  const size_t dot = rest->find('.');
  if (dot == absl::string_view::npos || dot == 0 || dot > 7) return std::nullopt;
  const absl::string_view digits = rest->substr(0, dot);
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  int32_t layer = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    layer = layer * 10 + (c - '0');
  }
  if (layer >= kMaxLayerIndex) return std::nullopt;
  rest->remove_prefix(dot + 1);
  return layer;
}

// ---- config.json ------------------------------------------------------------

class ConfigReader {
 public:
  ConfigReader(const Json& config, absl::string_view file) : config_(config), file_(file) {}

  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": \"", key, "\" ", what));
  }

  // A key that is absent or null.
  bool Absent(absl::string_view key) const {
    const auto it = config_.find(std::string(key));
    return it == config_.end() || it->is_null();
  }

  absl::StatusOr<uint32_t> Uint32(absl::string_view key, std::optional<uint32_t> fallback) const {
    if (Absent(key)) {
      if (fallback.has_value()) return *fallback;
      return Error(key, "is missing");
    }
    const Json& value = config_.at(std::string(key));
    if (!value.is_number_unsigned()) return Error(key, "is not a non-negative integer");
    const uint64_t v = value.get<uint64_t>();
    if (v > UINT32_MAX) return Error(key, absl::StrCat("is ", v, ", beyond uint32"));
    return static_cast<uint32_t>(v);
  }

  absl::StatusOr<double> Double(absl::string_view key, double fallback) const {
    if (Absent(key)) return fallback;
    const Json& value = config_.at(std::string(key));
    if (!value.is_number()) return Error(key, "is not a number");
    return value.get<double>();
  }

  absl::StatusOr<bool> Bool(absl::string_view key, bool fallback) const {
    if (Absent(key)) return fallback;
    const Json& value = config_.at(std::string(key));
    if (!value.is_boolean()) return Error(key, "is not true or false");
    return value.get<bool>();
  }

  // A token id: an integer, or a list whose first element is used; -1 if absent.
  absl::StatusOr<int32_t> TokenId(absl::string_view key) const {
    if (Absent(key)) return -1;
    const Json* value = &config_.at(std::string(key));
    if (value->is_array()) {
      if (value->empty()) return -1;
      value = &value->front();
    }
    if (!value->is_number_unsigned() || value->get<uint64_t>() > INT32_MAX) {
      return Error(key, "is not a token id (a non-negative int32, or a list of them)");
    }
    return static_cast<int32_t>(value->get<uint64_t>());
  }

  absl::StatusOr<std::string> String(absl::string_view key) const {
    if (Absent(key)) return std::string();
    const Json& value = config_.at(std::string(key));
    if (!value.is_string()) return Error(key, "is not a string");
    return value.get<std::string>();
  }

 private:
  const Json& config_;
  absl::string_view file_;
};

absl::StatusOr<absl::string_view> ArchitectureOf(const Json& config, const ConfigReader& reader,
                                                 absl::string_view file) {
  std::string named;
  const auto archs = config.find("architectures");
  if (archs != config.end() && !archs->is_null()) {
    if (!archs->is_array() || archs->empty() || !archs->front().is_string()) {
      return reader.Error("architectures", "is not a non-empty list of strings");
    }
    named = archs->front().get<std::string>();
    for (const ArchitectureName& a : kArchitectures) {
      if (a.hf_class == named) return a.model_type;
    }
  } else {
    ZCPACK_ASSIGN_OR_RETURN(named, reader.String("model_type"));
    for (const ArchitectureName& a : kArchitectures) {
      if (a.model_type == named) return a.model_type;
    }
  }
  return absl::UnimplementedError(absl::StrCat(
      file, ": architecture '", View(named),
      "' is not supported (zcpack converts LlamaForCausalLM, MistralForCausalLM and "
      "Qwen2ForCausalLM)"));
}

}  // namespace

absl::StatusOr<format::ModelInfo> ModelInfoFromHfConfig(absl::string_view config_json,
                                                        absl::string_view file) {
  Json config;
  try {
    config = Json::parse(config_json.begin(), config_json.end(), nullptr,
                         /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    config = Json(Json::value_t::discarded);
  }
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  const ConfigReader read(config, file);
  ZCPACK_ASSIGN_OR_RETURN(const absl::string_view arch, ArchitectureOf(config, read, file));

  ZCPACK_ASSIGN_OR_RETURN(const std::string act, read.String("hidden_act"));
  if (!act.empty() && act != "silu") {
    return absl::UnimplementedError(absl::StrCat(file, ": hidden_act '", View(act),
                                                 "' is not supported (SwiGLU needs silu)"));
  }
  if (!read.Absent("rope_scaling")) {
    return absl::UnimplementedError(absl::StrCat(
        file, ": rope_scaling is not supported (the runtime implements plain RoPE)"));
  }
  ZCPACK_ASSIGN_OR_RETURN(const bool mlp_bias, read.Bool("mlp_bias", false));
  if (mlp_bias) {
    return absl::UnimplementedError(absl::StrCat(file, ": mlp_bias is not supported"));
  }
  // Qwen2 always has Q/K/V biases; Llama's attention_bias also adds one to
  // o_proj, for which zcpack has no tensor role.
  bool attention_bias = arch == "qwen2";
  if (arch == "llama") {
    ZCPACK_ASSIGN_OR_RETURN(const bool llama_bias, read.Bool("attention_bias", false));
    if (llama_bias) {
      return absl::UnimplementedError(
          absl::StrCat(file, ": attention_bias (with an o_proj bias) is not supported"));
    }
  }

  format::ModelInfo model;
  model.set_architecture(std::string(arch));
  model.set_rope_layout(format::ROPE_LAYOUT_HALF_SPLIT);
  model.set_attention_bias(attention_bias);
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t hidden, read.Uint32("hidden_size", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t layers, read.Uint32("num_hidden_layers", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t heads, read.Uint32("num_attention_heads", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t kv_heads, read.Uint32("num_key_value_heads", heads));
  if (read.Absent("head_dim") && heads != 0 && hidden % heads != 0) {
    return read.Error("hidden_size", absl::StrCat("(", hidden, ") is not a multiple of "
                                                  "num_attention_heads (", heads, ")"));
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t head_dim,
                          read.Uint32("head_dim", heads == 0 ? 0 : hidden / heads));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t ffn, read.Uint32("intermediate_size", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t vocab, read.Uint32("vocab_size", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t context, read.Uint32("max_position_embeddings", 0u));
  ZCPACK_ASSIGN_OR_RETURN(const double theta, read.Double("rope_theta", 10000.0));
  ZCPACK_ASSIGN_OR_RETURN(const double eps, read.Double("rms_norm_eps", 1e-6));
  ZCPACK_ASSIGN_OR_RETURN(const bool tied, read.Bool("tie_word_embeddings", false));
  ZCPACK_ASSIGN_OR_RETURN(const int32_t bos, read.TokenId("bos_token_id"));
  ZCPACK_ASSIGN_OR_RETURN(const int32_t eos, read.TokenId("eos_token_id"));

  model.set_hidden_size(hidden);
  model.set_num_layers(layers);
  model.set_num_heads(heads);
  model.set_num_kv_heads(kv_heads);
  model.set_head_dim(head_dim);
  model.set_intermediate_size(ffn);
  model.set_vocab_size(vocab);
  model.set_max_position_embeddings(context);
  model.set_rope_theta(theta);
  model.set_rms_norm_eps(eps);
  model.set_tied_embeddings(tied);
  model.set_bos_token_id(bos);
  model.set_eos_token_id(eos);
  if (absl::Status valid = ValidateModelInfo(model); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", valid.message()));
  }
  return model;
}

TensorPlacement PlaceTensor(absl::string_view name, TensorNaming naming) {
  absl::string_view rest = name;
  if (absl::ConsumePrefix(&rest, LayerPrefix(naming))) {
    const std::optional<int32_t> layer = ConsumeLayerIndex(&rest);
    if (!layer.has_value()) return {};
    for (const RoleNames& r : kRoleNames) {
      if (r.per_layer && SchemeName(r, naming) == rest) return {r.role, *layer};
    }
    return {format::ROLE_OTHER, *layer};
  }
  for (const RoleNames& r : kRoleNames) {
    if (!r.per_layer && SchemeName(r, naming) == name) return {r.role, -1};
  }
  return {};
}

std::string TensorName(TensorRole role, int32_t layer, TensorNaming naming) {
  for (const RoleNames& r : kRoleNames) {
    if (r.role != role) continue;
    if (!r.per_layer) return std::string(SchemeName(r, naming));
    return absl::StrCat(LayerPrefix(naming), layer, ".", SchemeName(r, naming));
  }
  return std::string();
}

absl::Status CheckTensorsAgainstModel(const format::ModelInfo& model,
                                      std::span<const SourceTensor> tensors) {
  std::vector<format::TensorShapeRef> refs;
  refs.reserve(tensors.size());
  for (const SourceTensor& t : tensors) {
    refs.push_back({View(t.name), t.role, t.layer, t.shape, std::nullopt});
  }
  const absl::Status checked = format::CheckTensorShapes(model, refs);
  if (checked.ok() || tensors.empty()) return checked;
  // Name the input: the file that holds the tensors, or the folder of the
  // shards when they come from several.
  std::string where = tensors.front().file;
  for (const SourceTensor& t : tensors) {
    if (t.file != where) {
      where = std::filesystem::path(where).parent_path().string();
      break;
    }
  }
  return absl::Status(checked.code(),
                      absl::StrCat(format::EscapeInvalidUtf8(where), ": ", checked.message()));
}

}  // namespace zcpack::converter
