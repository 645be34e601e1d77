// VocabularyFromGgufJson(): the GGUF tokenizer.* keys, as the converter
// carries them (one JSON object, converter/gguf.h GgufTokenizerBlob), into a
// Vocabulary with llama.cpp's defaults for what is absent.
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tokenizer_internal.h"
#include "tokenizer_pretokenizer.h"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/tokenizer.h"
#include "zcpack/status_macros.h"

namespace zcpack::runtime {
namespace {

using Json = nlohmann::json;

const char* JsonTypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    default: return "a value of unknown type";
  }
}

class Reader {
 public:
  Reader(const Json& root, absl::string_view source) : root_(root), source_(source) {}

  absl::Status Bad(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", key, " ", what));
  }

  const Json* Find(absl::string_view key) const {
    auto it = root_.find(std::string(key));
    return it == root_.end() ? nullptr : &*it;
  }

  // A string scalar; `fallback` when absent.
  absl::StatusOr<std::string> String(absl::string_view key, std::string fallback) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) return Bad(key, absl::StrCat("is ", JsonTypeName(*value), ", expected a string"));
    return value->get<std::string>();
  }

  absl::StatusOr<bool> Bool(absl::string_view key, bool fallback) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) return Bad(key, absl::StrCat("is ", JsonTypeName(*value), ", expected true or false"));
    return value->get<bool>();
  }

  // A token id (an unsigned integer below the vocabulary size); `fallback`
  // when absent.
  absl::StatusOr<int32_t> Id(absl::string_view key, int32_t fallback, size_t vocab_size) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer()) {
      return Bad(key, absl::StrCat("is ", JsonTypeName(*value), ", expected a token id"));
    }
    // "No token": llama.cpp's LLAMA_TOKEN_NULL (-1), which its own converter
    // writes as the uint32 4294967295 (e.g. padding_token_id of a llama2.c
    // conversion). llama.cpp then keeps its default; so does this.
    if ((value->is_number_unsigned() && value->get<uint64_t>() == 0xffffffffu) ||
        (!value->is_number_unsigned() && value->get<int64_t>() == -1)) {
      return fallback;
    }
    if (value->is_number_unsigned() ? value->get<uint64_t>() >= vocab_size
                                    : value->get<int64_t>() < 0 ||
                                          static_cast<uint64_t>(value->get<int64_t>()) >= vocab_size) {
      return Bad(key, absl::StrCat("is ", value->dump(), ", outside the vocabulary of ", vocab_size,
                                   " tokens"));
    }
    return static_cast<int32_t>(value->get<int64_t>());
  }

  // An array, or nullptr when absent.
  absl::StatusOr<const Json*> Array(absl::string_view key, bool required) const {
    const Json* value = Find(key);
    if (value == nullptr) {
      if (required) return Bad(key, "is missing");
      return nullptr;
    }
    if (!value->is_array()) return Bad(key, absl::StrCat("is ", JsonTypeName(*value), ", expected an array"));
    return value;
  }

  absl::StatusOr<std::vector<std::string>> Strings(absl::string_view key, bool required) const {
    ZCPACK_ASSIGN_OR_RETURN(const Json* array, Array(key, required));
    std::vector<std::string> out;
    if (array == nullptr) return out;
    out.reserve(array->size());
    for (size_t i = 0; i < array->size(); ++i) {
      const Json& element = (*array)[i];
      if (!element.is_string()) {
        return Bad(absl::StrCat(key, "[", i, "]"), absl::StrCat("is ", JsonTypeName(element), ", expected a string"));
      }
      out.push_back(element.get<std::string>());
    }
    return out;
  }

 private:
  const Json& root_;
  absl::string_view source_;
};

}  // namespace

absl::StatusOr<Vocabulary> VocabularyFromGgufJson(absl::string_view json,
                                                  absl::string_view source) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    // nlohmann's message says where and why (ill-formed UTF-8 included).
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the tokenizer metadata is not valid JSON: ", format::EscapeInvalidUtf8(e.what())));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the tokenizer metadata is ", JsonTypeName(root), ", expected a JSON object"));
  }
  const Reader reader(root, source);
  Vocabulary vocab;

  if (reader.Find("tokenizer.ggml.model") == nullptr) {
    return reader.Bad("tokenizer.ggml.model", "is missing");
  }
  ZCPACK_ASSIGN_OR_RETURN(const std::string model, reader.String("tokenizer.ggml.model", ""));
  if (model == "llama") {
    vocab.model = TokenizerModel::kSpm;
  } else if (model == "gpt2") {
    vocab.model = TokenizerModel::kBpe;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        source, ": tokenizer.ggml.model '", format::EscapeInvalidUtf8(model),
        "' is not supported (zcpack tokenizes 'llama' (SentencePiece BPE) and 'gpt2' (byte-level BPE))"));
  }
  const bool bpe = vocab.model == TokenizerModel::kBpe;

  ZCPACK_ASSIGN_OR_RETURN(vocab.tokens, reader.Strings("tokenizer.ggml.tokens", true));
  const size_t n = vocab.tokens.size();
  if (n == 0) return reader.Bad("tokenizer.ggml.tokens", "is empty");

  // llama.cpp: a BPE vocabulary without a pre-tokenizer name gets "default".
  ZCPACK_ASSIGN_OR_RETURN(vocab.pre, reader.String("tokenizer.ggml.pre", "default"));
  if (vocab.pre.empty()) vocab.pre = "default";
  const internal::PreTokenizerRules* rules = nullptr;
  if (bpe) {
    rules = internal::FindPreTokenizerRules(vocab.pre);
    if (rules == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(source, ": tokenizer.ggml.pre '", format::EscapeInvalidUtf8(vocab.pre),
                       "' is not a pre-tokenizer zcpack knows (known: ",
                       internal::KnownPreTokenizerNames(), ")"));
    }
  }

  ZCPACK_ASSIGN_OR_RETURN(const Json* scores, reader.Array("tokenizer.ggml.scores", false));
  if (scores != nullptr) {
    if (scores->size() != n) {
      return reader.Bad("tokenizer.ggml.scores",
                        absl::StrCat("has ", scores->size(), " entries, tokenizer.ggml.tokens ", n));
    }
    vocab.scores.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const Json& s = (*scores)[i];
      if (s.is_null()) {
        // The converter writes NaN and infinities as null: such a token never
        // wins a merge.
        vocab.scores.push_back(-std::numeric_limits<float>::infinity());
      } else if (s.is_number()) {
        vocab.scores.push_back(s.get<float>());
      } else {
        return reader.Bad(absl::StrCat("tokenizer.ggml.scores[", i, "]"),
                          absl::StrCat("is ", JsonTypeName(s), ", expected a number"));
      }
    }
  }

  ZCPACK_ASSIGN_OR_RETURN(const Json* types, reader.Array("tokenizer.ggml.token_type", false));
  if (types != nullptr) {
    if (types->size() != n) {
      return reader.Bad("tokenizer.ggml.token_type",
                        absl::StrCat("has ", types->size(), " entries, tokenizer.ggml.tokens ", n));
    }
    vocab.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const Json& t = (*types)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > 6) {
        return reader.Bad(absl::StrCat("tokenizer.ggml.token_type[", i, "]"),
                          absl::StrCat("is ", t.dump(), ", expected a token type from 0 to 6"));
      }
      vocab.types.push_back(static_cast<TokenType>(t.get<int32_t>()));
    }
  }

  if (bpe) {
    ZCPACK_ASSIGN_OR_RETURN(vocab.merges, reader.Strings("tokenizer.ggml.merges", true));
  }

  // Special tokens: llama.cpp's defaults per model, used only when in range.
  const auto in_range = [n](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n ? id : -1; };
  const int32_t default_bos = in_range(bpe ? 11 : 1);
  const int32_t default_eos = in_range(bpe ? 11 : 2);
  const int32_t default_unk = bpe ? -1 : in_range(0);
  ZCPACK_ASSIGN_OR_RETURN(vocab.bos_id, reader.Id("tokenizer.ggml.bos_token_id", default_bos, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.eos_id, reader.Id("tokenizer.ggml.eos_token_id", default_eos, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.eot_id, reader.Id("tokenizer.ggml.eot_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.eom_id, reader.Id("tokenizer.ggml.eom_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.unk_id, reader.Id("tokenizer.ggml.unknown_token_id", default_unk, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.pad_id, reader.Id("tokenizer.ggml.padding_token_id", -1, n));
  // The fill-in-the-middle ids, with llama.cpp's older key names as fallbacks.
  ZCPACK_ASSIGN_OR_RETURN(const int32_t prefix, reader.Id("tokenizer.ggml.prefix_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(const int32_t suffix, reader.Id("tokenizer.ggml.suffix_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(const int32_t middle, reader.Id("tokenizer.ggml.middle_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_pre_id, reader.Id("tokenizer.ggml.fim_pre_token_id", prefix, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_suf_id, reader.Id("tokenizer.ggml.fim_suf_token_id", suffix, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_mid_id, reader.Id("tokenizer.ggml.fim_mid_token_id", middle, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_pad_id, reader.Id("tokenizer.ggml.fim_pad_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_rep_id, reader.Id("tokenizer.ggml.fim_rep_token_id", -1, n));
  ZCPACK_ASSIGN_OR_RETURN(vocab.fim_sep_id, reader.Id("tokenizer.ggml.fim_sep_token_id", -1, n));

  // SPM adds BOS by default; BPE only for the pre-tokenizers llama.cpp says.
  ZCPACK_ASSIGN_OR_RETURN(vocab.add_bos,
                          reader.Bool("tokenizer.ggml.add_bos_token", bpe ? rules->add_bos : true));
  ZCPACK_ASSIGN_OR_RETURN(vocab.add_eos, reader.Bool("tokenizer.ggml.add_eos_token", false));
  ZCPACK_ASSIGN_OR_RETURN(vocab.add_space_prefix,
                          reader.Bool("tokenizer.ggml.add_space_prefix", !bpe));
  ZCPACK_ASSIGN_OR_RETURN(vocab.chat_template, reader.String("tokenizer.chat_template", ""));

  ZCPACK_RETURN_IF_ERROR(internal::CheckVocabulary(vocab, source));
  return vocab;
}

}  // namespace zcpack::runtime
