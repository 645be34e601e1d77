// The Hugging Face tokenizer loaders (tokenizer.json, tokenizer.model)
// against the GGUF vocabularies llama.cpp ships: each GGUF vocabulary is
// written out as the Hugging Face file(s) its model family carries and read
// back through the loader; the result must be the Vocabulary llama.cpp's
// converter put in that GGUF, and a Tokenizer made from it must give
// llama.cpp's ids for every case of its .inp/.out pair. Malformed input gets
// its status code and a message naming the JSON path or ModelProto field.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/runtime/hf_tokenizer_files.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/runtime/sentencepiece_model.pb.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The Vocabulary a GGUF vocabulary file holds, read key by key with the
// converter's GGUF parser (independent of the runtime's loaders), with
// llama.cpp's defaults where a key is absent.
Vocabulary GgufVocabulary(const std::string& name) {
  const std::string path = std::string(ZCPACK_VOCAB_DIR) + "/ggml-vocab-" + name + ".gguf";
  const std::string bytes = ReadWhole(path);
  auto gguf = converter::ParseGguf(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), path);
  EXPECT_TRUE(gguf.ok()) << gguf.status();
  Vocabulary v;
  if (!gguf.ok()) return v;
  auto find = [&](const char* key) { return gguf->FindMetadata(key); };
  v.model = *find("tokenizer.ggml.model")->AsString() == "llama" ? TokenizerModel::kSpm : TokenizerModel::kBpe;
  if (const auto* pre = find("tokenizer.ggml.pre")) v.pre = *pre->AsString();
  find("tokenizer.ggml.tokens")->AsArray()->ForEach([&](const converter::GgufElement& e) {
    v.tokens.emplace_back(std::get<absl::string_view>(e));
  });
  if (const auto* scores = find("tokenizer.ggml.scores")) {
    scores->AsArray()->ForEach(
        [&](const converter::GgufElement& e) { v.scores.push_back(static_cast<float>(std::get<double>(e))); });
  }
  find("tokenizer.ggml.token_type")->AsArray()->ForEach([&](const converter::GgufElement& e) {
    v.types.push_back(static_cast<TokenType>(std::get<int64_t>(e)));
  });
  if (const auto* merges = find("tokenizer.ggml.merges")) {
    merges->AsArray()->ForEach(
        [&](const converter::GgufElement& e) { v.merges.emplace_back(std::get<absl::string_view>(e)); });
  }
  auto id = [&](const char* key) {
    const auto* value = find(key);
    return value == nullptr ? -1 : static_cast<int32_t>(*value->AsUnsigned());
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id");
  v.eos_id = id("tokenizer.ggml.eos_token_id");
  v.unk_id = id("tokenizer.ggml.unknown_token_id");
  v.pad_id = id("tokenizer.ggml.padding_token_id");
  // llama.cpp's defaults: SPM adds BOS and a leading space; of the BPE
  // pre-tokenizers here, llama-bpe adds BOS.
  v.add_space_prefix = v.model == TokenizerModel::kSpm;
  v.add_bos = v.model == TokenizerModel::kSpm || v.pre == "llama-bpe";
  if (const auto* add = find("tokenizer.ggml.add_bos_token")) v.add_bos = std::get<bool>(add->data);
  if (const auto* add = find("tokenizer.ggml.add_eos_token")) v.add_eos = std::get<bool>(add->data);
  return v;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// llama.cpp's test-tokenizer-0 cases for a vocabulary: texts separated by
// "\n__ggml_vocab_test__\n" in .inp, a line of ids per text in .out.
std::vector<Case> LlamaCppCases(const std::string& name) {
  const std::string prefix = std::string(ZCPACK_VOCAB_DIR) + "/ggml-vocab-" + name + ".gguf";
  const std::string inp = ReadWhole(prefix + ".inp");
  const std::vector<std::string> texts = absl::StrSplit(inp, "\n__ggml_vocab_test__\n");
  std::vector<Case> cases;
  for (absl::string_view line : absl::StrSplit(ReadWhole(prefix + ".out"), '\n')) {
    if (cases.size() == texts.size()) break;
    Case c{texts[cases.size()], {}};
    for (absl::string_view id : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      int32_t value = 0;
      EXPECT_TRUE(absl::SimpleAtoi(id, &value)) << id;
      c.ids.push_back(value);
    }
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << name;
  return cases;
}

// Every llama.cpp case of `name` tokenizes to llama.cpp's ids with a
// tokenizer made from `vocab`.
void ExpectLlamaCppIds(const std::string& name, absl::StatusOr<Vocabulary> vocab) {
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<Case> cases = LlamaCppCases(name);
  ASSERT_GT(cases.size(), 30u);
  for (const Case& c : cases) {
    EXPECT_EQ((*tokenizer)->Tokenize(c.text), c.ids) << name << ": '" << c.text << "'";
  }
}

class TokenizesLikeLlamaCppTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizesLikeLlamaCppTest, FromTokenizerJson) {
  const Vocabulary gguf = GgufVocabulary(GetParam());
  ExpectLlamaCppIds(GetParam(), VocabularyFromHfTokenizerJson(testing::HfTokenizerJson(gguf), "tokenizer.json"));
}

TEST_P(TokenizesLikeLlamaCppTest, FromTokenizerJsonInTheOtherLayout) {
  const Vocabulary gguf = GgufVocabulary(GetParam());
  const std::string json = testing::HfTokenizerJson(gguf, {.pair_merges = true, .metaspace = true});
  ExpectLlamaCppIds(GetParam(), VocabularyFromHfTokenizerJson(json, "tokenizer.json"));
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizesLikeLlamaCppTest,
                         ::testing::Values("llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2"));

// The SentencePiece vocabularies also come as tokenizer.model.
class SentencePieceTokenizesLikeLlamaCppTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SentencePieceTokenizesLikeLlamaCppTest, FromTokenizerModel) {
  const Vocabulary gguf = GgufVocabulary(GetParam());
  ExpectLlamaCppIds(GetParam(),
                    VocabularyFromSentencePieceModel(testing::SentencePieceModel(gguf), "tokenizer.model"));
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, SentencePieceTokenizesLikeLlamaCppTest, ::testing::Values("llama-spm", "phi-3"));

// ---- byte-level tokenizer.json: llama 3, qwen2, gpt-2 --------------------------

class ByteLevelJsonTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ByteLevelJsonTest, GivesTheGgufVocabulary) {
  const Vocabulary gguf = GgufVocabulary(GetParam());
  ASSERT_FALSE(gguf.tokens.empty());
  // qwen2 in the newer ["left", "right"] merge form, the others as strings.
  const bool pair_merges = std::string(GetParam()) == "qwen2";
  const std::string json = testing::HfTokenizerJson(gguf, {.pair_merges = pair_merges});
  auto v = VocabularyFromHfTokenizerJson(json, "tokenizer.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, TokenizerModel::kBpe);
  EXPECT_EQ(v->pre, gguf.pre);
  EXPECT_EQ(v->tokens, gguf.tokens);
  EXPECT_EQ(v->types, gguf.types);
  EXPECT_EQ(v->merges, gguf.merges);
  EXPECT_TRUE(v->scores.empty());
  EXPECT_EQ(v->bos_id, gguf.bos_id);
  EXPECT_EQ(v->eos_id, gguf.eos_id);
  EXPECT_EQ(v->add_bos, gguf.add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_FALSE(v->add_space_prefix);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, ByteLevelJsonTest, ::testing::Values("llama-bpe", "qwen2", "gpt-2"));

// ---- SentencePiece-style tokenizer.json: llama 2, phi-3 -------------------------

// Scores need only order the pieces merges make as the GGUF's do: a piece
// the GGUF scores higher than another must score higher here. (Pieces no
// merge makes are never the result of a merge in llama.cpp's SPM algorithm
// either, so their scores do not matter.)
void ExpectSameScoreOrder(const Vocabulary& gguf, const std::string& json, const Vocabulary& v) {
  const nlohmann::json parsed = nlohmann::json::parse(json);
  absl::flat_hash_map<std::string, int32_t> ids;
  for (size_t id = 0; id < gguf.tokens.size(); ++id) ids.emplace(gguf.tokens[id], static_cast<int32_t>(id));
  std::vector<bool> made(gguf.tokens.size(), false);
  for (const auto& m : parsed["model"]["merges"]) {
    const std::string text = m.get<std::string>();
    const size_t space = text.find(' ');
    made[ids.at(text.substr(0, space) + text.substr(space + 1))] = true;
  }
  std::vector<int32_t> order;
  for (size_t id = 0; id < gguf.tokens.size(); ++id) {
    if (made[id]) order.push_back(static_cast<int32_t>(id));
  }
  ASSERT_GT(order.size(), 1000u);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return gguf.scores[a] > gguf.scores[b]; });
  float lowest_above = std::numeric_limits<float>::infinity();  // over pieces the GGUF scores higher
  float lowest_here = std::numeric_limits<float>::infinity();   // over the current equal-score group
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0 && gguf.scores[order[i]] != gguf.scores[order[i - 1]]) {
      lowest_above = std::min(lowest_above, lowest_here);
      lowest_here = std::numeric_limits<float>::infinity();
    }
    ASSERT_LT(v.scores[order[i]], lowest_above) << "piece " << order[i] << " '" << gguf.tokens[order[i]] << "'";
    lowest_here = std::min(lowest_here, v.scores[order[i]]);
  }
}

struct SpmCase {
  const char* name;
  bool metaspace;
};

class SpmJsonTest : public ::testing::TestWithParam<SpmCase> {};

TEST_P(SpmJsonTest, GivesTheGgufVocabulary) {
  const Vocabulary gguf = GgufVocabulary(GetParam().name);
  ASSERT_FALSE(gguf.tokens.empty());
  const std::string json = testing::HfTokenizerJson(gguf, {.metaspace = GetParam().metaspace});
  auto v = VocabularyFromHfTokenizerJson(json, "tokenizer.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, TokenizerModel::kSpm);
  EXPECT_EQ(v->pre, "default");
  EXPECT_EQ(v->tokens, gguf.tokens);
  ASSERT_EQ(v->types.size(), gguf.types.size());
  for (size_t id = 0; id < gguf.types.size(); ++id) {
    // The converter types model.unk_token UNKNOWN, and any other added
    // special token CONTROL (phi-3's GGUF has its padding typed UNKNOWN and
    // <unk> CONTROL).
    TokenType want = gguf.types[id];
    if (static_cast<int32_t>(id) == gguf.unk_id) want = TokenType::kUnknown;
    else if (want == TokenType::kUnknown) want = TokenType::kControl;
    EXPECT_EQ(v->types[id], want) << "token " << id << " '" << gguf.tokens[id] << "'";
  }
  ASSERT_EQ(v->scores.size(), gguf.scores.size());
  ExpectSameScoreOrder(gguf, json, *v);
  EXPECT_TRUE(v->merges.empty());
  EXPECT_EQ(v->bos_id, gguf.bos_id);
  EXPECT_EQ(v->eos_id, gguf.eos_id);
  EXPECT_EQ(v->unk_id, gguf.unk_id);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, SpmJsonTest,
                         ::testing::Values(SpmCase{"llama-spm", false}, SpmCase{"phi-3", true}));

// ---- tokenizer.model ---------------------------------------------------------

class SentencePieceModelTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SentencePieceModelTest, GivesTheGgufVocabulary) {
  const Vocabulary gguf = GgufVocabulary(GetParam());
  ASSERT_FALSE(gguf.tokens.empty());
  auto v = VocabularyFromSentencePieceModel(testing::SentencePieceModel(gguf), "tokenizer.model");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, TokenizerModel::kSpm);
  EXPECT_EQ(v->pre, "default");
  EXPECT_EQ(v->tokens, gguf.tokens);
  EXPECT_EQ(v->scores, gguf.scores);
  EXPECT_EQ(v->types, gguf.types);
  EXPECT_EQ(v->bos_id, gguf.bos_id);
  EXPECT_EQ(v->eos_id, gguf.eos_id);
  EXPECT_EQ(v->unk_id, gguf.unk_id);
  EXPECT_EQ(v->pad_id, gguf.pad_id);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, SentencePieceModelTest, ::testing::Values("llama-spm", "phi-3"));

// ---- small files, by hand ----------------------------------------------------

// A gpt-2 style byte-level tokenizer.json of six tokens.
Json TinyByteLevel() {
  return Json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,
              "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120a": 4},
              "merges": ["a b", "\u0120 a"]}
  })");
}

// A llama 2 style tokenizer.json of eight tokens.
Json TinySpm() {
  return Json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                     {"id": 1, "content": "<s>", "special": true},
                     {"id": 2, "content": "</s>", "special": true},
                     {"id": 8, "content": "<tool>", "special": false}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": null,
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "\u2581": 4, "h": 5, "\u2581h": 6, "i": 7},
              "merges": ["\u2581 h"]}
  })");
}

TEST(HfTokenizerJsonTest, ReadsATinyByteLevelFile) {
  auto v = VocabularyFromHfTokenizerJson(TinyByteLevel().dump(), "t.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->pre, "gpt-2");
  EXPECT_EQ(v->tokens, (std::vector<std::string>{"a", "b", "ab", "\xc4\xa0", "\xc4\xa0" "a", "<|endoftext|>"}));
  EXPECT_EQ(v->merges, (std::vector<std::string>{"a b", "\xc4\xa0 a"}));
  EXPECT_EQ(v->types[5], TokenType::kControl);
  EXPECT_EQ(v->eos_id, 5);
  EXPECT_EQ(v->bos_id, 5);  // <|endoftext|> serves as both, as in GPT-2's config
  EXPECT_FALSE(v->add_bos);
}

TEST(HfTokenizerJsonTest, ReadsATinySentencePieceStyleFile) {
  auto v = VocabularyFromHfTokenizerJson(TinySpm().dump(), "t.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, TokenizerModel::kSpm);
  EXPECT_EQ(v->types, (std::vector<TokenType>{TokenType::kUnknown, TokenType::kControl, TokenType::kControl,
                                              TokenType::kByte, TokenType::kNormal, TokenType::kNormal,
                                              TokenType::kNormal, TokenType::kNormal, TokenType::kUserDefined}));
  // "▁h" is made by merge 0; the single characters rank after every merge.
  EXPECT_EQ(v->scores[6], 0.0f);
  EXPECT_LT(v->scores[4], v->scores[6]);
  EXPECT_LT(v->scores[7], v->scores[5]);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_TRUE(v->add_bos);
  EXPECT_TRUE(v->add_space_prefix);
}

TEST(HfTokenizerJsonTest, ReplaceWithoutPrependAddsNoLeadingSpace) {
  Json j = TinySpm();
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xe2\x96\x81"}};
  auto v = VocabularyFromHfTokenizerJson(j.dump(), "t.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->add_space_prefix);
}

TEST(HfTokenizerJsonTest, AddedTokensThatLookSpecialAreControl) {
  Json j = TinyByteLevel();
  j["added_tokens"].push_back({{"id", 6}, {"content", "<|im_start|>"}, {"special", false}});
  j["added_tokens"].push_back({{"id", 7}, {"content", "tool\xe2\x96\x81use"}, {"special", false}});
  auto v = VocabularyFromHfTokenizerJson(j.dump(), "t.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->types[6], TokenType::kControl);
  EXPECT_EQ(v->types[7], TokenType::kUserDefined);
  EXPECT_EQ(v->tokens[7], "tool use");  // user-defined spaces pre-normalised, as the converter does
}

struct BadJson {
  const char* name;
  std::function<void(Json&)> damage;
  absl::StatusCode code;
  const char* message;  // a part of the expected message
};

class BadHfTokenizerJsonTest : public ::testing::TestWithParam<BadJson> {};

TEST_P(BadHfTokenizerJsonTest, IsRefused) {
  const bool spm = absl::StartsWith(GetParam().name, "Spm");
  Json j = spm ? TinySpm() : TinyByteLevel();
  GetParam().damage(j);
  auto v = VocabularyFromHfTokenizerJson(j.dump(), "bad.json");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), GetParam().code) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("bad.json: "));
  EXPECT_THAT(v.status().message(), HasSubstr(GetParam().message));
}

const absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
const absl::StatusCode kUnimplemented = absl::StatusCode::kUnimplemented;

INSTANTIATE_TEST_SUITE_P(
    Table, BadHfTokenizerJsonTest,
    ::testing::Values(
        BadJson{"RootArray", [](Json& j) { j = Json::array(); }, kInvalid, "is not a JSON object"},
        BadJson{"NoModel", [](Json& j) { j.erase("model"); }, kInvalid, "model: is missing"},
        BadJson{"WordPiece", [](Json& j) { j["model"]["type"] = "WordPiece"; }, kUnimplemented,
                "model.type: \"WordPiece\" is not supported"},
        BadJson{"Unigram", [](Json& j) { j["model"]["type"] = "Unigram"; }, kUnimplemented, "\"Unigram\""},
        BadJson{"VocabNotObject", [](Json& j) { j["model"]["vocab"] = Json::array(); }, kInvalid,
                "model.vocab: is not an object"},
        BadJson{"NegativeId", [](Json& j) { j["model"]["vocab"]["a"] = -1; }, kInvalid,
                "model.vocab[\"a\"]: is not a non-negative integer"},
        BadJson{"SpmIdGap", [](Json& j) { j["added_tokens"][3]["id"] = 9; }, kInvalid,
                "no token has id 8 but \"<tool>\" has id 9"},
        BadJson{"IdBeyondTokens", [](Json& j) { j["model"]["vocab"]["b"] = 4000000000u; }, kInvalid,
                "ids must run 0..n-1"},
        BadJson{"DuplicateId", [](Json& j) { j["model"]["vocab"]["b"] = 0; }, kInvalid, "is also \"a\""},
        BadJson{"AddedIdClash", [](Json& j) { j["added_tokens"][0]["id"] = 2; }, kInvalid,
                "added_tokens[0]: id 2 is \"<|endoftext|>\" here but \"ab\" in model.vocab"},
        BadJson{"AddedTwice",
                [](Json& j) { j["added_tokens"].push_back({{"id", 5}, {"content", "<|endoftext|>"}}); }, kInvalid,
                "added_tokens[1].id: id 5 is added twice"},
        BadJson{"AddedEmpty", [](Json& j) { j["added_tokens"][0]["content"] = ""; }, kInvalid,
                "added_tokens[0].content: is empty"},
        BadJson{"SameTextTwice", [](Json& j) { j["added_tokens"][0]["content"] = "ab"; }, kInvalid,
                "token \"ab\" has ids 2 and 5"},
        BadJson{"MergeMissingToken", [](Json& j) { j["model"]["merges"][1] = "\xc4\xa0 b"; }, kInvalid,
                "model.merges[1]: the merged token"},
        BadJson{"MergeUnknownPart", [](Json& j) { j["model"]["merges"][0] = "a x"; }, kInvalid,
                "model.merges[0]: \"x\" is not a token"},
        BadJson{"MergeThreeParts", [](Json& j) { j["model"]["merges"][0] = "a b c"; }, kInvalid,
                "model.merges[0]: \"a b c\" is not \"left right\""},
        BadJson{"MergeNotStringOrPair", [](Json& j) { j["model"]["merges"][0] = 7; }, kInvalid,
                "model.merges[0]: is neither"},
        BadJson{"Dropout", [](Json& j) { j["model"]["dropout"] = 0.1; }, kUnimplemented, "model.dropout"},
        BadJson{"SubwordPrefix", [](Json& j) { j["model"]["continuing_subword_prefix"] = "##"; }, kUnimplemented,
                "model.continuing_subword_prefix"},
        BadJson{"UnknownRegex",
                [](Json& j) {
                  j["pre_tokenizer"] = {{"type", "Sequence"},
                                        {"pretokenizers",
                                         {{{"type", "Split"},
                                           {"pattern", {{"Regex", "\\p{N}{1,7}"}}},
                                           {"behavior", "Isolated"},
                                           {"invert", false}},
                                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
                },
                kUnimplemented, "the Split regex \"\\\\p{N}{1,7}\" is not one zcpack knows"},
        BadJson{"TwoRegexes",
                [](Json& j) {
                  j["pre_tokenizer"] = {{"type", "Sequence"},
                                        {"pretokenizers",
                                         {{{"type", "Split"},
                                           {"pattern", {{"Regex", "\\p{N}"}}},
                                           {"behavior", "Isolated"},
                                           {"invert", false}},
                                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}};
                },
                kUnimplemented, "2 regexes"},
        BadJson{"PrefixSpace", [](Json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }, kUnimplemented,
                "pre_tokenizer.add_prefix_space: true is not supported"},
        BadJson{"ByteLevelLowercase", [](Json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, kUnimplemented,
                "normalizer.type: \"Lowercase\""},
        BadJson{"DecoderOnlyByteLevel", [](Json& j) { j["pre_tokenizer"] = nullptr; }, kUnimplemented,
                "has no ByteLevel step although the decoder is ByteLevel"},
        BadJson{"RobertaProcessing", [](Json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; },
                kUnimplemented, "post_processor.type: \"RobertaProcessing\" is not supported"},
        BadJson{"UserDefinedSpaceClash",
                [](Json& j) {
                  j["model"]["vocab"]["x y"] = 5;
                  j["added_tokens"] = {{{"id", 6}, {"content", "x\xe2\x96\x81y"}, {"special", false}}};
                },
                kInvalid, "added_tokens[0].content: with U+2581 read as a space, it is \"x y\""},
        BadJson{"PaddingIdOutOfRange", [](Json& j) { j["padding"] = {{"pad_id", 99}}; }, kInvalid,
                "padding.pad_id"},
        BadJson{"SpmNoByteFallback", [](Json& j) { j["model"]["byte_fallback"] = false; }, kUnimplemented,
                "model.byte_fallback: is not true"},
        BadJson{"SpmLowercase",
                [](Json& j) { j["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}}); },
                kUnimplemented, "normalizer.normalizers[2].type: \"Lowercase\" is not supported"},
        BadJson{"SpmNoNormalizerNoPre", [](Json& j) { j["normalizer"] = nullptr; }, kUnimplemented,
                "pre_tokenizer: and normalizer are both absent"},
        BadJson{"SpmSplittingMetaspace",
                [](Json& j) {
                  j["normalizer"] = nullptr;
                  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"},
                                        {"prepend_scheme", "first"}, {"split", true}};
                },
                kUnimplemented, "pre_tokenizer.split: true is not supported"},
        BadJson{"SpmWhitespaceSplit",
                [](Json& j) { j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}}; }, kUnimplemented,
                "\"WhitespaceSplit\" with a normalizer is not supported"},
        BadJson{"SpmUnkNotAToken", [](Json& j) { j["model"]["unk_token"] = "<oov>"; }, kInvalid,
                "model.unk_token: \"<oov>\" is not a token"},
        BadJson{"SpmTemplateIdOutOfRange",
                [](Json& j) { j["post_processor"]["special_tokens"]["<s>"]["ids"][0] = 100; }, kInvalid,
                "post_processor.special_tokens[\"<s>\"].ids[0]"},
        BadJson{"SpmTemplateUnknownName",
                [](Json& j) {
                  j["post_processor"]["special_tokens"] = Json::object();
                  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<bos>";
                },
                kInvalid, "post_processor.single[0].SpecialToken.id: \"<bos>\" is not a token"}),
    [](const ::testing::TestParamInfo<BadJson>& param) { return std::string(param.param.name); });

TEST(HfTokenizerJsonTest, NotJsonIsInvalidArgument) {
  auto v = VocabularyFromHfTokenizerJson("{\"model\": ", "x.json");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), kInvalid);
  EXPECT_THAT(v.status().message(), HasSubstr("x.json: not valid JSON"));
}

TEST(HfTokenizerJsonTest, EveryTruncationIsRefused) {
  for (const Json& j : {TinyByteLevel(), TinySpm()}) {
    const std::string text = j.dump();
    for (size_t len = 0; len < text.size(); ++len) {
      auto v = VocabularyFromHfTokenizerJson(absl::string_view(text).substr(0, len), "t.json");
      ASSERT_FALSE(v.ok()) << len;
      EXPECT_EQ(v.status().code(), kInvalid) << len;
    }
  }
}

TEST(HfTokenizerJsonTest, ByteFlipsNeverCrash) {
  for (const Json& j : {TinyByteLevel(), TinySpm()}) {
    const std::string text = j.dump();
    for (size_t i = 0; i < text.size(); ++i) {
      for (unsigned char flip : {0x01, 0x20, 0x80}) {
        std::string damaged = text;
        damaged[i] = static_cast<char>(damaged[i] ^ flip);
        auto v = VocabularyFromHfTokenizerJson(damaged, "t.json");
        if (v.ok()) {
          EXPECT_FALSE(v->tokens.empty());
        }
      }
    }
  }
}

// ---- tokenizer.model, malformed ----------------------------------------------

namespace spm = ::zcpack::runtime::sentencepiece;

spm::ModelProto TinyModelProto() {
  spm::ModelProto p;
  const std::pair<const char*, int> pieces[] = {{"<unk>", 2}, {"<s>", 3}, {"</s>", 3}, {"<0x0A>", 6},
                                                {"\xe2\x96\x81", 1}, {"h", 1}, {"\xe2\x96\x81h", 1}};
  float score = 0.0f;
  for (const auto& [text, type] : pieces) {
    auto* piece = p.add_pieces();
    piece->set_piece(text);
    piece->set_type(type);
    piece->set_score(score);
    score -= 1.0f;
  }
  p.mutable_trainer_spec()->set_model_type(spm::MODEL_TYPE_BPE);
  p.mutable_normalizer_spec()->set_add_dummy_prefix(false);
  return p;
}

TEST(SentencePieceModelTest, ReadsATinyModel) {
  auto v = VocabularyFromSentencePieceModel(TinyModelProto().SerializeAsString(), "tokenizer.model");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->tokens.size(), 7u);
  EXPECT_EQ(v->types[0], TokenType::kUnknown);
  EXPECT_EQ(v->types[3], TokenType::kByte);
  EXPECT_EQ(v->scores[6], -6.0f);
  // SentencePiece's defaults: unk 0, bos 1, eos 2, no pad.
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->pad_id, -1);
  EXPECT_FALSE(v->add_space_prefix);
}

struct BadModel {
  const char* name;
  std::function<void(spm::ModelProto&)> damage;
  absl::StatusCode code;
  const char* message;
};

class BadSentencePieceModelTest : public ::testing::TestWithParam<BadModel> {};

TEST_P(BadSentencePieceModelTest, IsRefused) {
  spm::ModelProto p = TinyModelProto();
  GetParam().damage(p);
  auto v = VocabularyFromSentencePieceModel(p.SerializeAsString(), "bad.model");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), GetParam().code) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("bad.model: "));
  EXPECT_THAT(v.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadSentencePieceModelTest,
    ::testing::Values(
        BadModel{"Unigram", [](spm::ModelProto& p) { p.mutable_trainer_spec()->set_model_type(1); }, kUnimplemented,
                 "trainer_spec.model_type 1 (Unigram) is not supported"},
        BadModel{"NoTrainerSpec", [](spm::ModelProto& p) { p.clear_trainer_spec(); }, kUnimplemented, "(Unigram)"},
        BadModel{"Word", [](spm::ModelProto& p) { p.mutable_trainer_spec()->set_model_type(3); }, kUnimplemented,
                 "trainer_spec.model_type 3 is not supported"},
        BadModel{"NoPieces", [](spm::ModelProto& p) { p.clear_pieces(); }, kInvalid, "has no pieces"},
        BadModel{"EmptyPiece", [](spm::ModelProto& p) { p.mutable_pieces(5)->set_piece(""); }, kInvalid,
                 "pieces[5].piece is empty"},
        BadModel{"BadUtf8", [](spm::ModelProto& p) { p.mutable_pieces(5)->set_piece("h\xff"); }, kInvalid,
                 "pieces[5].piece \"h\\xff\" is not valid UTF-8"},
        BadModel{"DuplicatePiece", [](spm::ModelProto& p) { p.mutable_pieces(6)->set_piece("h"); }, kInvalid,
                 "pieces[6].piece \"h\" is also pieces[5]"},
        BadModel{"UnknownType", [](spm::ModelProto& p) { p.mutable_pieces(4)->set_type(9); }, kInvalid,
                 "pieces[4].type 9 is not a SentencePiece piece type"},
        BadModel{"BadBytePiece", [](spm::ModelProto& p) { p.mutable_pieces(5)->set_type(6); }, kInvalid,
                 "pieces[5]: BYTE piece \"h\" is not <0xXX>"},
        BadModel{"NanScore",
                 [](spm::ModelProto& p) { p.mutable_pieces(4)->set_score(std::numeric_limits<float>::quiet_NaN()); },
                 kInvalid, "pieces[4].score is not finite"},
        BadModel{"BosOutOfRange", [](spm::ModelProto& p) { p.mutable_trainer_spec()->set_bos_id(7); }, kInvalid,
                 "trainer_spec.bos_id 7 is not -1 or an id below 7"},
        BadModel{"UnkBelowMinusOne", [](spm::ModelProto& p) { p.mutable_trainer_spec()->set_unk_id(-2); },
                 kInvalid, "trainer_spec.unk_id -2"}),
    [](const ::testing::TestParamInfo<BadModel>& param) { return std::string(param.param.name); });

TEST(SentencePieceModelTest, GarbageIsInvalidArgument) {
  auto v = VocabularyFromSentencePieceModel(std::string("\xff\xff\xff\xff", 4), "x.model");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), kInvalid);
  EXPECT_THAT(v.status().message(), HasSubstr("x.model: not a SentencePiece model"));
}

// A prefix of a ModelProto may itself parse (fewer pieces, no specs); it must
// then be refused or give a prefix of the pieces, never crash.
TEST(SentencePieceModelTest, EveryTruncationIsRefusedOrAPrefix) {
  const std::string bytes = TinyModelProto().SerializeAsString();
  const auto whole = VocabularyFromSentencePieceModel(bytes, "t.model");
  ASSERT_TRUE(whole.ok());
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto v = VocabularyFromSentencePieceModel(absl::string_view(bytes).substr(0, len), "t.model");
    if (!v.ok()) continue;
    ASSERT_LE(v->tokens.size(), whole->tokens.size());
    EXPECT_TRUE(std::equal(v->tokens.begin(), v->tokens.end(), whole->tokens.begin())) << len;
  }
}

TEST(SentencePieceModelTest, ByteFlipsNeverCrash) {
  const std::string bytes = TinyModelProto().SerializeAsString();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char flip : {0x01, 0x08, 0x80}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ flip);
      auto v = VocabularyFromSentencePieceModel(damaged, "t.model");
      if (v.ok()) {
          EXPECT_FALSE(v->tokens.empty());
        }
    }
  }
}

}  // namespace
}  // namespace zcpack::runtime
