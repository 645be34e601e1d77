#include "tests/converter/safetensors_test_writer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/status_macros.h"

namespace zcpack::testing {
namespace {


std::vector<uint8_t> ToBytes(const std::string& text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

}  // namespace

SafetensorsTestWriter& SafetensorsTestWriter::AddTensor(
    const std::string& name, const std::string& dtype, const std::vector<uint64_t>& shape,
    const std::vector<uint8_t>& data, std::optional<std::pair<uint64_t, uint64_t>> data_offsets) {
  tensors_.push_back(Tensor{name, dtype, shape, data, data_offsets});
  return *this;
}

SafetensorsTestWriter& SafetensorsTestWriter::AddFloatTensor(const std::string& name,
                                                             format::DType dtype,
                                                             const std::vector<uint64_t>& shape,
                                                             const std::vector<float>& values) {
  return AddTensor(name, SafetensorsDTypeName(dtype), shape, EncodeFloats(values, dtype));
}

SafetensorsTestWriter& SafetensorsTestWriter::AddMetadata(const std::string& key,
                                                          const std::string& value) {
  metadata_.emplace_back(key, value);
  return *this;
}

SafetensorsTestWriter& SafetensorsTestWriter::SetHeaderText(std::string text) {
  header_text_ = std::move(text);
  return *this;
}

std::string SafetensorsTestWriter::HeaderText() const {
  if (header_text_.has_value()) return *header_text_;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t next = 0;
  for (const Tensor& t : tensors_) {
    const std::pair<uint64_t, uint64_t> offsets =
        t.data_offsets.value_or(std::make_pair(next, next + t.data.size()));
    next += t.data.size();
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offsets.first, offsets.second}}};
  }
  return header.dump();
}

std::vector<uint8_t> SafetensorsTestWriter::Build() const {
  std::string text = HeaderText();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const Tensor& t : tensors_) out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

std::string SafetensorsDTypeName(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_F32: return "F32";
    case format::DTYPE_F16: return "F16";
    case format::DTYPE_BF16: return "BF16";
    default: return "UNSUPPORTED";
  }
}

std::string HfConfigJson(const format::ModelInfo& m) {
  const std::string arch = m.architecture();
  const std::string hf_class = arch == "qwen2"     ? "Qwen2ForCausalLM"
                               : arch == "mistral" ? "MistralForCausalLM"
                                                   : "LlamaForCausalLM";
  nlohmann::ordered_json config = {
      {"architectures", {hf_class}},
      {"model_type", arch},
      {"hidden_act", "silu"},
      {"hidden_size", m.hidden_size()},
      {"num_hidden_layers", m.num_layers()},
      {"num_attention_heads", m.num_heads()},
      {"num_key_value_heads", m.num_kv_heads()},
      {"intermediate_size", m.intermediate_size()},
      {"vocab_size", m.vocab_size()},
      {"max_position_embeddings", m.max_position_embeddings()},
      {"rope_theta", m.rope_theta()},
      {"rms_norm_eps", m.rms_norm_eps()},
      {"tie_word_embeddings", m.tied_embeddings()},
      {"torch_dtype", "bfloat16"},
  };
  if (m.head_dim() * m.num_heads() != m.hidden_size()) config["head_dim"] = m.head_dim();
  if (m.bos_token_id() >= 0) config["bos_token_id"] = m.bos_token_id();
  if (m.eos_token_id() >= 0) config["eos_token_id"] = m.eos_token_id();
  return config.dump(2);
}

absl::Status WriteTinyHfModel(const std::string& dir, const format::ModelInfo& model,
                              format::DType dtype, int shards, uint64_t seed,
                              TinyWeights weights) {
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<converter::ExpectedTensor> expected,
                          converter::ExpectedTensors(model));
  ZCPACK_RETURN_IF_ERROR(WriteFileBytes(JoinPath(dir, "config.json"), ToBytes(HfConfigJson(model))));
  ZCPACK_RETURN_IF_ERROR(WriteFileBytes(
      JoinPath(dir, "tokenizer.json"),
      ToBytes(R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}})")));

  shards = std::max(shards, 1);
  std::vector<SafetensorsTestWriter> writers(static_cast<size_t>(shards));
  std::vector<std::string> names;
  for (int i = 0; i < shards; ++i) {
    names.push_back(shards == 1 ? std::string("model.safetensors")
                                : absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, shards));
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  uint64_t tensor_seed = seed;
  for (size_t i = 0; i < expected.size(); ++i) {
    const converter::ExpectedTensor& e = expected[i];
    uint64_t count = 1;
    for (uint64_t d : e.shape) count *= d;
    const size_t shard = i * static_cast<size_t>(shards) / expected.size();
    const std::string name =
        converter::TensorName(e.role, e.layer, converter::TensorNaming::kHuggingFace);
    std::vector<float> values = PseudoRandomFloats(count, tensor_seed++);
    if (weights == TinyWeights::kTrainedScale) {
      const bool norm = e.role == format::ROLE_ATTN_NORM || e.role == format::ROLE_FFN_NORM ||
                        e.role == format::ROLE_OUTPUT_NORM;
      // Uniform [-1, 1) has standard deviation 1 / sqrt(3).
      const float scale = e.shape.size() == 2
                              ? std::sqrt(3.0f / static_cast<float>(e.shape.back()))
                              : 0.1f;
      for (float& v : values) v = (norm ? 1.0f : 0.0f) + v * scale;
    }
    writers[shard].AddFloatTensor(name, dtype, e.shape, values);
    weight_map[name] = names[shard];
  }
  for (int i = 0; i < shards; ++i) {
    ZCPACK_RETURN_IF_ERROR(WriteFileBytes(JoinPath(dir, names[static_cast<size_t>(i)]),
                                          writers[static_cast<size_t>(i)].Build()));
  }
  if (shards > 1) {
    const nlohmann::ordered_json index = {{"metadata", {{"total_size", 0}}},
                                          {"weight_map", weight_map}};
    ZCPACK_RETURN_IF_ERROR(WriteFileBytes(JoinPath(dir, "model.safetensors.index.json"),
                                          ToBytes(index.dump(2))));
  }
  return absl::OkStatus();
}

}  // namespace zcpack::testing
