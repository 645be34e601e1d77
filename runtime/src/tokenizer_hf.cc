// Vocabularies from the Hugging Face files a model folder carries:
// tokenizer.json (the `tokenizers` library's serialisation) and
// tokenizer.model (SentencePiece's ModelProto). Both are filled in llama.cpp's
// terms, as its converter (convert_hf_to_gguf.py with gguf-py's vocab.py)
// writes them to GGUF, so that a Tokenizer built from either gives the ids
// llama.cpp gives for the GGUF made from the same folder.
//
// tokenizer.json, model.type "BPE", in one of two shapes:
//   - byte-level (llama 3, qwen2, gpt-2): a ByteLevel pre-tokenizer, alone
//     (its own GPT-2 regex) or after Split steps. The regexes name the
//     pre-tokenizer ("llama-bpe", "qwen2", "gpt-2"); others are refused with
//     the regex in the message. Model kBpe, merges in rank order.
//   - SentencePiece-style with byte_fallback (llama 2, phi-3): spaces become
//     U+2581 by the normalizer (Replace, with Prepend for the leading space)
//     or by a Metaspace pre-tokenizer that does not split. Model kSpm.
//     llama.cpp's converter (LlamaHfVocab) gives every piece the score
//     -1000, which loses the merge order its SPM algorithm needs; here a
//     piece's score is minus the rank of the first merge that makes it, so
//     pieces are merged in the file's order, as SentencePiece's own scores
//     (from which the merges were derived) would merge them.
// Token types follow the converter: added tokens are kControl when special
// (or when they look special: "<|...|>", "<pad>", ...), else kUserDefined;
// model.unk_token is kUnknown; "<0xXX>" pieces of a SentencePiece-style
// model are kByte; the rest kNormal.
//
// Status codes: InvalidArgument for input that is malformed (not JSON, a
// field of the wrong kind, ids that are not dense, a merge naming a missing
// token, a ModelProto that does not parse); Unimplemented for well-formed
// input of a kind zcpack does not read (WordPiece, Unigram, an unknown
// normalizer or pre-tokenizer). Every message names the source and the JSON
// path or ModelProto field.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/sentencepiece_model.pb.h"
#include "zcpack/runtime/tokenizer.h"
#include "zcpack/status_macros.h"

namespace zcpack::runtime {
namespace {

using Json = nlohmann::json;

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space.
constexpr absl::string_view kSpmSpace = "\xe2\x96\x81";
// Bounds on counts read from a file, far above any real vocabulary (the
// largest have a few hundred thousand tokens and merges); every id must fit
// an int32.
constexpr size_t kMaxTokens = size_t{1} << 24;
constexpr size_t kMaxMerges = size_t{1} << 24;

// Split regexes of the pre-tokenizers zcpack knows, as Hugging Face writes
// them in tokenizer.json and as llama.cpp's llama-vocab.cpp adapts them
// (case-insensitive contractions spelled out). gpt-2's is the one the
// ByteLevel pre-tokenizer applies itself when use_regex is true.
struct KnownPreTokenizer {
  absl::string_view name;
  absl::string_view regex;
};
constexpr absl::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr KnownPreTokenizer kKnownPreTokenizers[] = {
    {"llama-bpe",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    {"llama-bpe",
     R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    {"qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    {"qwen2",
     R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    {"gpt-2", kGpt2Regex},
    {"gpt-2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))"},
};

// Texts of special added tokens that are BOS / EOS when the file does not
// say (no TemplateProcessing): the names the model families zcpack reads
// use, most specific first.
constexpr absl::string_view kBosNames[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"};
constexpr absl::string_view kEosNames[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"};

// Text for a message: control characters escaped, UTF-8 kept, long text cut.
std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 160;
  const bool cut = text.size() > kMaxShown;
  // C escapes first (they leave bytes >= 0x80 alone), then \xNN for bytes
  // that are not UTF-8, so that a message is always text.
  std::string shown = format::EscapeInvalidUtf8(absl::Utf8SafeCHexEscape(text.substr(0, kMaxShown)));
  return absl::StrCat("\"", shown, cut ? "\"..." : "\"");
}

// llama.cpp's converter (does_token_look_special): added tokens that some
// models mark as not special but that act as control tokens.
bool LooksSpecial(absl::string_view t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (absl::StartsWith(t, "<|") && absl::EndsWith(t, "|>")) return true;
  if (absl::StartsWith(t, "<\xef\xbd\x9c") && absl::EndsWith(t, "\xef\xbd\x9c>")) return true;
  return absl::StartsWith(t, "<unused") && absl::EndsWith(t, ">");
}

// "<0xXX>" with two hex digits: a SentencePiece byte piece.
bool IsBytePiece(absl::string_view t) {
  return t.size() == 6 && absl::StartsWith(t, "<0x") && t[5] == '>' && absl::ascii_isxdigit(t[3]) &&
         absl::ascii_isxdigit(t[4]);
}

// ---- tokenizer.json ----------------------------------------------------------

// Reads one tokenizer.json DOM; every failure goes through Invalid() or
// Unsupported(), which name the source and the JSON path.
class HfJsonReader {
 public:
  explicit HfJsonReader(absl::string_view source) : source_(source) {}

  absl::Status Invalid(absl::string_view path, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", path, ": ", what));
  }
  absl::Status Unsupported(absl::string_view path, absl::string_view what) const {
    return absl::UnimplementedError(absl::StrCat(source_, ": ", path, ": ", what));
  }

  // Member(): obj[key], or nullptr when it is absent or null. `obj` is an object.
  static const Json* Member(const Json& obj, absl::string_view key) {
    const auto it = obj.find(std::string(key));
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  // Object(): obj[key] must be an object (absent or null: nullptr when
  // `optional`, else an error).
  absl::StatusOr<const Json*> Object(const Json& obj, absl::string_view key, absl::string_view path,
                                     bool optional) const {
    const Json* v = Member(obj, key);
    if (v == nullptr) {
      if (optional) return nullptr;
      return Invalid(path, "is missing");
    }
    if (!v->is_object()) return Invalid(path, "is not an object");
    return v;
  }

  absl::StatusOr<std::string> String(const Json& obj, absl::string_view key, absl::string_view path) const {
    const Json* v = Member(obj, key);
    if (v == nullptr) return Invalid(path, "is missing");
    if (!v->is_string()) return Invalid(path, "is not a string");
    return v->get<std::string>();
  }

  absl::StatusOr<bool> Bool(const Json& obj, absl::string_view key, absl::string_view path,
                            bool fallback) const {
    const Json* v = Member(obj, key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) return Invalid(path, "is not true or false");
    return v->get<bool>();
  }

  // Type(): the "type" string of the component object `v` at `path`.
  absl::StatusOr<std::string> Type(const Json& v, absl::string_view path) const {
    if (!v.is_object()) return Invalid(path, "is not an object");
    return String(v, "type", absl::StrCat(path, ".type"));
  }

  // Id(): a token id, an unsigned integer below `limit`.
  absl::StatusOr<int32_t> Id(const Json& v, absl::string_view path, size_t limit) const {
    if (!v.is_number_unsigned()) return Invalid(path, "is not a non-negative integer");
    const uint64_t id = v.get<uint64_t>();
    if (id >= limit) {
      return Invalid(path, absl::StrCat("id ", id, " is beyond the ", limit,
                                        " tokens of model.vocab and added_tokens (ids must run 0..n-1)"));
    }
    return static_cast<int32_t>(id);
  }

 private:
  std::string source_;
};

struct AddedToken {
  int32_t id = 0;
  bool special = false;
};

// The token list of a tokenizer.json: model.vocab and added_tokens merged by
// id, with the lookups every later step uses.
struct TokenTable {
  std::vector<std::string> tokens;
  absl::flat_hash_map<std::string, int32_t> ids;
  // Added tokens by id, in file order.
  std::vector<AddedToken> added;
  std::vector<bool> in_model_vocab;

  int32_t Find(absl::string_view text) const {
    const auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }
};

absl::StatusOr<TokenTable> ReadTokenTable(const HfJsonReader& r, const Json& model, const Json& root) {
  const Json* vocab = HfJsonReader::Member(model, "vocab");
  if (vocab == nullptr) return r.Invalid("model.vocab", "is missing");
  if (!vocab->is_object()) return r.Invalid("model.vocab", "is not an object of token -> id");
  const Json* added = HfJsonReader::Member(root, "added_tokens");
  if (added != nullptr && !added->is_array()) return r.Invalid("added_tokens", "is not an array");
  const size_t added_count = added == nullptr ? 0 : added->size();
  if (vocab->size() > kMaxTokens || added_count > kMaxTokens - vocab->size()) {
    return r.Invalid("model.vocab", absl::StrCat("holds more than ", kMaxTokens, " tokens with added_tokens"));
  }
  // Dense ids 0..n-1 over both lists fit below this bound; anything above it
  // is refused before a slot is allocated for it.
  const size_t limit = vocab->size() + added_count;

  TokenTable table;
  table.tokens.resize(limit);
  table.in_model_vocab.assign(limit, false);
  std::vector<bool> filled(limit, false);
  for (const auto& [text, id_json] : vocab->items()) {
    const std::string path = absl::StrCat("model.vocab[", Quote(text), "]");
    ZCPACK_ASSIGN_OR_RETURN(const int32_t id, r.Id(id_json, path, limit));
    if (text.empty()) return r.Invalid(path, "is an empty token");
    if (filled[id]) {
      return r.Invalid(path, absl::StrCat("id ", id, " is also ", Quote(table.tokens[id])));
    }
    table.tokens[id] = text;
    filled[id] = true;
    table.in_model_vocab[id] = true;
  }
  std::vector<bool> is_added(limit, false);
  for (size_t i = 0; i < added_count; ++i) {
    const Json& entry = (*added)[i];
    const std::string path = absl::StrCat("added_tokens[", i, "]");
    if (!entry.is_object()) return r.Invalid(path, "is not an object");
    const Json* id_json = HfJsonReader::Member(entry, "id");
    if (id_json == nullptr) return r.Invalid(absl::StrCat(path, ".id"), "is missing");
    ZCPACK_ASSIGN_OR_RETURN(const int32_t id, r.Id(*id_json, absl::StrCat(path, ".id"), limit));
    ZCPACK_ASSIGN_OR_RETURN(std::string content, r.String(entry, "content", absl::StrCat(path, ".content")));
    ZCPACK_ASSIGN_OR_RETURN(const bool special,
                            r.Bool(entry, "special", absl::StrCat(path, ".special"), false));
    if (content.empty()) return r.Invalid(absl::StrCat(path, ".content"), "is empty");
    if (is_added[id]) return r.Invalid(absl::StrCat(path, ".id"), absl::StrCat("id ", id, " is added twice"));
    if (filled[id] && table.tokens[id] != content) {
      return r.Invalid(path, absl::StrCat("id ", id, " is ", Quote(content), " here but ",
                                          Quote(table.tokens[id]), " in model.vocab"));
    }
    table.tokens[id] = std::move(content);
    filled[id] = true;
    is_added[id] = true;
    table.added.push_back({id, special});
  }
  size_t n = 0;
  while (n < limit && filled[n]) ++n;
  for (size_t id = n; id < limit; ++id) {
    if (filled[id]) {
      return r.Invalid("model.vocab", absl::StrCat("no token has id ", n, " but ", Quote(table.tokens[id]),
                                                   " has id ", id, " (ids must run 0..n-1)"));
    }
  }
  if (n == 0) return r.Invalid("model.vocab", "is empty");
  table.tokens.resize(n);
  table.in_model_vocab.resize(n);
  table.ids.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    const auto [it, inserted] = table.ids.emplace(table.tokens[id], static_cast<int32_t>(id));
    if (!inserted) {
      return r.Invalid("added_tokens", absl::StrCat("token ", Quote(table.tokens[id]), " has ids ", it->second,
                                                    " and ", id));
    }
  }
  return table;
}

// One merge rule, both parts as the file names them.
struct MergeRule {
  std::string left;
  std::string right;
  int32_t result = -1;
};

// ReadMerges(): model.merges in rank order, either "left right" strings or
// ["left", "right"] pairs (tokenizers 0.20 and later); each part and their
// concatenation must be tokens.
absl::StatusOr<std::vector<MergeRule>> ReadMerges(const HfJsonReader& r, const Json& model,
                                                  const TokenTable& table) {
  const Json* merges = HfJsonReader::Member(model, "merges");
  if (merges == nullptr) return std::vector<MergeRule>{};
  if (!merges->is_array()) return r.Invalid("model.merges", "is not an array");
  if (merges->size() > kMaxMerges) {
    return r.Invalid("model.merges", absl::StrCat("holds more than ", kMaxMerges, " merges"));
  }
  std::vector<MergeRule> out;
  out.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    const std::string path = absl::StrCat("model.merges[", i, "]");
    MergeRule rule;
    if (m.is_string()) {
      const std::string& text = m.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == text.size() ||
          text.find(' ', space + 1) != std::string::npos) {
        return r.Invalid(path, absl::StrCat(Quote(text), " is not \"left right\" (two tokens, one space)"));
      }
      rule.left = text.substr(0, space);
      rule.right = text.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      rule.left = m[0].get<std::string>();
      rule.right = m[1].get<std::string>();
      if (rule.left.empty() || rule.right.empty()) return r.Invalid(path, "names an empty token");
    } else {
      return r.Invalid(path, "is neither \"left right\" nor [\"left\", \"right\"]");
    }
    for (const std::string* part : {&rule.left, &rule.right}) {
      if (table.Find(*part) < 0) {
        return r.Invalid(path, absl::StrCat(Quote(*part), " is not a token"));
      }
    }
    rule.result = table.Find(absl::StrCat(rule.left, rule.right));
    if (rule.result < 0) {
      return r.Invalid(path, absl::StrCat("the merged token ", Quote(absl::StrCat(rule.left, rule.right)),
                                          " is not a token"));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

// Whether component `v` (at `path`) is of `type`, or is a Sequence whose
// `list_key` list holds one of that type.
absl::StatusOr<bool> HasComponent(const HfJsonReader& r, const Json* v, absl::string_view path,
                                  absl::string_view list_key, absl::string_view type) {
  if (v == nullptr) return false;
  ZCPACK_ASSIGN_OR_RETURN(const std::string t, r.Type(*v, path));
  if (t == type) return true;
  if (t != "Sequence") return false;
  const Json* list = HfJsonReader::Member(*v, list_key);
  if (list == nullptr || !list->is_array()) {
    return r.Invalid(absl::StrCat(path, ".", list_key), "is not an array");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string item = absl::StrCat(path, ".", list_key, "[", i, "]");
    ZCPACK_ASSIGN_OR_RETURN(const std::string it, r.Type((*list)[i], item));
    if (it == type) return true;
  }
  return false;
}

// The special tokens and add_bos / add_eos, from post_processor
// (TemplateProcessing: a leading special token is BOS and is added, a
// trailing one is EOS and is added), added_tokens (BOS / EOS by their usual
// names), model.unk_token and padding.
absl::Status ReadSpecialTokens(const HfJsonReader& r, const Json& root, const Json& model,
                               const TokenTable& table, bool default_add_bos, Vocabulary* vocab) {
  std::optional<int32_t> template_bos, template_eos;
  if (const Json* post = HfJsonReader::Member(root, "post_processor"); post != nullptr) {
    ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(*post, "post_processor"));
    std::vector<std::pair<const Json*, std::string>> steps;
    if (type == "Sequence") {
      const Json* list = HfJsonReader::Member(*post, "processors");
      if (list == nullptr || !list->is_array()) return r.Invalid("post_processor.processors", "is not an array");
      for (size_t i = 0; i < list->size(); ++i) {
        steps.emplace_back(&(*list)[i], absl::StrCat("post_processor.processors[", i, "]"));
      }
    } else {
      steps.emplace_back(post, "post_processor");
    }
    // Not a structured binding: the lambda below captures the path, which
    // clang before 16 does not allow for a binding.
    for (const auto& step_and_path : steps) {
      const Json* step = step_and_path.first;
      const std::string& path = step_and_path.second;
      ZCPACK_ASSIGN_OR_RETURN(const std::string step_type, r.Type(*step, path));
      if (step_type == "ByteLevel") continue;
      if (step_type != "TemplateProcessing") {
        return r.Unsupported(absl::StrCat(path, ".type"),
                             absl::StrCat(Quote(step_type),
                                          " is not supported (ByteLevel and TemplateProcessing are)"));
      }
      const Json* single = HfJsonReader::Member(*step, "single");
      if (single == nullptr || !single->is_array()) {
        return r.Invalid(absl::StrCat(path, ".single"), "is not an array");
      }
      const Json* specials = HfJsonReader::Member(*step, "special_tokens");
      if (specials != nullptr && !specials->is_object()) {
        return r.Invalid(absl::StrCat(path, ".special_tokens"), "is not an object");
      }
      // A template piece's special token id: special_tokens[name].ids[0],
      // else the token of that name.
      auto resolve = [&](size_t index) -> absl::StatusOr<std::optional<int32_t>> {
        const Json& piece = (*single)[index];
        const std::string piece_path = absl::StrCat(path, ".single[", index, "]");
        if (!piece.is_object()) return r.Invalid(piece_path, "is not an object");
        const Json* special = HfJsonReader::Member(piece, "SpecialToken");
        if (special == nullptr) return std::optional<int32_t>();
        if (!special->is_object()) return r.Invalid(absl::StrCat(piece_path, ".SpecialToken"), "is not an object");
        ZCPACK_ASSIGN_OR_RETURN(const std::string name,
                                r.String(*special, "id", absl::StrCat(piece_path, ".SpecialToken.id")));
        const Json* entry = specials == nullptr ? nullptr : HfJsonReader::Member(*specials, name);
        if (entry != nullptr) {
          const std::string entry_path = absl::StrCat(path, ".special_tokens[", Quote(name), "].ids");
          const Json* ids = entry->is_object() ? HfJsonReader::Member(*entry, "ids") : nullptr;
          if (ids == nullptr || !ids->is_array() || ids->size() != 1) {
            return r.Unsupported(entry_path, "is not one token id");
          }
          ZCPACK_ASSIGN_OR_RETURN(const int32_t id,
                                  r.Id((*ids)[0], absl::StrCat(entry_path, "[0]"), table.tokens.size()));
          return std::optional<int32_t>(id);
        }
        const int32_t id = table.Find(name);
        if (id < 0) return r.Invalid(absl::StrCat(piece_path, ".SpecialToken.id"), absl::StrCat(Quote(name), " is not a token"));
        return std::optional<int32_t>(id);
      };
      // As llama.cpp's converter reads a template: only one with more than
      // the sequence itself adds anything.
      if (single->size() > 1) {
        ZCPACK_ASSIGN_OR_RETURN(template_bos, resolve(0));
        ZCPACK_ASSIGN_OR_RETURN(template_eos, resolve(single->size() - 1));
      }
    }
  }

  // Only special added tokens count: phi-3 carries a "</s>" that is not
  // special and is not its EOS.
  auto find_added = [&](absl::Span<const absl::string_view> names) -> int32_t {
    for (absl::string_view name : names) {
      for (const AddedToken& a : table.added) {
        if (table.tokens[a.id] == name && (a.special || LooksSpecial(name))) return a.id;
      }
    }
    return -1;
  };
  vocab->eos_id = template_eos.has_value() ? *template_eos : find_added(kEosNames);
  if (template_bos.has_value()) {
    vocab->bos_id = *template_bos;
  } else {
    vocab->bos_id = find_added(kBosNames);
    // GPT-2 and Qwen2 have one <|endoftext|> for both ends (their
    // config.json says so; tokenizer.json has no BOS of its own).
    if (vocab->bos_id < 0 && vocab->eos_id >= 0 && table.tokens[vocab->eos_id] == "<|endoftext|>") {
      vocab->bos_id = vocab->eos_id;
    }
  }
  // Without a leading special token in a template, llama.cpp's default for
  // the vocabulary holds (its converter writes no add_bos_token then).
  vocab->add_bos = template_bos.has_value() || default_add_bos;
  vocab->add_eos = template_eos.has_value();

  if (const Json* unk = HfJsonReader::Member(model, "unk_token"); unk != nullptr) {
    if (!unk->is_string()) return r.Invalid("model.unk_token", "is not a string");
    vocab->unk_id = table.Find(unk->get_ref<const std::string&>());
    if (vocab->unk_id < 0) {
      return r.Invalid("model.unk_token", absl::StrCat(Quote(unk->get<std::string>()), " is not a token"));
    }
  }
  ZCPACK_ASSIGN_OR_RETURN(const Json* padding, r.Object(root, "padding", "padding", /*optional=*/true));
  if (padding != nullptr) {
    if (const Json* pad = HfJsonReader::Member(*padding, "pad_id"); pad != nullptr) {
      ZCPACK_ASSIGN_OR_RETURN(vocab->pad_id, r.Id(*pad, "padding.pad_id", table.tokens.size()));
    }
  }
  return absl::OkStatus();
}

// The byte-level pre-tokenizer's name, from its Split regexes (and
// ByteLevel's own, when use_regex is on).
absl::StatusOr<std::string> ByteLevelPreTokenizer(const HfJsonReader& r, const Json& pre) {
  std::vector<std::pair<const Json*, std::string>> steps;
  ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(pre, "pre_tokenizer"));
  if (type == "Sequence") {
    const Json* list = HfJsonReader::Member(pre, "pretokenizers");
    if (list == nullptr || !list->is_array()) return r.Invalid("pre_tokenizer.pretokenizers", "is not an array");
    for (size_t i = 0; i < list->size(); ++i) {
      steps.emplace_back(&(*list)[i], absl::StrCat("pre_tokenizer.pretokenizers[", i, "]"));
    }
  } else {
    steps.emplace_back(&pre, "pre_tokenizer");
  }
  std::vector<std::string> regexes;
  bool byte_level_seen = false;
  for (const auto& [step, path] : steps) {
    ZCPACK_ASSIGN_OR_RETURN(const std::string step_type, r.Type(*step, path));
    if (byte_level_seen) {
      return r.Unsupported(path, absl::StrCat(Quote(step_type), " after ByteLevel is not supported"));
    }
    if (step_type == "Split") {
      ZCPACK_ASSIGN_OR_RETURN(const Json* pattern,
                              r.Object(*step, "pattern", absl::StrCat(path, ".pattern"), false));
      const Json* regex = HfJsonReader::Member(*pattern, "Regex");
      if (regex == nullptr || !regex->is_string()) {
        return r.Unsupported(absl::StrCat(path, ".pattern"), "is not {\"Regex\": ...} (a String pattern is not supported)");
      }
      ZCPACK_ASSIGN_OR_RETURN(const std::string behavior,
                              r.String(*step, "behavior", absl::StrCat(path, ".behavior")));
      ZCPACK_ASSIGN_OR_RETURN(const bool invert, r.Bool(*step, "invert", absl::StrCat(path, ".invert"), false));
      if (behavior != "Isolated" || invert) {
        return r.Unsupported(path, absl::StrCat("behavior ", Quote(behavior), invert ? " inverted" : "",
                                                " is not supported (Isolated, not inverted, is)"));
      }
      regexes.push_back(regex->get<std::string>());
    } else if (step_type == "ByteLevel") {
      byte_level_seen = true;
      ZCPACK_ASSIGN_OR_RETURN(const bool prefix,
                              r.Bool(*step, "add_prefix_space", absl::StrCat(path, ".add_prefix_space"), true));
      ZCPACK_ASSIGN_OR_RETURN(const bool use_regex,
                              r.Bool(*step, "use_regex", absl::StrCat(path, ".use_regex"), true));
      if (prefix) {
        return r.Unsupported(absl::StrCat(path, ".add_prefix_space"),
                             "true is not supported (llama.cpp's byte-level tokenizers add no space)");
      }
      if (use_regex) regexes.emplace_back(kGpt2Regex);
    } else {
      return r.Unsupported(absl::StrCat(path, ".type"),
                           absl::StrCat(Quote(step_type), " is not supported in a byte-level pre_tokenizer "
                                                          "(Split and ByteLevel are)"));
    }
  }
  if (regexes.size() != 1) {
    return r.Unsupported("pre_tokenizer",
                         absl::StrCat(regexes.size(), " regexes: zcpack knows the one-regex pre-tokenizers "
                                                      "llama-bpe, qwen2 and gpt-2"));
  }
  for (const KnownPreTokenizer& known : kKnownPreTokenizers) {
    if (regexes[0] == known.regex) return std::string(known.name);
  }
  return r.Unsupported("pre_tokenizer", absl::StrCat("the Split regex ", Quote(regexes[0]),
                                                     " is not one zcpack knows (llama-bpe, qwen2, gpt-2)"));
}

absl::Status ReadByteLevel(const HfJsonReader& r, const Json& root, const Json& model, const TokenTable& table,
                           Vocabulary* vocab) {
  if (const Json* norm = HfJsonReader::Member(root, "normalizer"); norm != nullptr) {
    ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(*norm, "normalizer"));
    // Qwen2's NFC: llama.cpp does not normalise either, so its ids are
    // those of the text as given.
    if (type != "NFC") {
      return r.Unsupported("normalizer.type", absl::StrCat(Quote(type), " is not supported with a byte-level "
                                                                        "pre_tokenizer (none or NFC is)"));
    }
  }
  ZCPACK_ASSIGN_OR_RETURN(vocab->pre, ByteLevelPreTokenizer(r, *HfJsonReader::Member(root, "pre_tokenizer")));
  vocab->model = TokenizerModel::kBpe;
  vocab->add_space_prefix = false;
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<MergeRule> merges, ReadMerges(r, model, table));
  vocab->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // GGUF's "left right" form cannot carry a space inside a part; no
    // byte-level token holds one (the space byte is U+0120).
    if (absl::StrContains(merges[i].left, ' ') || absl::StrContains(merges[i].right, ' ')) {
      return r.Invalid(absl::StrCat("model.merges[", i, "]"), "a part holds a space, which no byte-level token does");
    }
    vocab->merges.push_back(absl::StrCat(merges[i].left, " ", merges[i].right));
  }
  vocab->tokens = table.tokens;
  vocab->types.assign(vocab->tokens.size(), TokenType::kNormal);
  absl::flat_hash_set<std::string> rewritten;
  for (size_t i = 0; i < table.added.size(); ++i) {
    const AddedToken& a = table.added[i];
    std::string& text = vocab->tokens[a.id];
    if (a.special || LooksSpecial(text)) {
      vocab->types[a.id] = TokenType::kControl;
      continue;
    }
    vocab->types[a.id] = TokenType::kUserDefined;
    // As the converter does: user-defined tokens are matched in the raw
    // text, where a space is a space.
    if (!absl::StrContains(text, kSpmSpace)) continue;
    text = absl::StrReplaceAll(text, {{kSpmSpace, " "}});
    if (table.Find(text) >= 0 || !rewritten.insert(text).second) {
      return r.Invalid(absl::StrCat("added_tokens[", i, "].content"),
                       absl::StrCat("with U+2581 read as a space, it is ", Quote(text),
                                    ", which is another token too"));
    }
  }
  return ReadSpecialTokens(r, root, model, table, /*default_add_bos=*/vocab->pre == "llama-bpe", vocab);
}

// Whether `v` is Replace(String " " -> U+2581).
absl::StatusOr<bool> IsSpaceReplace(const HfJsonReader& r, const Json& v, absl::string_view path) {
  ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(v, path));
  if (type != "Replace") return false;
  const Json* pattern = HfJsonReader::Member(v, "pattern");
  const Json* content = HfJsonReader::Member(v, "content");
  if (pattern == nullptr || !pattern->is_object() || content == nullptr || !content->is_string()) {
    return r.Invalid(path, "is a Replace without a pattern object and a content string");
  }
  const Json* text = HfJsonReader::Member(*pattern, "String");
  return text != nullptr && text->is_string() && text->get_ref<const std::string&>() == " " &&
         content->get_ref<const std::string&>() == kSpmSpace;
}

// SentencePiece-style: whether a space is put in front, from the normalizer
// (Prepend U+2581 and Replace " " -> U+2581, or the Replace alone) or a
// Metaspace pre-tokenizer that does not split.
absl::StatusOr<bool> SpmSpacePrefix(const HfJsonReader& r, const Json& root) {
  const Json* norm = HfJsonReader::Member(root, "normalizer");
  const Json* pre = HfJsonReader::Member(root, "pre_tokenizer");
  constexpr absl::string_view kShapes =
      " (zcpack reads byte-level BPE, or SentencePiece-style BPE whose normalizer is Prepend \"\xe2\x96\x81\" "
      "+ Replace \" \" -> \"\xe2\x96\x81\" or whose pre_tokenizer is a Metaspace that does not split)";
  if (norm != nullptr && pre != nullptr) {
    ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(*pre, "pre_tokenizer"));
    return r.Unsupported("pre_tokenizer.type", absl::StrCat(Quote(type), " with a normalizer is not supported", kShapes));
  }
  if (norm != nullptr) {
    ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(*norm, "normalizer"));
    std::vector<std::pair<const Json*, std::string>> steps;
    if (type == "Sequence") {
      const Json* list = HfJsonReader::Member(*norm, "normalizers");
      if (list == nullptr || !list->is_array()) return r.Invalid("normalizer.normalizers", "is not an array");
      for (size_t i = 0; i < list->size(); ++i) {
        steps.emplace_back(&(*list)[i], absl::StrCat("normalizer.normalizers[", i, "]"));
      }
    } else {
      steps.emplace_back(norm, "normalizer");
    }
    bool prepend = false, replace = false;
    for (const auto& [step, path] : steps) {
      ZCPACK_ASSIGN_OR_RETURN(const std::string step_type, r.Type(*step, path));
      ZCPACK_ASSIGN_OR_RETURN(const bool is_replace, IsSpaceReplace(r, *step, path));
      if (is_replace && !replace) {
        replace = true;
        continue;
      }
      if (step_type == "Prepend" && !prepend) {
        const Json* text = HfJsonReader::Member(*step, "prepend");
        if (text != nullptr && text->is_string() && text->get_ref<const std::string&>() == kSpmSpace) {
          prepend = true;
          continue;
        }
      }
      return r.Unsupported(absl::StrCat(path, ".type"), absl::StrCat(Quote(step_type), " is not supported here", kShapes));
    }
    if (!replace) return r.Unsupported("normalizer", absl::StrCat("does not replace spaces by U+2581", kShapes));
    return prepend;
  }
  if (pre == nullptr) {
    return r.Unsupported("pre_tokenizer", absl::StrCat("and normalizer are both absent", kShapes));
  }
  ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.Type(*pre, "pre_tokenizer"));
  if (type != "Metaspace") {
    return r.Unsupported("pre_tokenizer.type", absl::StrCat(Quote(type), " is not supported", kShapes));
  }
  ZCPACK_ASSIGN_OR_RETURN(const std::string replacement, r.String(*pre, "replacement", "pre_tokenizer.replacement"));
  if (replacement != kSpmSpace) {
    return r.Unsupported("pre_tokenizer.replacement", absl::StrCat(Quote(replacement), " is not U+2581"));
  }
  ZCPACK_ASSIGN_OR_RETURN(const bool split, r.Bool(*pre, "split", "pre_tokenizer.split", true));
  if (split) {
    return r.Unsupported("pre_tokenizer.split",
                         "true is not supported (llama.cpp's SentencePiece tokenizer does not split at spaces)");
  }
  if (const Json* scheme = HfJsonReader::Member(*pre, "prepend_scheme"); scheme != nullptr) {
    if (!scheme->is_string()) return r.Invalid("pre_tokenizer.prepend_scheme", "is not a string");
    const std::string& s = scheme->get_ref<const std::string&>();
    if (s == "first" || s == "always") return true;
    if (s == "never") return false;
    return r.Invalid("pre_tokenizer.prepend_scheme", absl::StrCat(Quote(s), " is not first, always or never"));
  }
  return r.Bool(*pre, "add_prefix_space", "pre_tokenizer.add_prefix_space", true);
}

absl::Status ReadSentencePieceStyle(const HfJsonReader& r, const Json& root, const Json& model,
                                    const TokenTable& table, Vocabulary* vocab) {
  ZCPACK_ASSIGN_OR_RETURN(vocab->add_space_prefix, SpmSpacePrefix(r, root));
  ZCPACK_ASSIGN_OR_RETURN(const bool byte_fallback, r.Bool(model, "byte_fallback", "model.byte_fallback", false));
  if (!byte_fallback) {
    return r.Unsupported("model.byte_fallback",
                         "is not true: SentencePiece-style BPE is read only with byte fallback, as llama.cpp "
                         "converts it");
  }
  vocab->model = TokenizerModel::kSpm;
  vocab->pre = "default";
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<MergeRule> merges, ReadMerges(r, model, table));
  const size_t n = table.tokens.size();
  vocab->tokens = table.tokens;
  vocab->types.assign(n, TokenType::kNormal);
  for (size_t id = 0; id < n; ++id) {
    if (table.in_model_vocab[id] && IsBytePiece(table.tokens[id])) vocab->types[id] = TokenType::kByte;
  }
  for (const AddedToken& a : table.added) {
    vocab->types[a.id] =
        a.special || LooksSpecial(table.tokens[a.id]) ? TokenType::kControl : TokenType::kUserDefined;
  }
  ZCPACK_RETURN_IF_ERROR(ReadSpecialTokens(r, root, model, table, /*default_add_bos=*/true, vocab));
  if (vocab->unk_id >= 0) vocab->types[vocab->unk_id] = TokenType::kUnknown;

  // Scores: minus the rank of the first merge that makes a piece, so that
  // llama.cpp's highest-score-first merging follows the file's ranks. Normal
  // pieces no merge makes (single characters) rank after every merge, in id
  // order; the others score 0, as SentencePiece's own special pieces do.
  std::vector<int64_t> first_rank(n, -1);
  for (size_t i = 0; i < merges.size(); ++i) {
    if (first_rank[merges[i].result] < 0) first_rank[merges[i].result] = static_cast<int64_t>(i);
  }
  vocab->scores.assign(n, 0.0f);
  for (size_t id = 0; id < n; ++id) {
    if (vocab->types[id] != TokenType::kNormal) continue;
    const int64_t rank = first_rank[id] >= 0 ? first_rank[id] : static_cast<int64_t>(merges.size() + id);
    vocab->scores[id] = -static_cast<float>(rank);
  }
  return absl::OkStatus();
}

// ---- tokenizer.model ---------------------------------------------------------

namespace spm = ::zcpack::runtime::sentencepiece;

std::optional<TokenType> PieceTokenType(int32_t type) {
  switch (type) {
    case spm::PIECE_TYPE_NORMAL: return TokenType::kNormal;
    case spm::PIECE_TYPE_UNKNOWN: return TokenType::kUnknown;
    case spm::PIECE_TYPE_CONTROL: return TokenType::kControl;
    case spm::PIECE_TYPE_USER_DEFINED: return TokenType::kUserDefined;
    case spm::PIECE_TYPE_UNUSED: return TokenType::kUnused;
    case spm::PIECE_TYPE_BYTE: return TokenType::kByte;
    default: return std::nullopt;
  }
}

}  // namespace

absl::StatusOr<Vocabulary> VocabularyFromHfTokenizerJson(absl::string_view json, absl::string_view source) {
  const HfJsonReader r(source);
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON (", e.what(), ")"));
  }
  if (!root.is_object()) return r.Invalid("(root)", "is not a JSON object");
  ZCPACK_ASSIGN_OR_RETURN(const Json* model, r.Object(root, "model", "model", /*optional=*/false));
  ZCPACK_ASSIGN_OR_RETURN(const std::string type, r.String(*model, "type", "model.type"));
  if (type != "BPE") {
    return r.Unsupported("model.type",
                         absl::StrCat(Quote(type), " is not supported (zcpack reads BPE: byte-level as llama 3, "
                                                   "qwen2 and gpt-2 use it, or SentencePiece-style with byte "
                                                   "fallback as llama 2 and phi-3 use it)"));
  }
  if (const Json* dropout = HfJsonReader::Member(*model, "dropout"); dropout != nullptr) {
    if (!dropout->is_number()) return r.Invalid("model.dropout", "is not a number");
    if (dropout->get<double>() != 0.0) {
      return r.Unsupported("model.dropout", "is set: BPE dropout makes tokenization random");
    }
  }
  for (absl::string_view key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = HfJsonReader::Member(*model, key);
    if (v == nullptr) continue;
    const std::string path = absl::StrCat("model.", key);
    if (!v->is_string()) return r.Invalid(path, "is not a string");
    if (!v->get_ref<const std::string&>().empty()) return r.Unsupported(path, "is set, which llama.cpp has no rule for");
  }
  ZCPACK_ASSIGN_OR_RETURN(const TokenTable table, ReadTokenTable(r, *model, root));

  const Json* pre = HfJsonReader::Member(root, "pre_tokenizer");
  ZCPACK_ASSIGN_OR_RETURN(const bool byte_level_pre,
                          HasComponent(r, pre, "pre_tokenizer", "pretokenizers", "ByteLevel"));
  ZCPACK_ASSIGN_OR_RETURN(const bool byte_level_decoder,
                          HasComponent(r, HfJsonReader::Member(root, "decoder"), "decoder", "decoders", "ByteLevel"));
  Vocabulary vocab;
  if (byte_level_pre) {
    ZCPACK_RETURN_IF_ERROR(ReadByteLevel(r, root, *model, table, &vocab));
  } else if (byte_level_decoder) {
    return r.Unsupported("pre_tokenizer", "has no ByteLevel step although the decoder is ByteLevel");
  } else {
    ZCPACK_RETURN_IF_ERROR(ReadSentencePieceStyle(r, root, *model, table, &vocab));
  }
  return vocab;
}

absl::StatusOr<Vocabulary> VocabularyFromSentencePieceModel(absl::string_view bytes, absl::string_view source) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
  };
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return invalid(absl::StrCat("is ", bytes.size(), " bytes, more than a ModelProto can hold"));
  }
  spm::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return invalid("not a SentencePiece model (its ModelProto does not parse)");
  }
  const spm::TrainerSpec& trainer = proto.trainer_spec();
  if (trainer.model_type() != spm::MODEL_TYPE_BPE) {
    return absl::UnimplementedError(absl::StrCat(
        source, ": trainer_spec.model_type ", trainer.model_type(),
        trainer.model_type() == spm::MODEL_TYPE_UNIGRAM ? " (Unigram)" : "",
        " is not supported: llama.cpp's \"llama\" vocabulary is SentencePiece BPE (model_type 2)"));
  }
  const int n = proto.pieces_size();
  if (n == 0) return invalid("pieces: the model has no pieces");
  if (static_cast<size_t>(n) > kMaxTokens) return invalid(absl::StrCat("pieces: more than ", kMaxTokens));

  Vocabulary vocab;
  vocab.model = TokenizerModel::kSpm;
  vocab.pre = "default";
  vocab.tokens.reserve(n);
  vocab.scores.reserve(n);
  vocab.types.reserve(n);
  absl::flat_hash_map<absl::string_view, int> seen;
  seen.reserve(n);
  for (int id = 0; id < n; ++id) {
    const spm::ModelProto::SentencePiece& p = proto.pieces(id);
    const std::string where = absl::StrCat("pieces[", id, "]");
    if (p.piece().empty()) return invalid(absl::StrCat(where, ".piece is empty"));
    if (!format::IsValidUtf8(p.piece())) {
      return invalid(absl::StrCat(where, ".piece ", Quote(p.piece()), " is not valid UTF-8"));
    }
    if (!std::isfinite(p.score())) return invalid(absl::StrCat(where, ".score is not finite"));
    const std::optional<TokenType> type = PieceTokenType(p.type());
    if (!type.has_value()) {
      return invalid(absl::StrCat(where, ".type ", p.type(), " is not a SentencePiece piece type (1..6)"));
    }
    if (*type == TokenType::kByte && !IsBytePiece(p.piece())) {
      return invalid(absl::StrCat(where, ": BYTE piece ", Quote(p.piece()), " is not <0xXX>"));
    }
    const auto [it, inserted] = seen.emplace(p.piece(), id);
    if (!inserted) {
      return invalid(absl::StrCat(where, ".piece ", Quote(p.piece()), " is also pieces[", it->second, "]"));
    }
    vocab.tokens.push_back(p.piece());
    vocab.scores.push_back(p.score());
    vocab.types.push_back(*type);
  }
  struct SpecialId {
    absl::string_view field;
    int32_t value;
    int32_t* out;
  };
  const SpecialId specials[] = {{"unk_id", trainer.unk_id(), &vocab.unk_id},
                                {"bos_id", trainer.bos_id(), &vocab.bos_id},
                                {"eos_id", trainer.eos_id(), &vocab.eos_id},
                                {"pad_id", trainer.pad_id(), &vocab.pad_id}};
  for (const SpecialId& s : specials) {
    if (s.value < -1 || s.value >= n) {
      return invalid(absl::StrCat("trainer_spec.", s.field, " ", s.value, " is not -1 or an id below ", n));
    }
    *s.out = s.value;
  }
  vocab.add_space_prefix = proto.normalizer_spec().add_dummy_prefix();
  // The file says nothing about adding BOS / EOS; llama.cpp's defaults for
  // an SPM vocabulary hold (BOS when there is one, no EOS).
  vocab.add_bos = vocab.bos_id >= 0;
  vocab.add_eos = false;
  return vocab;
}

}  // namespace zcpack::runtime
