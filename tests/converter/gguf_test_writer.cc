#include "tests/converter/gguf_test_writer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/converter/quantize.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/half.h"

namespace zcpack::testing {
namespace {

using converter::GgufValueType;

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutString(std::vector<uint8_t>& out, const std::string& s) {
  PutU64(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
uint32_t TypeCode(GgufValueType t) { return static_cast<uint32_t>(t); }

uint64_t AlignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

void PutHalf(uint8_t* out, float v) {
  const uint16_t h = format::FloatToHalf(v);
  out[0] = static_cast<uint8_t>(h);
  out[1] = static_cast<uint8_t>(h >> 8);
}

// q4_1, q5_0 and q5_1 blocks for fixtures: the plain min/max (q4_1, q5_1)
// or signed-max (q5_0) rounding of ggml's reference quantizers. zcpack does
// not produce these types; the tests only need GGUF files that hold them.
void EncodeBlock32(const float* x, format::DType dtype, uint8_t* out) {
  const bool q5 = dtype != format::DTYPE_Q4_1;
  const bool with_min = dtype != format::DTYPE_Q5_0;
  const int top = q5 ? 31 : 15;
  float d = 0.0f;
  float min = 0.0f;
  if (with_min) {
    min = *std::min_element(x, x + 32);
    const float max = *std::max_element(x, x + 32);
    d = (max - min) / static_cast<float>(top);
  } else {
    float signed_max = 0.0f;
    for (int e = 0; e < 32; ++e) {
      if (std::fabs(x[e]) > std::fabs(signed_max)) signed_max = x[e];
    }
    d = signed_max / -16.0f;
  }
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int u[32];
  for (int e = 0; e < 32; ++e) {
    const float t = with_min ? (x[e] - min) * id + 0.5f : x[e] * id + 16.5f;
    u[e] = std::clamp(static_cast<int>(t), 0, top);
  }
  PutHalf(out, d);
  if (with_min) PutHalf(out + 2, min);
  uint8_t* qs = out + (with_min ? 4 : 2);
  if (q5) {
    uint32_t qh = 0;
    for (int e = 0; e < 32; ++e) qh |= static_cast<uint32_t>((u[e] >> 4) & 1) << e;
    for (int i = 0; i < 4; ++i) qs[i] = static_cast<uint8_t>(qh >> (8 * i));
    qs += 4;
  }
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((u[j] & 0xF) | ((u[j + 16] & 0xF) << 4));
}

}  // namespace

GgufTestWriter& GgufTestWriter::SetVersion(uint32_t version) {
  version_ = version;
  return *this;
}

GgufTestWriter& GgufTestWriter::SetAlignment(uint64_t alignment) {
  alignment_ = alignment;
  return *this;
}

void GgufTestWriter::Key(const std::string& key, uint32_t type) {
  ++kv_count_;
  PutString(kv_bytes_, key);
  PutU32(kv_bytes_, type);
}

GgufTestWriter& GgufTestWriter::AddUint32(const std::string& key, uint32_t value) {
  Key(key, TypeCode(GgufValueType::kUint32));
  PutU32(kv_bytes_, value);
  return *this;
}

GgufTestWriter& GgufTestWriter::AddInt32(const std::string& key, int32_t value) {
  Key(key, TypeCode(GgufValueType::kInt32));
  PutU32(kv_bytes_, static_cast<uint32_t>(value));
  return *this;
}

GgufTestWriter& GgufTestWriter::AddUint64(const std::string& key, uint64_t value) {
  Key(key, TypeCode(GgufValueType::kUint64));
  PutU64(kv_bytes_, value);
  return *this;
}

GgufTestWriter& GgufTestWriter::AddFloat32(const std::string& key, float value) {
  Key(key, TypeCode(GgufValueType::kFloat32));
  PutU32(kv_bytes_, std::bit_cast<uint32_t>(value));
  return *this;
}

GgufTestWriter& GgufTestWriter::AddBool(const std::string& key, bool value) {
  Key(key, TypeCode(GgufValueType::kBool));
  kv_bytes_.push_back(value ? 1 : 0);
  return *this;
}

GgufTestWriter& GgufTestWriter::AddString(const std::string& key, const std::string& value) {
  Key(key, TypeCode(GgufValueType::kString));
  PutString(kv_bytes_, value);
  return *this;
}

GgufTestWriter& GgufTestWriter::AddStringArray(const std::string& key,
                                               const std::vector<std::string>& values) {
  Key(key, TypeCode(GgufValueType::kArray));
  PutU32(kv_bytes_, TypeCode(GgufValueType::kString));
  PutU64(kv_bytes_, values.size());
  for (const std::string& v : values) PutString(kv_bytes_, v);
  return *this;
}

GgufTestWriter& GgufTestWriter::AddFloat32Array(const std::string& key,
                                                const std::vector<float>& values) {
  Key(key, TypeCode(GgufValueType::kArray));
  PutU32(kv_bytes_, TypeCode(GgufValueType::kFloat32));
  PutU64(kv_bytes_, values.size());
  for (float v : values) PutU32(kv_bytes_, std::bit_cast<uint32_t>(v));
  return *this;
}

GgufTestWriter& GgufTestWriter::AddInt32Array(const std::string& key,
                                              const std::vector<int32_t>& values) {
  Key(key, TypeCode(GgufValueType::kArray));
  PutU32(kv_bytes_, TypeCode(GgufValueType::kInt32));
  PutU64(kv_bytes_, values.size());
  for (int32_t v : values) PutU32(kv_bytes_, static_cast<uint32_t>(v));
  return *this;
}

GgufTestWriter& GgufTestWriter::AddRaw(const std::string& key, uint32_t type,
                                       const std::vector<uint8_t>& value_bytes) {
  Key(key, type);
  kv_bytes_.insert(kv_bytes_.end(), value_bytes.begin(), value_bytes.end());
  return *this;
}

GgufTestWriter& GgufTestWriter::AddTensor(const std::string& name, uint32_t ggml_type,
                                          const std::vector<uint64_t>& shape,
                                          const std::vector<uint8_t>& data,
                                          std::optional<uint64_t> offset) {
  tensors_.push_back(Tensor{name, ggml_type, shape, data, offset});
  return *this;
}

std::vector<uint8_t> GgufTestWriter::Build() const {
  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  PutU32(out, version_);
  PutU64(out, tensors_.size());
  PutU64(out, kv_count_);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());

  // Default placement: in call order, each at the next aligned offset.
  std::vector<uint64_t> placed(tensors_.size());
  uint64_t next = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    placed[i] = AlignUp(next, alignment_);
    next = placed[i] + tensors_[i].data.size();
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    PutString(out, t.name);
    PutU32(out, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) PutU64(out, *it);
    PutU32(out, t.ggml_type);
    PutU64(out, t.offset.value_or(placed[i]));
  }
  const uint64_t data_start = AlignUp(out.size(), alignment_);
  out.resize(data_start, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    // Data always goes where the default layout puts it, even when the stored
    // offset is overridden, so an override describes a broken file.
    const uint64_t at = data_start + placed[i];
    if (out.size() < at) out.resize(at, 0);
    out.insert(out.end(), tensors_[i].data.begin(), tensors_[i].data.end());
  }
  return out;
}

std::vector<uint8_t> EncodeFloats(const std::vector<float>& values, format::DType dtype) {
  std::vector<uint8_t> out;
  for (float v : values) {
    if (dtype == format::DTYPE_F32) {
      PutU32(out, std::bit_cast<uint32_t>(v));
    } else {
      const uint16_t h = dtype == format::DTYPE_F16 ? format::FloatToHalf(v)
                                                    : format::FloatToBFloat16(v);
      out.push_back(static_cast<uint8_t>(h));
      out.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return out;
}

std::vector<float> PseudoRandomFloats(uint64_t count, uint64_t seed) {
  std::vector<float> out(count);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;  // LCG (Knuth MMIX)
    v = static_cast<float>(static_cast<double>(state >> 40) / double(1 << 24) * 2.0 - 1.0);
  }
  return out;
}

std::vector<std::string> MergeLikeStrings(uint64_t total_bytes) {
  std::vector<std::string> out;
  uint64_t state = 12345, bytes = 0;
  while (bytes < total_bytes) {
    std::string s;
    for (int part = 0; part < 2; ++part) {
      if (part == 1) s.push_back(' ');
      state = state * 6364136223846793005u + 1442695040888963407u;
      const int length = 1 + static_cast<int>((state >> 60) % 6);
      for (int i = 0; i < length; ++i) s.push_back(static_cast<char>('a' + (state >> (8 + 4 * i)) % 26));
    }
    bytes += 8 + s.size();
    out.push_back(std::move(s));
  }
  return out;
}

format::ModelInfo TinyLlamaModelInfo() {
  format::ModelInfo m;
  m.set_architecture("llama");
  m.set_hidden_size(16);
  m.set_num_layers(2);
  m.set_num_heads(4);
  m.set_num_kv_heads(2);
  m.set_head_dim(4);
  m.set_intermediate_size(32);
  m.set_vocab_size(24);
  m.set_rope_theta(10000.0);
  m.set_rms_norm_eps(1e-5);
  m.set_max_position_embeddings(128);
  m.set_bos_token_id(1);
  m.set_eos_token_id(2);
  return m;
}

uint32_t GgmlTypeOf(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_F32: return converter::kGgmlTypeF32;
    case format::DTYPE_F16: return converter::kGgmlTypeF16;
    case format::DTYPE_Q4_0: return converter::kGgmlTypeQ4_0;
    case format::DTYPE_Q8_0: return converter::kGgmlTypeQ8_0;
    case format::DTYPE_Q4_K: return converter::kGgmlTypeQ4_K;
    case format::DTYPE_Q4_1: return converter::kGgmlTypeQ4_1;
    case format::DTYPE_Q5_0: return converter::kGgmlTypeQ5_0;
    case format::DTYPE_Q5_1: return converter::kGgmlTypeQ5_1;
    default: return converter::kGgmlTypeBF16;
  }
}

std::vector<uint8_t> TensorBytes(const std::vector<float>& values, format::DType dtype) {
  if (!format::IsQuantized(dtype)) return EncodeFloats(values, dtype);
  std::vector<uint8_t> out(values.size() / format::BlockElements(dtype) * format::BlockBytes(dtype));
  switch (dtype) {
    case format::DTYPE_Q4_0: converter::QuantizeQ4_0(values.data(), values.size(), out.data()); break;
    case format::DTYPE_Q8_0: converter::QuantizeQ8_0(values.data(), values.size(), out.data()); break;
    case format::DTYPE_Q4_K: converter::QuantizeQ4_K(values.data(), values.size(), out.data()); break;
    case format::DTYPE_Q4_1:
    case format::DTYPE_Q5_0:
    case format::DTYPE_Q5_1:
      for (size_t b = 0; b < values.size() / 32; ++b) {
        EncodeBlock32(values.data() + 32 * b, dtype, out.data() + b * format::BlockBytes(dtype));
      }
      break;
    default:
      std::fprintf(stderr, "TensorBytes: no encoder for %s\n",
                   std::string(format::DTypeName(dtype)).c_str());
      std::abort();
  }
  return out;
}

format::ModelInfo QuantizedLlamaModelInfo() {
  format::ModelInfo m = TinyLlamaModelInfo();
  m.set_hidden_size(256);
  m.set_head_dim(64);
  m.set_intermediate_size(256);
  return m;
}

std::vector<uint8_t> TinyLlamaGguf(const format::ModelInfo& model, format::DType dtype,
                                   uint64_t seed, const std::vector<std::string>& merges,
                                   const std::map<std::string, uint32_t>& ggml_types) {
  auto expected = converter::ExpectedTensors(model);
  if (!expected.ok()) {
    std::fprintf(stderr, "TinyLlamaGguf: %s\n", std::string(expected.status().message()).c_str());
    std::abort();
  }
  GgufTestWriter w;
  w.AddString("general.architecture", "llama")
      .AddString("general.name", "tiny")
      .AddUint32("general.alignment", 32)
      .AddUint32("llama.context_length", model.max_position_embeddings())
      .AddUint32("llama.embedding_length", model.hidden_size())
      .AddUint32("llama.block_count", model.num_layers())
      .AddUint32("llama.feed_forward_length", model.intermediate_size())
      .AddUint32("llama.rope.dimension_count", model.head_dim())
      .AddUint32("llama.attention.head_count", model.num_heads())
      .AddUint32("llama.attention.head_count_kv", model.num_kv_heads())
      .AddFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(model.rms_norm_eps()))
      .AddFloat32("llama.rope.freq_base", static_cast<float>(model.rope_theta()));
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (uint32_t i = 0; i < model.vocab_size(); ++i) {
    tokens.push_back(i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : absl::StrCat("t", i));
    scores.push_back(-static_cast<float>(i));
    types.push_back(i < 3 ? 3 : 1);
  }
  w.AddString("tokenizer.ggml.model", "llama")
      .AddStringArray("tokenizer.ggml.tokens", tokens)
      .AddFloat32Array("tokenizer.ggml.scores", scores)
      .AddInt32Array("tokenizer.ggml.token_type", types);
  if (!merges.empty()) w.AddStringArray("tokenizer.ggml.merges", merges);
  if (model.bos_token_id() >= 0) {
    w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(model.bos_token_id()));
  }
  if (model.eos_token_id() >= 0) {
    w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(model.eos_token_id()));
  }
  uint64_t tensor_seed = seed;
  for (const converter::ExpectedTensor& e : *expected) {
    uint64_t count = 1;
    for (uint64_t d : e.shape) count *= d;
    const format::DType stored = e.shape.size() >= 2 ? dtype : format::DTYPE_F32;
    const std::string name = converter::TensorName(e.role, e.layer, converter::TensorNaming::kGguf);
    std::vector<float> values = PseudoRandomFloats(count, tensor_seed++);
    if (const auto it = ggml_types.find(name); it != ggml_types.end()) {
      const converter::GgmlBlockShape block = converter::GgmlBlockShapeOf(it->second);
      w.AddTensor(name, it->second, e.shape,
                  std::vector<uint8_t>(count / block.elements * block.bytes, 0));
      continue;
    }
    w.AddTensor(name, GgmlTypeOf(stored), e.shape, TensorBytes(values, stored));
  }
  return w.Build();
}

}  // namespace zcpack::testing
