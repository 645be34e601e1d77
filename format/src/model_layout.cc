#include "zcpack/format/model_layout.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/status_macros.h"

namespace zcpack::format {
namespace {

absl::string_view View(const std::string& s) { return absl::string_view(s.data(), s.size()); }

std::string ShapeString(std::span<const uint64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string RoleAndLayer(TensorRole role, int32_t layer) {
  if (layer < 0) return std::string(TensorRoleName(role));
  return absl::StrCat(TensorRoleName(role), ", layer ", layer);
}

}  // namespace

absl::Status CheckTensorShapes(const ModelInfo& model, std::span<const TensorShapeRef> tensors) {
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<ExpectedTensor> expected, ExpectedTensors(model));
  std::map<std::pair<int32_t, int>, const ExpectedTensor*> wanted;
  for (const ExpectedTensor& e : expected) wanted[{e.layer, static_cast<int>(e.role)}] = &e;

  constexpr size_t kMaxReported = 5;
  std::vector<std::string> problems;
  size_t problem_count = 0;
  const auto report = [&](std::string problem) {
    if (problems.size() < kMaxReported) problems.push_back(std::move(problem));
    ++problem_count;
  };

  std::map<std::pair<int32_t, int>, absl::string_view> found;
  for (const TensorShapeRef& t : tensors) {
    if (t.role == ROLE_OTHER) continue;
    const std::pair<int32_t, int> key{t.layer, static_cast<int>(t.role)};
    if (t.layer >= 0 && static_cast<uint64_t>(t.layer) >= model.num_layers()) {
      report(absl::StrCat("tensor '", t.name, "' (", RoleAndLayer(t.role, t.layer),
                          ") lies beyond the model's ", model.num_layers(), " layers"));
      continue;
    }
    const auto want = wanted.find(key);
    if (want == wanted.end()) {
      report(absl::StrCat("tensor '", t.name, "' (", RoleAndLayer(t.role, t.layer),
                          ") is not used by this model",
                          t.role == ROLE_OUTPUT ? " (embeddings are tied)"
                          : (t.role == ROLE_ATTN_Q_BIAS ||
                             t.role == ROLE_ATTN_K_BIAS ||
                             t.role == ROLE_ATTN_V_BIAS)
                              ? " (attention_bias is false)"
                              : ""));
      continue;
    }
    const auto [it, inserted] = found.emplace(key, t.name);
    if (!inserted) {
      report(absl::StrCat("tensors '", it->second, "' and '", t.name, "' are both ",
                          RoleAndLayer(t.role, t.layer)));
      continue;
    }
    const std::vector<uint64_t>& shape = want->second->shape;
    if (!std::equal(shape.begin(), shape.end(), t.shape.begin(), t.shape.end())) {
      report(absl::StrCat("tensor '", t.name, "' (", RoleAndLayer(t.role, t.layer),
                          ") has shape ", ShapeString(t.shape), ", expected ",
                          ShapeString(shape)));
    }
  }
  for (const ExpectedTensor& e : expected) {
    if (!found.contains({e.layer, static_cast<int>(e.role)})) {
      report(absl::StrCat("missing tensor ", RoleAndLayer(e.role, e.layer),
                          " (expected shape ", ShapeString(e.shape), ")"));
    }
  }
  if (problem_count == 0) return absl::OkStatus();
  std::string message = absl::StrJoin(problems, "; ");
  if (problem_count > problems.size()) {
    absl::StrAppend(&message, "; and ", problem_count - problems.size(), " more");
  }
  return absl::DataLossError(absl::StrCat("tensors do not match the ", model.architecture(),
                                          " model: ", message));
}


absl::Status ValidateModelInfo(const ModelInfo& m) {
  const std::pair<absl::string_view, uint32_t> sizes[] = {
      {"hidden_size", m.hidden_size()},   {"num_layers", m.num_layers()},
      {"num_heads", m.num_heads()},       {"num_kv_heads", m.num_kv_heads()},
      {"head_dim", m.head_dim()},         {"intermediate_size", m.intermediate_size()},
      {"vocab_size", m.vocab_size()},
  };
  for (const auto& [name, value] : sizes) {
    if (value == 0) return absl::InvalidArgumentError(absl::StrCat("model ", name, " is 0"));
  }
  if (m.num_layers() > static_cast<uint32_t>(kMaxLayers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model has ", m.num_layers(), " layers, limit ", kMaxLayers));
  }
  if (m.num_heads() % m.num_kv_heads() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_heads (", m.num_heads(),
                                                   ") is not a multiple of num_kv_heads (",
                                                   m.num_kv_heads(), ")"));
  }
  if (!(std::isfinite(m.rope_theta()) && m.rope_theta() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rope_theta ", m.rope_theta(),
                                                   " is not positive and finite"));
  }
  if (!(std::isfinite(m.rms_norm_eps()) && m.rms_norm_eps() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rms_norm_eps ", m.rms_norm_eps(),
                                                   " is not positive and finite"));
  }
  return absl::OkStatus();
}


absl::string_view TensorRoleName(TensorRole role) {
  switch (role) {
    case ROLE_TOKEN_EMBEDDING: return "token_embedding";
    case ROLE_ATTN_NORM: return "attn_norm";
    case ROLE_ATTN_Q: return "attn_q";
    case ROLE_ATTN_Q_BIAS: return "attn_q_bias";
    case ROLE_ATTN_K: return "attn_k";
    case ROLE_ATTN_K_BIAS: return "attn_k_bias";
    case ROLE_ATTN_V: return "attn_v";
    case ROLE_ATTN_V_BIAS: return "attn_v_bias";
    case ROLE_ATTN_OUTPUT: return "attn_output";
    case ROLE_FFN_NORM: return "ffn_norm";
    case ROLE_FFN_GATE: return "ffn_gate";
    case ROLE_FFN_UP: return "ffn_up";
    case ROLE_FFN_DOWN: return "ffn_down";
    case ROLE_OUTPUT_NORM: return "output_norm";
    case ROLE_OUTPUT: return "output";
    case ROLE_OTHER: return "other";
    default: return "unspecified";
  }
}


absl::StatusOr<std::vector<ExpectedTensor>> ExpectedTensors(const ModelInfo& m) {
  ZCPACK_RETURN_IF_ERROR(ValidateModelInfo(m));
  const uint64_t hidden = m.hidden_size();
  const uint64_t q_rows = uint64_t{m.num_heads()} * m.head_dim();
  const uint64_t kv_rows = uint64_t{m.num_kv_heads()} * m.head_dim();
  const uint64_t ffn = m.intermediate_size();
  const uint64_t vocab = m.vocab_size();

  std::vector<ExpectedTensor> out;
  out.reserve(3 + uint64_t{m.num_layers()} * 12);
  out.push_back({ROLE_TOKEN_EMBEDDING, -1, {vocab, hidden}});
  for (int32_t layer = 0; layer < static_cast<int32_t>(m.num_layers()); ++layer) {
    out.push_back({ROLE_ATTN_NORM, layer, {hidden}});
    out.push_back({ROLE_ATTN_Q, layer, {q_rows, hidden}});
    if (m.attention_bias()) out.push_back({ROLE_ATTN_Q_BIAS, layer, {q_rows}});
    out.push_back({ROLE_ATTN_K, layer, {kv_rows, hidden}});
    if (m.attention_bias()) out.push_back({ROLE_ATTN_K_BIAS, layer, {kv_rows}});
    out.push_back({ROLE_ATTN_V, layer, {kv_rows, hidden}});
    if (m.attention_bias()) out.push_back({ROLE_ATTN_V_BIAS, layer, {kv_rows}});
    out.push_back({ROLE_ATTN_OUTPUT, layer, {hidden, q_rows}});
    out.push_back({ROLE_FFN_NORM, layer, {hidden}});
    out.push_back({ROLE_FFN_GATE, layer, {ffn, hidden}});
    out.push_back({ROLE_FFN_UP, layer, {ffn, hidden}});
    out.push_back({ROLE_FFN_DOWN, layer, {hidden, ffn}});
  }
  out.push_back({ROLE_OUTPUT_NORM, -1, {hidden}});
  if (!m.tied_embeddings()) out.push_back({ROLE_OUTPUT, -1, {vocab, hidden}});
  return out;
}


absl::Status CheckTensorTable(const ModelInfo& model,
                              const google::protobuf::RepeatedPtrField<TensorEntry>& tensors) {
  std::vector<TensorShapeRef> refs;
  refs.reserve(tensors.size());
  for (const TensorEntry& t : tensors) {
    refs.push_back({View(t.name()), t.role(), t.layer(),
                    std::span<const uint64_t>(t.shape().data(), t.shape().size())});
  }
  return CheckTensorShapes(model, refs);
}

}  // namespace zcpack::format
