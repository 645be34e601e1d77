#include "gguf_tokenizer.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/coding.h"

namespace zcpack::exporter::internal {
namespace {

using converter::GgufValueType;
using nlohmann::json;

// The type llama.cpp reads a key in (llama-vocab.cpp, llama-model-loader.cpp).
enum class Want { kInferred, kString, kBool, kUint32, kStringArray, kInt32Array, kFloat32Array, kUint8Array };

Want WantedType(absl::string_view key) {
  static constexpr struct {
    absl::string_view key;
    Want want;
  } kKeys[] = {
      {"tokenizer.ggml.model", Want::kString},
      {"tokenizer.ggml.pre", Want::kString},
      {"tokenizer.chat_template", Want::kString},
      {"tokenizer.huggingface.json", Want::kString},
      {"tokenizer.rwkv.world", Want::kString},
      {"tokenizer.ggml.tokens", Want::kStringArray},
      {"tokenizer.ggml.merges", Want::kStringArray},
      {"tokenizer.ggml.token_type", Want::kInt32Array},
      {"tokenizer.ggml.scores", Want::kFloat32Array},
      {"tokenizer.ggml.precompiled_charsmap", Want::kUint8Array},
      {"tokenizer.ggml.token_type_count", Want::kUint32},
      {"tokenizer.ggml.add_bos_token", Want::kBool},
      {"tokenizer.ggml.add_eos_token", Want::kBool},
      {"tokenizer.ggml.add_sep_token", Want::kBool},
      {"tokenizer.ggml.add_space_prefix", Want::kBool},
      {"tokenizer.ggml.remove_extra_whitespaces", Want::kBool},
      {"tokenizer.ggml.normalizer.lowercase", Want::kBool},
      {"tokenizer.ggml.normalizer.strip_accents", Want::kBool},
  };
  for (const auto& k : kKeys) {
    if (k.key == key) return k.want;
  }
  if (absl::StartsWith(key, "tokenizer.chat_template.")) return Want::kString;
  if (absl::StartsWith(key, "tokenizer.ggml.") && absl::EndsWith(key, "_token_id")) {
    return Want::kUint32;
  }
  return Want::kInferred;
}

bool IsNumber(const json& v) { return v.is_number() || v.is_null(); }  // null: NaN or infinity

// A JSON number (null standing for a non-finite float) as a double.
double AsDouble(const json& v) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (v.is_number_unsigned()) return static_cast<double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<double>(v.get<int64_t>());
  return v.get<double>();
}

void Put(std::string* out, uint64_t v, int width) {
  uint8_t b[8];
  format::EncodeFixed64(b, v);
  out->append(reinterpret_cast<const char*>(b), static_cast<size_t>(width));
}

void AddEncodedArray(absl::string_view key, GgufValueType type, uint64_t count,
                     const std::string& encoded, GgufMetadata* metadata) {
  metadata->AddArray(key, type, count,
                     std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(encoded.data()),
                                              encoded.size()));
}

// A scalar in the type its JSON value has.
bool AddInferredScalar(absl::string_view key, const json& v, GgufMetadata* metadata) {
  if (v.is_string()) {
    metadata->AddString(key, v.get_ref<const std::string&>());
  } else if (v.is_boolean()) {
    metadata->AddBool(key, v.get<bool>());
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= UINT32_MAX) {
      metadata->AddUint32(key, static_cast<uint32_t>(u));
    } else {
      metadata->AddUint64(key, u);
    }
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= INT32_MIN && i <= INT32_MAX) {
      metadata->AddInt32(key, static_cast<int32_t>(i));
    } else {
      metadata->AddInt64(key, i);
    }
  } else if (IsNumber(v)) {
    metadata->AddFloat64(key, AsDouble(v));
  } else {
    return false;
  }
  return true;
}

// An array in the type its elements have: strings, bools, integers
// (uint32, uint64, int32 or int64 by range) or numbers (float64).
bool AddInferredArray(absl::string_view key, const json& a, GgufMetadata* metadata) {
  bool strings = true, bools = true, integers = true, numbers = true, negative = false;
  uint64_t max_unsigned = 0;
  int64_t min_signed = 0;
  for (const json& v : a) {
    strings = strings && v.is_string();
    bools = bools && v.is_boolean();
    integers = integers && v.is_number_integer();
    numbers = numbers && IsNumber(v);
    if (v.is_number_unsigned()) {
      max_unsigned = std::max(max_unsigned, v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      negative = true;
      min_signed = std::min(min_signed, v.get<int64_t>());
    }
  }
  std::string encoded;
  if (strings) {  // also the empty array
    for (const json& v : a) {
      const std::string& s = v.get_ref<const std::string&>();
      Put(&encoded, s.size(), 8);
      encoded.append(s);
    }
    AddEncodedArray(key, GgufValueType::kString, a.size(), encoded, metadata);
  } else if (bools) {
    for (const json& v : a) encoded.push_back(v.get<bool>() ? 1 : 0);
    AddEncodedArray(key, GgufValueType::kBool, a.size(), encoded, metadata);
  } else if (integers && !negative) {
    const bool wide = max_unsigned > UINT32_MAX;
    for (const json& v : a) Put(&encoded, v.get<uint64_t>(), wide ? 8 : 4);
    AddEncodedArray(key, wide ? GgufValueType::kUint64 : GgufValueType::kUint32, a.size(), encoded,
                    metadata);
  } else if (integers) {
    const bool wide = min_signed < INT32_MIN || max_unsigned > INT32_MAX;
    if (max_unsigned > static_cast<uint64_t>(INT64_MAX)) return false;
    for (const json& v : a) {
      const int64_t i =
          v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
      Put(&encoded, static_cast<uint64_t>(i), wide ? 8 : 4);
    }
    AddEncodedArray(key, wide ? GgufValueType::kInt64 : GgufValueType::kInt32, a.size(), encoded,
                    metadata);
  } else if (numbers) {
    for (const json& v : a) Put(&encoded, std::bit_cast<uint64_t>(AsDouble(v)), 8);
    AddEncodedArray(key, GgufValueType::kFloat64, a.size(), encoded, metadata);
  } else {
    return false;
  }
  return true;
}

// The key in its wanted type; false when the value does not fit it.
bool AddWanted(absl::string_view key, Want want, const json& v, GgufMetadata* metadata) {
  std::string encoded;
  switch (want) {
    case Want::kInferred:
      return false;
    case Want::kString:
      if (!v.is_string()) return false;
      metadata->AddString(key, v.get_ref<const std::string&>());
      return true;
    case Want::kBool:
      if (!v.is_boolean()) return false;
      metadata->AddBool(key, v.get<bool>());
      return true;
    case Want::kUint32:
      if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) return false;
      metadata->AddUint32(key, static_cast<uint32_t>(v.get<uint64_t>()));
      return true;
    case Want::kStringArray:
      if (!v.is_array()) return false;
      for (const json& e : v) {
        if (!e.is_string()) return false;
      }
      return AddInferredArray(key, v, metadata);
    case Want::kInt32Array:
      if (!v.is_array()) return false;
      for (const json& e : v) {
        if (!e.is_number_integer()) return false;
        const int64_t i = e.is_number_unsigned() && e.get<uint64_t>() > INT32_MAX
                              ? int64_t{INT32_MAX} + 1
                              : e.get<int64_t>();
        if (i < INT32_MIN || i > INT32_MAX) return false;
        Put(&encoded, static_cast<uint32_t>(static_cast<int32_t>(i)), 4);
      }
      AddEncodedArray(key, GgufValueType::kInt32, v.size(), encoded, metadata);
      return true;
    case Want::kFloat32Array:
      if (!v.is_array()) return false;
      for (const json& e : v) {
        if (!IsNumber(e)) return false;
        // A float32 written in its shortest form parses back to the same float.
        Put(&encoded, std::bit_cast<uint32_t>(static_cast<float>(AsDouble(e))), 4);
      }
      AddEncodedArray(key, GgufValueType::kFloat32, v.size(), encoded, metadata);
      return true;
    case Want::kUint8Array:
      if (!v.is_array()) return false;
      for (const json& e : v) {
        if (!e.is_number_unsigned() || e.get<uint64_t>() > 255) return false;
        encoded.push_back(static_cast<char>(e.get<uint64_t>()));
      }
      AddEncodedArray(key, GgufValueType::kUint8, v.size(), encoded, metadata);
      return true;
  }
  return false;
}

}  // namespace

absl::Status AddTokenizerKeysFromGgufJson(absl::string_view text, absl::string_view source,
                                          GgufMetadata* metadata) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) {
    return absl::DataLossError(
        absl::StrCat(source, ": the GGUF tokenizer metadata is not a JSON object"));
  }
  for (const auto& [key, value] : root.items()) {
    if (AddWanted(key, WantedType(key), value, metadata)) continue;
    const bool added =
        value.is_array() ? AddInferredArray(key, value, metadata) : AddInferredScalar(key, value, metadata);
    if (!added) {
      return absl::DataLossError(absl::StrCat(source, ": tokenizer key '", key,
                                              "' holds a value GGUF metadata cannot (",
                                              value.type_name(), " of mixed or nested values)"));
    }
  }
  return absl::OkStatus();
}

void AddTokenizerKeysFromVocabulary(const runtime::Vocabulary& vocab, GgufMetadata* metadata) {
  const bool spm = vocab.model == runtime::TokenizerModel::kSpm;
  metadata->AddString("tokenizer.ggml.model", spm ? "llama" : "gpt2");
  metadata->AddString("tokenizer.ggml.pre", vocab.pre);
  metadata->AddStringArray("tokenizer.ggml.tokens", vocab.tokens);
  if (!vocab.scores.empty()) metadata->AddFloat32Array("tokenizer.ggml.scores", vocab.scores);
  std::vector<int32_t> types(vocab.tokens.size(), static_cast<int32_t>(runtime::TokenType::kNormal));
  for (size_t i = 0; i < vocab.types.size() && i < types.size(); ++i) {
    types[i] = static_cast<int32_t>(vocab.types[i]);
  }
  metadata->AddInt32Array("tokenizer.ggml.token_type", types);
  if (!vocab.merges.empty()) metadata->AddStringArray("tokenizer.ggml.merges", vocab.merges);
  for (const auto& [key, id] : runtime::SpecialTokenIds(vocab)) {
    if (id >= 0) metadata->AddUint32(key, static_cast<uint32_t>(id));
  }
  metadata->AddBool("tokenizer.ggml.add_bos_token", vocab.add_bos);
  metadata->AddBool("tokenizer.ggml.add_eos_token", vocab.add_eos);
  if (spm) metadata->AddBool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
  if (!vocab.chat_template.empty()) {
    metadata->AddString("tokenizer.chat_template", vocab.chat_template);
  }
}

}  // namespace zcpack::exporter::internal
