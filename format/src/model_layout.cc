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

// The "model_tensors" rule, and "access_order" when `order` is set, over a
// model whose hyperparameters are valid. Returns false when the layer count
// does not fit the table (reported) or when the sink stopped the checks.
bool CheckModelTensors(const ModelInfo& model, std::span<const TensorShapeRef> tensors, bool order,
                       ProblemSink& sink) {
  auto add = [&sink](absl::string_view check, const TensorShapeRef* t, std::string detail) {
    return sink.Add({check, absl::StatusCode::kDataLoss,
                     t != nullptr ? std::string(t->name) : std::string(), std::nullopt,
                     t != nullptr ? t->offset : std::nullopt, std::move(detail)});
  };
  // Before ExpectedTensors(), whose size is proportional to num_layers.
  if (const uint64_t most = MaxLayersFor(tensors.size()); model.num_layers() > most) {
    add("model_tensors", nullptr,
        absl::StrCat("the model declares ", model.num_layers(), " layers, more than the ",
                     tensors.size(), " tensors of its table (every layer has nine)"));
    return false;
  }
  // Valid hyperparameters (the caller checked), so ExpectedTensors() succeeds.
  const std::vector<ExpectedTensor> expected = *ExpectedTensors(model);
  // (layer, role) -> index into `expected`, which is in forward-pass order.
  std::map<std::pair<int32_t, int>, size_t> wanted;
  for (size_t k = 0; k < expected.size(); ++k) {
    wanted[{expected[k].layer, static_cast<int>(expected[k].role)}] = k;
  }
  std::map<std::pair<int32_t, int>, absl::string_view> found;
  std::optional<size_t> last_index;  // forward-pass position of the last known tensor
  absl::string_view last_name;
  for (const TensorShapeRef& t : tensors) {
    if (t.role == ROLE_OTHER) continue;
    const std::string what =
        absl::StrCat("tensor '", t.name, "' (", RoleAndLayer(t.role, t.layer), ")");
    if (t.layer >= 0 && static_cast<uint64_t>(t.layer) >= model.num_layers()) {
      if (!add("model_tensors", &t,
               absl::StrCat(what, " lies beyond the model's ", model.num_layers(), " layers"))) {
        return false;
      }
      continue;
    }
    const auto want = wanted.find({t.layer, static_cast<int>(t.role)});
    if (want == wanted.end()) {
      const bool bias =
          t.role == ROLE_ATTN_Q_BIAS || t.role == ROLE_ATTN_K_BIAS || t.role == ROLE_ATTN_V_BIAS;
      if (!add("model_tensors", &t,
               absl::StrCat(what, " is not used by this model",
                            t.role == ROLE_OUTPUT ? " (embeddings are tied)"
                            : bias                ? " (attention_bias is false)"
                                                  : ""))) {
        return false;
      }
      continue;
    }
    const auto [it, inserted] = found.emplace(want->first, t.name);
    if (!inserted) {
      if (!add("model_tensors", &t,
               absl::StrCat("tensors '", it->second, "' and '", t.name, "' are both ",
                            RoleAndLayer(t.role, t.layer)))) {
        return false;
      }
      continue;
    }
    const std::vector<uint64_t>& shape = expected[want->second].shape;
    if (!std::equal(shape.begin(), shape.end(), t.shape.begin(), t.shape.end())) {
      if (!add("model_tensors", &t,
               absl::StrCat(what, " has shape ", ShapeString(t.shape), ", expected ",
                            ShapeString(shape)))) {
        return false;
      }
    }
    if (order && last_index.has_value() && want->second < *last_index) {
      if (!add("access_order", &t,
               absl::StrCat(what, " is stored after '", last_name,
                            "', but the forward pass reads it first"))) {
        return false;
      }
    } else {
      last_index = want->second;
      last_name = t.name;
    }
  }
  for (const ExpectedTensor& e : expected) {
    if (!found.contains({e.layer, static_cast<int>(e.role)})) {
      if (!add("model_tensors", nullptr,
               absl::StrCat("missing tensor ", RoleAndLayer(e.role, e.layer), " (expected shape ",
                            ShapeString(e.shape), ")"))) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

absl::Status CheckTensorShapes(const ModelInfo& model, std::span<const TensorShapeRef> tensors) {
  ZCPACK_RETURN_IF_ERROR(ValidateModelInfo(model));
  ProblemList problems;
  CheckModelTensors(model, tensors, /*order=*/false, problems);
  if (problems.problems().empty()) return absl::OkStatus();
  constexpr size_t kMaxReported = 5;
  std::vector<std::string> shown;
  for (const Problem& p : problems.problems()) {
    if (shown.size() == kMaxReported) break;
    shown.push_back(ProblemMessage(p));
  }
  std::string message = absl::StrJoin(shown, "; ");
  if (problems.problems().size() > shown.size()) {
    absl::StrAppend(&message, "; and ", problems.problems().size() - shown.size(), " more");
  }
  return absl::DataLossError(absl::StrCat("tensors do not match the ", model.architecture(),
                                          " model: ", message));
}

std::string CheckModel(const Manifest& manifest, std::span<const ByteRange> layer_ranges,
                       uint64_t alignment, ProblemSink& sink) {
  const ModelInfo& model = manifest.model();
  auto add = [&sink](absl::string_view check, absl::StatusCode code, std::string detail) {
    return sink.Add({check, code, "", std::nullopt, std::nullopt, std::move(detail)});
  };
  sink.Ran("model_info");
  if (absl::Status valid = ValidateModelInfo(model); !valid.ok()) {
    add("model_info", absl::StatusCode::kDataLoss, std::string(valid.message()));
    return "model_info";
  }
  sink.Ran("rope");
  if (model.rope_layout() != ROPE_LAYOUT_HALF_SPLIT &&
      model.rope_layout() != ROPE_LAYOUT_INTERLEAVED &&
      !add("rope", absl::StatusCode::kUnimplemented,
           absl::StrCat("the container does not record its RoPE row layout (rope_layout is ",
                        RopeLayout_IsValid(model.rope_layout())
                            ? RopeLayout_Name(model.rope_layout())
                            : absl::StrCat(static_cast<int>(model.rope_layout())),
                        "; expected ROPE_LAYOUT_HALF_SPLIT or ROPE_LAYOUT_INTERLEAVED)"))) {
    return "";
  }
  if (model.head_dim() % 2 != 0 &&
      !add("rope", absl::StatusCode::kUnimplemented,
           absl::StrCat("odd head_dim ", model.head_dim(),
                        ": RoPE rotates pairs of dimensions"))) {
    return "";
  }
  sink.Ran("model_tensors");
  sink.Ran("access_order");
  std::vector<TensorShapeRef> refs;
  refs.reserve(static_cast<size_t>(manifest.tensors_size()));
  for (const TensorEntry& t : manifest.tensors()) {
    refs.push_back({View(t.name()), t.role(), t.layer(),
                    std::span<const uint64_t>(t.shape().data(), t.shape().size()), t.offset()});
  }
  if (!CheckModelTensors(model, refs, /*order=*/true, sink)) {
    // Either the sink stopped, or the layer count does not fit the table.
    return MaxLayersFor(refs.size()) < model.num_layers() ? "model_tensors" : "";
  }
  sink.Ran("layer_ranges");
  // Bounded: CheckModelTensors() checked num_layers against the table.
  for (uint32_t l = 0; l < model.num_layers(); ++l) {
    const ByteRange range = l < layer_ranges.size() ? layer_ranges[l] : ByteRange{};
    if (range.size == 0) {
      if (!add("layer_ranges", absl::StatusCode::kDataLoss,
               absl::StrCat("layer ", l, " of ", model.num_layers(),
                            " has no tensors in the file"))) {
        return "";
      }
      continue;
    }
    if ((range.offset % alignment != 0 || range.size % alignment != 0) &&
        !sink.Add({"layer_ranges", absl::StatusCode::kDataLoss, "", std::nullopt, range.offset,
                   absl::StrCat("layer ", l, " range [", range.offset, ", +", range.size,
                                ") is not aligned to ", alignment)})) {
      return "";
    }
  }
  return "";
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
                    std::span<const uint64_t>(t.shape().data(), t.shape().size()), t.offset()});
  }
  return CheckTensorShapes(model, refs);
}

}  // namespace zcpack::format
