// Architecture mapping: config.json -> ModelInfo, tensor names of both
// schemes -> (role, layer), ExpectedTensors() and CheckTensorsAgainstModel().
#include "zcpack/converter/architecture.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"

namespace zcpack::converter {
namespace {

using absl::StatusCode;
using format::TensorRole;

constexpr absl::string_view kLlamaConfig = R"({
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 5632,
  "num_hidden_layers": 22,
  "num_attention_heads": 32,
  "num_key_value_heads": 4,
  "max_position_embeddings": 2048,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vocab_size": 32000,
  "bos_token_id": 1,
  "eos_token_id": 2
})";

constexpr absl::string_view kQwen2Config = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "hidden_act": "silu",
  "hidden_size": 896,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "tie_word_embeddings": true,
  "vocab_size": 151936,
  "bos_token_id": 151643,
  "eos_token_id": [151645, 151643],
  "use_sliding_window": false
})";

TEST(HfConfigTest, MapsLlamaConfig) {
  auto model = ModelInfoFromHfConfig(kLlamaConfig, "config.json");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->architecture(), "llama");
  EXPECT_EQ(model->hidden_size(), 2048u);
  EXPECT_EQ(model->num_layers(), 22u);
  EXPECT_EQ(model->num_heads(), 32u);
  EXPECT_EQ(model->num_kv_heads(), 4u);
  EXPECT_EQ(model->head_dim(), 64u);
  EXPECT_EQ(model->intermediate_size(), 5632u);
  EXPECT_EQ(model->vocab_size(), 32000u);
  EXPECT_DOUBLE_EQ(model->rope_theta(), 10000.0);
  EXPECT_DOUBLE_EQ(model->rms_norm_eps(), 1e-5);
  EXPECT_EQ(model->max_position_embeddings(), 2048u);
  EXPECT_FALSE(model->tied_embeddings());
  EXPECT_FALSE(model->attention_bias());
  EXPECT_EQ(model->rope_layout(), format::ROPE_LAYOUT_HALF_SPLIT);
  EXPECT_EQ(model->bos_token_id(), 1);
  EXPECT_EQ(model->eos_token_id(), 2);
}

TEST(HfConfigTest, MapsQwen2ConfigWithBiasesAndTiedEmbeddings) {
  auto model = ModelInfoFromHfConfig(kQwen2Config, "config.json");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->architecture(), "qwen2");
  EXPECT_TRUE(model->attention_bias());
  EXPECT_TRUE(model->tied_embeddings());
  EXPECT_EQ(model->head_dim(), 64u);
  EXPECT_DOUBLE_EQ(model->rope_theta(), 1e6);
  EXPECT_EQ(model->eos_token_id(), 151645);  // first of the list
}

TEST(HfConfigTest, AppliesDefaults) {
  auto model = ModelInfoFromHfConfig(
      R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 8, "intermediate_size": 128, "vocab_size": 100})",
      "config.json");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->architecture(), "mistral");
  EXPECT_EQ(model->num_kv_heads(), 8u);
  EXPECT_EQ(model->head_dim(), 8u);
  EXPECT_DOUBLE_EQ(model->rope_theta(), 10000.0);
  EXPECT_DOUBLE_EQ(model->rms_norm_eps(), 1e-6);
  EXPECT_FALSE(model->tied_embeddings());
  EXPECT_EQ(model->bos_token_id(), -1);
  EXPECT_EQ(model->eos_token_id(), -1);
}

TEST(HfConfigTest, ExplicitHeadDimWins) {
  auto model = ModelInfoFromHfConfig(
      R"({"architectures": ["MistralForCausalLM"], "hidden_size": 5120, "num_hidden_layers": 2,
          "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
          "intermediate_size": 128, "vocab_size": 100})",
      "config.json");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->head_dim(), 128u);
}

TEST(HfConfigTest, ModelTypeStandsInForArchitectures) {
  auto model = ModelInfoFromHfConfig(
      R"({"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 8, "intermediate_size": 128, "vocab_size": 100})",
      "config.json");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->architecture(), "qwen2");
}

TEST(HfConfigTest, RejectsWhatItCannotRepresent) {
  const auto status = [](absl::string_view text) {
    return ModelInfoFromHfConfig(text, "config.json").status();
  };
  const std::string base = R"("hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
                              "intermediate_size": 128, "vocab_size": 100)";
  EXPECT_EQ(status("[1]").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status("{").code(), StatusCode::kInvalidArgument);
  const absl::Status unknown = status(R"({"architectures": ["GPT2LMHeadModel"]})");
  EXPECT_EQ(unknown.code(), StatusCode::kUnimplemented);
  EXPECT_NE(unknown.message().find("GPT2LMHeadModel"), absl::string_view::npos);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "hidden_act": "gelu", )" + base + "}")
                .code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "llama3"}, )" +
                   base + "}")
                .code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "attention_bias": true, )" + base + "}")
                .code(),
            StatusCode::kUnimplemented);
  const absl::Status missing = status(R"({"architectures": ["LlamaForCausalLM"]})");
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("hidden_size"), absl::string_view::npos);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "num_key_value_heads": 3, )" + base + "}")
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "num_key_value_heads": -1, )" + base + "}")
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(status(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 65, "num_hidden_layers": 2,
                       "num_attention_heads": 8, "intermediate_size": 128, "vocab_size": 100})")
                .code(),
            StatusCode::kInvalidArgument);
}

struct NameCase {
  const char* hf;
  const char* gguf;
  TensorRole role;
  int32_t layer;
};

constexpr NameCase kNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight", format::ROLE_TOKEN_EMBEDDING, -1},
    {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", format::ROLE_ATTN_NORM, 0},
    {"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight", format::ROLE_ATTN_Q, 3},
    {"model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias", format::ROLE_ATTN_Q_BIAS, 3},
    {"model.layers.12.self_attn.k_proj.weight", "blk.12.attn_k.weight", format::ROLE_ATTN_K, 12},
    {"model.layers.12.self_attn.k_proj.bias", "blk.12.attn_k.bias", format::ROLE_ATTN_K_BIAS, 12},
    {"model.layers.7.self_attn.v_proj.weight", "blk.7.attn_v.weight", format::ROLE_ATTN_V, 7},
    {"model.layers.7.self_attn.v_proj.bias", "blk.7.attn_v.bias", format::ROLE_ATTN_V_BIAS, 7},
    {"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight", format::ROLE_ATTN_OUTPUT, 1},
    {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight", format::ROLE_FFN_NORM, 1},
    {"model.layers.95.mlp.gate_proj.weight", "blk.95.ffn_gate.weight", format::ROLE_FFN_GATE, 95},
    {"model.layers.95.mlp.up_proj.weight", "blk.95.ffn_up.weight", format::ROLE_FFN_UP, 95},
    {"model.layers.95.mlp.down_proj.weight", "blk.95.ffn_down.weight", format::ROLE_FFN_DOWN, 95},
    {"model.norm.weight", "output_norm.weight", format::ROLE_OUTPUT_NORM, -1},
    {"lm_head.weight", "output.weight", format::ROLE_OUTPUT, -1},
};

TEST(TensorNamingTest, PlacesBothSchemes) {
  for (const NameCase& c : kNames) {
    const TensorPlacement hf = PlaceTensor(c.hf, TensorNaming::kHuggingFace);
    EXPECT_EQ(hf.role, c.role) << c.hf;
    EXPECT_EQ(hf.layer, c.layer) << c.hf;
    const TensorPlacement gguf = PlaceTensor(c.gguf, TensorNaming::kGguf);
    EXPECT_EQ(gguf.role, c.role) << c.gguf;
    EXPECT_EQ(gguf.layer, c.layer) << c.gguf;
  }
}

TEST(TensorNamingTest, TensorNameInvertsPlaceTensor) {
  for (const NameCase& c : kNames) {
    EXPECT_EQ(TensorName(c.role, c.layer, TensorNaming::kHuggingFace), c.hf);
    EXPECT_EQ(TensorName(c.role, c.layer, TensorNaming::kGguf), c.gguf);
  }
  EXPECT_EQ(TensorName(format::ROLE_OTHER, 0, TensorNaming::kGguf), "");
}

TEST(TensorNamingTest, UnknownNamesAreOther) {
  const TensorPlacement inv_freq =
      PlaceTensor("model.layers.4.self_attn.rotary_emb.inv_freq", TensorNaming::kHuggingFace);
  EXPECT_EQ(inv_freq.role, format::ROLE_OTHER);
  EXPECT_EQ(inv_freq.layer, 4);
  EXPECT_EQ(PlaceTensor("rope_freqs.weight", TensorNaming::kGguf).role, format::ROLE_OTHER);
  // The other scheme's names, malformed layer numbers.
  EXPECT_EQ(PlaceTensor("token_embd.weight", TensorNaming::kHuggingFace).role, format::ROLE_OTHER);
  EXPECT_EQ(PlaceTensor("model.layers.01.mlp.up_proj.weight", TensorNaming::kHuggingFace).role,
            format::ROLE_OTHER);
  EXPECT_EQ(PlaceTensor("blk.-1.attn_q.weight", TensorNaming::kGguf).role, format::ROLE_OTHER);
  EXPECT_EQ(PlaceTensor("blk.99999999999.attn_q.weight", TensorNaming::kGguf).role,
            format::ROLE_OTHER);
  EXPECT_EQ(PlaceTensor("blk..attn_q.weight", TensorNaming::kGguf).role, format::ROLE_OTHER);
  EXPECT_EQ(PlaceTensor("blk.3", TensorNaming::kGguf).role, format::ROLE_OTHER);
}

TEST(ExpectedTensorsTest, ListsLlamaTensorsInForwardOrder) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  auto expected = ExpectedTensors(m);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->size(), 1 + 2 * 9 + 2u);
  EXPECT_EQ(expected->front().role, format::ROLE_TOKEN_EMBEDDING);
  EXPECT_EQ(expected->front().shape, (std::vector<uint64_t>{24, 16}));
  const ExpectedTensor& k = (*expected)[3];
  EXPECT_EQ(k.role, format::ROLE_ATTN_K);
  EXPECT_EQ(k.layer, 0);
  EXPECT_EQ(k.shape, (std::vector<uint64_t>{8, 16}));  // 2 KV heads x head_dim 4
  const ExpectedTensor& down = (*expected)[9];
  EXPECT_EQ(down.role, format::ROLE_FFN_DOWN);
  EXPECT_EQ(down.shape, (std::vector<uint64_t>{16, 32}));
  EXPECT_EQ(expected->back().role, format::ROLE_OUTPUT);
}

TEST(ExpectedTensorsTest, BiasesAndTiedEmbeddings) {
  format::ModelInfo m = testing::TinyLlamaModelInfo();
  m.set_attention_bias(true);
  m.set_tied_embeddings(true);
  auto expected = ExpectedTensors(m);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->size(), 1 + 2 * 12 + 1u);
  EXPECT_EQ((*expected)[3].role, format::ROLE_ATTN_Q_BIAS);
  EXPECT_EQ((*expected)[3].shape, (std::vector<uint64_t>{16}));
  EXPECT_EQ(expected->back().role, format::ROLE_OUTPUT_NORM);
}

TEST(ExpectedTensorsTest, RejectsInvalidModel) {
  format::ModelInfo m = testing::TinyLlamaModelInfo();
  m.set_num_kv_heads(3);
  EXPECT_EQ(ExpectedTensors(m).status().code(), StatusCode::kInvalidArgument);
  m = testing::TinyLlamaModelInfo();
  m.set_vocab_size(0);
  EXPECT_EQ(ExpectedTensors(m).status().code(), StatusCode::kInvalidArgument);
}

// Source tensors exactly matching the model (no data needed).
std::vector<SourceTensor> MatchingTensors(const format::ModelInfo& m) {
  std::vector<SourceTensor> out;
  const absl::StatusOr<std::vector<ExpectedTensor>> expected = ExpectedTensors(m);
  if (!expected.ok()) return out;
  for (const ExpectedTensor& e : *expected) {
    SourceTensor t;
    t.name = TensorName(e.role, e.layer, TensorNaming::kHuggingFace);
    t.dtype = format::DTYPE_F32;
    t.shape = e.shape;
    t.role = e.role;
    t.layer = e.layer;
    out.push_back(t);
  }
  return out;
}

TEST(CheckTensorsTest, AcceptsMatchingTensorsAndIgnoresOther) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  std::vector<SourceTensor> tensors = MatchingTensors(m);
  SourceTensor other;
  other.name = "model.layers.0.self_attn.rotary_emb.inv_freq";
  other.role = format::ROLE_OTHER;
  other.layer = 0;
  tensors.push_back(other);
  EXPECT_TRUE(CheckTensorsAgainstModel(m, tensors).ok());
}

TEST(CheckTensorsTest, ReportsMissingLayerTensor) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  std::vector<SourceTensor> tensors = MatchingTensors(m);
  std::erase_if(tensors, [](const SourceTensor& t) {
    return t.role == format::ROLE_FFN_UP && t.layer == 1;
  });
  const absl::Status s = CheckTensorsAgainstModel(m, tensors);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("missing tensor ffn_up, layer 1 (expected shape [32, 16])"),
            absl::string_view::npos)
      << s;
}

TEST(CheckTensorsTest, ReportsWrongShapeWithNameAndBothShapes) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  std::vector<SourceTensor> tensors = MatchingTensors(m);
  for (SourceTensor& t : tensors) {
    if (t.role == format::ROLE_ATTN_Q && t.layer == 0) t.shape = {16, 8};
  }
  const absl::Status s = CheckTensorsAgainstModel(m, tensors);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("'model.layers.0.self_attn.q_proj.weight' (attn_q, layer 0) has "
                             "shape [16, 8], expected [16, 16]"),
            absl::string_view::npos)
      << s;
}

TEST(CheckTensorsTest, ReportsDuplicatesExtraLayersAndUnusedTensors) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  {
    std::vector<SourceTensor> tensors = MatchingTensors(m);
    tensors.push_back(tensors[1]);
    tensors.back().name = "copy";
    EXPECT_NE(CheckTensorsAgainstModel(m, tensors).message().find("'copy' are both"),
              absl::string_view::npos);
  }
  {
    std::vector<SourceTensor> tensors = MatchingTensors(m);
    tensors.push_back(tensors[1]);
    tensors.back().layer = 2;
    EXPECT_NE(CheckTensorsAgainstModel(m, tensors).message().find("beyond the model's 2 layers"),
              absl::string_view::npos);
  }
  {
    std::vector<SourceTensor> tensors = MatchingTensors(m);
    SourceTensor bias = tensors[2];
    bias.name = "model.layers.0.self_attn.q_proj.bias";
    bias.role = format::ROLE_ATTN_Q_BIAS;
    bias.shape = {16};
    tensors.push_back(bias);
    const absl::Status s = CheckTensorsAgainstModel(m, tensors);
    EXPECT_NE(s.message().find("attention_bias is false"), absl::string_view::npos) << s;
  }
}

TEST(CheckTensorsTest, ChecksContainerTensorTables) {
  const format::ModelInfo m = testing::TinyLlamaModelInfo();
  format::Manifest manifest;
  for (const SourceTensor& t : MatchingTensors(m)) {
    format::TensorEntry* e = manifest.add_tensors();
    e->set_name(t.name);
    e->set_role(t.role);
    e->set_layer(t.layer);
    for (uint64_t d : t.shape) e->add_shape(d);
  }
  EXPECT_TRUE(format::CheckTensorTable(m, manifest.tensors()).ok());
  manifest.mutable_tensors()->RemoveLast();
  const absl::Status s = format::CheckTensorTable(m, manifest.tensors());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("missing tensor output"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace zcpack::converter
