#include "tests/runtime/hf_tokenizer_files.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "nlohmann/json.hpp"
#include "zcpack/runtime/sentencepiece_model.pb.h"

namespace zcpack::testing {
namespace {

// Keys sorted (std::map): an ordered_json object looks keys up linearly,
// which is quadratic over a 128k-token vocabulary.
using Json = nlohmann::json;
using runtime::TokenizerModel;
using runtime::TokenType;
using runtime::Vocabulary;

constexpr char kSpmSpace[] = "\xe2\x96\x81";

// The Split regexes Hugging Face's tokenizer.json files carry.
constexpr char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "hf_tokenizer_files: %s\n", what.c_str());
  std::abort();
}

TokenType TypeOf(const Vocabulary& v, size_t id) {
  return v.types.empty() ? TokenType::kNormal : v.types[id];
}

bool IsBaseType(TokenType t) { return t == TokenType::kNormal || t == TokenType::kByte; }

Json SplitStep(const char* regex) {
  return Json{{"type", "Split"},
              {"pattern", {{"Regex", regex}}},
              {"behavior", "Isolated"},
              {"invert", false}};
}

Json ByteLevelStep(bool use_regex) {
  return Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

Json Template(const Vocabulary& v) {
  const std::string& bos = v.tokens[v.bos_id];
  Json special = Json::object();
  special[bos] = {{"id", bos}, {"ids", {v.bos_id}}, {"tokens", {bos}}};
  return Json{{"type", "TemplateProcessing"},
              {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
              {"pair",
               {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
                {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
              {"special_tokens", special}};
}

Json MergeJson(const std::string& left, const std::string& right, bool pair) {
  if (pair) return Json::array({left, right});
  return left + " " + right;
}

// Merges of a SentencePiece BPE vocabulary, as transformers derives them.
std::vector<std::pair<int32_t, int32_t>> SpmMerges(const Vocabulary& v) {
  absl::flat_hash_map<std::string, int32_t> ids;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (TypeOf(v, id) == TokenType::kNormal) ids.emplace(v.tokens[id], static_cast<int32_t>(id));
  }
  struct Merge {
    float score;
    int32_t result, left, right;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (TypeOf(v, id) != TokenType::kNormal) continue;
    const std::string& t = v.tokens[id];
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xc0) == 0x80) continue;  // inside a code point
      const auto l = ids.find(t.substr(0, cut));
      const auto r = ids.find(t.substr(cut));
      if (l == ids.end() || r == ids.end()) continue;
      merges.push_back({v.scores[id], static_cast<int32_t>(id), l->second, r->second});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.result, a.left, a.right) < std::tie(b.result, b.left, b.right);
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(m.left, m.right);
  return out;
}

}  // namespace

std::string HfTokenizerJson(const Vocabulary& v, const HfJsonStyle& style) {
  const size_t n = v.tokens.size();
  Json root = Json::object();
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  Json added = Json::array();
  Json vocab = Json::object();
  Json merges = Json::array();
  Json model = Json::object();
  if (v.model == TokenizerModel::kBpe) {
    for (size_t id = 0; id < n; ++id) {
      const TokenType t = TypeOf(v, id);
      if (t == TokenType::kNormal) {
        vocab[v.tokens[id]] = id;
      } else {
        added.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", t == TokenType::kUserDefined},
                         {"special", t != TokenType::kUserDefined}});
      }
    }
    for (const std::string& m : v.merges) {
      const size_t space = m.find(' ');
      merges.push_back(MergeJson(m.substr(0, space), m.substr(space + 1), style.pair_merges));
    }
    root["normalizer"] = nullptr;
    if (v.pre == "llama-bpe") {
      root["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {SplitStep(kLlama3Regex), ByteLevelStep(false)}}};
    } else if (v.pre == "qwen2") {
      root["normalizer"] = {{"type", "NFC"}};
      root["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {SplitStep(kQwen2Regex), ByteLevelStep(false)}}};
    } else if (v.pre == "gpt-2") {
      root["pre_tokenizer"] = ByteLevelStep(true);
    } else {
      Die("no Hugging Face pre-tokenizer for '" + v.pre + "'");
    }
    if (v.add_bos && v.bos_id >= 0) {
      root["post_processor"] = {{"type", "Sequence"}, {"processors", {ByteLevelStep(true), Template(v)}}};
    } else {
      root["post_processor"] = ByteLevelStep(true);
    }
    root["decoder"] = ByteLevelStep(true);
    model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
             {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
             {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", v.pre == "llama-bpe"}};
  } else {
    size_t base = 0;
    for (size_t id = 0; id < n; ++id) {
      if (IsBaseType(TypeOf(v, id))) base = id + 1;
    }
    for (size_t id = 0; id < n; ++id) {
      const TokenType t = TypeOf(v, id);
      if (id < base) vocab[v.tokens[id]] = id;
      if (!IsBaseType(t)) {
        added.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", t != TokenType::kUserDefined}});
      }
    }
    for (const auto& [l, r] : SpmMerges(v)) merges.push_back(MergeJson(v.tokens[l], v.tokens[r], style.pair_merges));
    if (style.metaspace) {
      root["normalizer"] = nullptr;
      root["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpmSpace},
                               {"prepend_scheme", v.add_space_prefix ? "first" : "never"}, {"split", false}};
    } else {
      Json steps = Json::array();
      if (v.add_space_prefix) steps.push_back({{"type", "Prepend"}, {"prepend", kSpmSpace}});
      steps.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpmSpace}});
      root["normalizer"] = {{"type", "Sequence"}, {"normalizers", steps}};
      root["pre_tokenizer"] = nullptr;
    }
    if (v.add_bos && v.bos_id >= 0) {
      root["post_processor"] = Template(v);
    } else {
      root["post_processor"] = nullptr;
    }
    root["decoder"] = {{"type", "Sequence"},
                       {"decoders",
                        {{{"type", "Replace"}, {"pattern", {{"String", kSpmSpace}}}, {"content", " "}},
                         {{"type", "ByteFallback"}},
                         {{"type", "Fuse"}},
                         {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
    model = {{"type", "BPE"}, {"dropout", nullptr},
             {"unk_token", v.unk_id >= 0 ? Json(v.tokens[v.unk_id]) : Json(nullptr)},
             {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
             {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false}};
  }
  root["added_tokens"] = std::move(added);
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);
  root["model"] = std::move(model);
  return root.dump();
}

std::string SentencePieceModel(const Vocabulary& v) {
  namespace spm = runtime::sentencepiece;
  spm::ModelProto proto;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    spm::ModelProto::SentencePiece* p = proto.add_pieces();
    p->set_piece(v.tokens[id]);
    p->set_score(v.scores.empty() ? 0.0f : v.scores[id]);
    p->set_type(static_cast<int32_t>(TypeOf(v, id)));
  }
  spm::TrainerSpec* trainer = proto.mutable_trainer_spec();
  trainer->set_model_type(spm::MODEL_TYPE_BPE);
  trainer->set_vocab_size(static_cast<int32_t>(v.tokens.size()));
  trainer->set_byte_fallback(true);
  trainer->set_unk_id(v.unk_id);
  trainer->set_bos_id(v.bos_id);
  trainer->set_eos_id(v.eos_id);
  trainer->set_pad_id(v.pad_id);
  spm::NormalizerSpec* normalizer = proto.mutable_normalizer_spec();
  normalizer->set_name("identity");
  normalizer->set_add_dummy_prefix(v.add_space_prefix);
  normalizer->set_remove_extra_whitespaces(false);
  return proto.SerializeAsString();
}

}  // namespace zcpack::testing
