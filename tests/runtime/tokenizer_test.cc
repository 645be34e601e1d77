// Tokenizer tests: llama.cpp's own tokenizer cases (tests/data/vocab, copied
// from llama.cpp's models/), tokenized from the JSON the converter carries
// for the GGUF files; round trips; and malformed metadata.
#include "zcpack/runtime/tokenizer.h"

#include <zstd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "zcpack/converter/gguf.h"
#include "zcpack/format/utf8.h"

namespace zcpack::runtime {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string VocabPath(const std::string& name) {
  return absl::StrCat(ZCPACK_VOCAB_DIR, "/ggml-vocab-", name, ".gguf");
}

// The JSON text the converter stores for a GGUF file's tokenizer keys.
std::string GgufTokenizerJson(const std::string& path) {
  const std::string bytes = ReadFile(path);
  EXPECT_FALSE(bytes.empty()) << path;
  auto gguf = converter::ParseGguf(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), path);
  EXPECT_TRUE(gguf.ok()) << gguf.status();
  if (!gguf.ok()) return "";
  auto blob = converter::GgufTokenizerBlob(*gguf, path, 1);
  EXPECT_TRUE(blob.ok()) << blob.status();
  if (!blob.ok() || !blob->has_value()) return "";
  std::string raw((*blob)->raw_size(), '\0');
  const size_t n = ZSTD_decompress(raw.data(), raw.size(), (*blob)->zstd_data().data(),
                                   (*blob)->zstd_data().size());
  EXPECT_EQ(n, raw.size());
  return raw;
}

std::unique_ptr<Tokenizer> LoadVocab(const std::string& name) {
  const std::string json = GgufTokenizerJson(VocabPath(name));
  auto vocab = VocabularyFromGgufJson(json, name);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  if (!vocab.ok()) return nullptr;
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// llama.cpp's test-tokenizer-0 format: cases separated by
// "\n__ggml_vocab_test__\n" in .inp, one line of ids per case in .out.
std::vector<Case> ReadCases(const std::string& name) {
  const std::string inp = ReadFile(VocabPath(name) + ".inp");
  const std::string out = ReadFile(VocabPath(name) + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Case> cases;
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    Case c;
    c.text = i < texts.size() ? texts[i] : "";
    for (absl::string_view id : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      c.ids.push_back(std::stoi(std::string(id)));
    }
    cases.push_back(std::move(c));
    ++i;
  }
  EXPECT_EQ(cases.size(), texts.size()) << name;
  return cases;
}

class LlamaCppVocabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppVocabTest, EveryCaseMatchesLlamaCpp) {
  const std::string name = GetParam();
  auto tokenizer = LoadVocab(name);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<Case> cases = ReadCases(name);
  ASSERT_GT(cases.size(), 30u);
  for (const Case& c : cases) {
    EXPECT_EQ(tokenizer->Tokenize(c.text), c.ids) << name << ": '" << c.text << "'";
  }
}

// Detokenizing gives the text back, except where llama.cpp's detokenizer
// itself changes it: BPE vocabularies that clean spaces before punctuation
// and contractions (" ,", " 's", ...).
TEST_P(LlamaCppVocabTest, DetokenizeInvertsTokenize) {
  const std::string name = GetParam();
  auto tokenizer = LoadVocab(name);
  ASSERT_NE(tokenizer, nullptr);
  const bool cleans_spaces = name == "llama-bpe" || name == "gpt-2" || name == "starcoder" ||
                             name == "refact" || name == "mpt" || name == "falcon";
  for (const Case& c : ReadCases(name)) {
    if (cleans_spaces && (c.text.find(" ,") != std::string::npos ||
                          c.text.find(" .") != std::string::npos ||
                          c.text.find(" ?") != std::string::npos ||
                          c.text.find(" !") != std::string::npos ||
                          c.text.find(" '") != std::string::npos)) {
      continue;
    }
    EXPECT_EQ(tokenizer->Detokenize(tokenizer->Tokenize(c.text)), c.text) << name;
  }
}

// llama.cpp's test-tokenizer-1 checks: every code point tokenizes and
// detokenizes to itself (U+2581 aside, which SPM reads as a space). Not for
// falcon, whose vocabulary has no token for some control bytes: llama.cpp
// drops them, and so does zcpack.
TEST_P(LlamaCppVocabTest, CodePointsRoundTrip) {
  const std::string name = GetParam();
  if (name == "falcon") GTEST_SKIP() << "falcon has no tokens for some control bytes";
  auto tokenizer = LoadVocab(name);
  ASSERT_NE(tokenizer, nullptr);
  for (uint32_t cp = 1; cp < 0x110000; cp += (cp < 0x3000 ? 1 : 97)) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x40000 && cp <= 0xE0000) || cp == 0x2581) {
      continue;
    }
    std::string text;
    if (cp < 0x80) {
      text = std::string(1, static_cast<char>(cp));
    } else if (cp < 0x800) {
      text = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    } else if (cp < 0x10000) {
      text = {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
              static_cast<char>(0x80 | (cp & 0x3F))};
    } else {
      text = {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
              static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
    ASSERT_EQ(tokenizer->Detokenize(tokenizer->Tokenize(text)), text)
        << name << ": U+" << std::hex << cp;
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, LlamaCppVocabTest,
                         ::testing::Values("llama-spm", "llama-bpe", "qwen2", "phi-3", "gpt-2", "starcoder", "refact", "mpt", "falcon", "deepseek-coder"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(TokenizerTest, SpmAddsBosAndParsesSpecialTokensOnlyWhenAsked) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  const Vocabulary& v = tokenizer->vocabulary();
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_TRUE(v.add_bos);
  const std::vector<int32_t> plain = tokenizer->Tokenize("Hello</s>");
  const std::vector<int32_t> special =
      tokenizer->Tokenize("Hello</s>", {.add_special = true, .parse_special = true});
  ASSERT_GE(special.size(), 3u);
  EXPECT_EQ(special.front(), 1);
  EXPECT_EQ(special.back(), 2);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_TRUE(tokenizer->IsEndOfGeneration(2));
  EXPECT_FALSE(tokenizer->IsEndOfGeneration(1));
  EXPECT_EQ(tokenizer->TokenToPiece(2), "");
  EXPECT_EQ(tokenizer->TokenToPiece(2, /*special=*/true), "</s>");
}

TEST(TokenizerTest, Llama3EndsGenerationAtEotAndParsesHeaderTokens) {
  auto tokenizer = LoadVocab("llama-bpe");
  ASSERT_NE(tokenizer, nullptr);
  const Vocabulary& v = tokenizer->vocabulary();
  EXPECT_TRUE(v.add_bos);
  const std::vector<int32_t> ids = tokenizer->Tokenize(
      "<|start_header_id|>user<|end_header_id|>", {.add_special = true, .parse_special = true});
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], v.bos_id);
  EXPECT_EQ(tokenizer->TokenToPiece(ids[1], true), "<|start_header_id|>");
  EXPECT_EQ(tokenizer->TokenToPiece(ids[3], true), "<|end_header_id|>");
  const std::vector<int32_t> eot = tokenizer->Tokenize("<|eot_id|>", {.parse_special = true});
  ASSERT_EQ(eot.size(), 1u);
  EXPECT_TRUE(tokenizer->IsEndOfGeneration(eot[0]));
  EXPECT_TRUE(tokenizer->IsEndOfGeneration(v.eos_id));
  // Without parse_special the same text is ordinary text.
  EXPECT_GT(tokenizer->Tokenize("<|eot_id|>").size(), 1u);
}

// Phi-3's special tokens take the white space after them (llama.cpp keys the
// rule on general.name); the ids are llama-tokenize's for the same text.
TEST(TokenizerTest, Phi3SpecialTokensStripTheSpaceAfterThem) {
  auto vocab = VocabularyFromGgufJson(GgufTokenizerJson(VocabPath("phi-3")), "phi-3");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  const std::string text = "<|user|>\n text <|endoftext|><|assistant|> <unk>x </s>  y<|end|>\n";
  Vocabulary named = *vocab;
  named.model_name = "Phi-3 Mini";
  auto phi3 = Tokenizer::Create(std::move(named));
  ASSERT_TRUE(phi3.ok()) << phi3.status();
  EXPECT_EQ((*phi3)->Tokenize(text, {.parse_special = true}),
            (std::vector<int32_t>{32010, 1426, 29871, 32000, 32001, 0, 921, 29871, 2, 343, 32007}));
  // Without the name, the white space stays text.
  auto unnamed = Tokenizer::Create(*std::move(vocab));
  ASSERT_TRUE(unnamed.ok()) << unnamed.status();
  EXPECT_GT((*unnamed)->Tokenize(text, {.parse_special = true}).size(), 11u);
}

TEST(TokenizerTest, InvalidUtf8IsTokenizedNotRefused) {
  for (const char* name : {"llama-spm", "llama-bpe"}) {
    auto tokenizer = LoadVocab(name);
    ASSERT_NE(tokenizer, nullptr);
    const std::string text = "a\xff\xc3 b\xe2\x82";
    EXPECT_FALSE(tokenizer->Tokenize(text).empty()) << name;
  }
}

TEST(TokenizerTest, FalconDropsBytesItHasNoTokenFor) {
  auto tokenizer = LoadVocab("falcon");
  ASSERT_NE(tokenizer, nullptr);
  // As llama-tokenize prints for the same bytes: "a", "b", nothing for \x03.
  EXPECT_EQ(tokenizer->Tokenize("a\x03" "b"), (std::vector<int32_t>{76, 77}));
}

// Streamed one id at a time, the text is what Detokenize() gives, and no
// chunk ends inside a UTF-8 sequence.
TEST(DetokenizeStreamTest, StreamsWholeCharactersOnly) {
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2"}) {
    auto tokenizer = LoadVocab(name);
    ASSERT_NE(tokenizer, nullptr);
    const std::string text =
        "\xF0\x90\x8D\x88 \xE1\x9E\x80\xE1\x9E\xB6\xE1\x9E\x93 \xF0\x9F\xA6\x99.cpp "
        "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE";
    const std::vector<int32_t> ids = tokenizer->Tokenize(text);
    DetokenizeStream stream(*tokenizer);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string chunk = stream.Push(id);
      EXPECT_TRUE(format::IsValidUtf8(chunk)) << name;
      streamed += chunk;
    }
    streamed += stream.Finish();
    EXPECT_EQ(streamed, tokenizer->Detokenize(ids)) << name;
    EXPECT_EQ(streamed, text) << name;
  }
}

TEST(DetokenizeStreamTest, FinishReturnsAnIncompleteTail) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> ids = tokenizer->Tokenize("\xF0\x90\x8D\x88");
  ASSERT_EQ(ids.size(), 5u);
  DetokenizeStream stream(*tokenizer);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(stream.Push(ids[i]), "");
  EXPECT_EQ(stream.Finish(), "\xF0\x90\x8D");
}

TEST(TokenizerTest, SpmFallsBackToBytes) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  // U+10348 (Gothic hwair) is not in llama 2's vocabulary: four byte tokens.
  const std::vector<int32_t> ids = tokenizer->Tokenize("\xF0\x90\x8D\x88");
  ASSERT_EQ(ids.size(), 5u);  // the leading space, then four bytes
  EXPECT_EQ(tokenizer->TokenToPiece(ids[1]), "\xF0");
  EXPECT_EQ(tokenizer->Detokenize(ids), "\xF0\x90\x8D\x88");
}

// llama.cpp cuts SPM text into symbols by lead byte: a lead byte takes the
// bytes it announces, here a newline and "c", and the malformed symbol
// becomes byte tokens. As llama-tokenize prints for the same bytes.
TEST(TokenizerTest, SpmMalformedSymbolTakesTheNewlineAfterIt) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Tokenize("ab\xe2\ncd ef"),
            (std::vector<int32_t>{633, 229, 13, 102, 29881, 321, 29888}));
}

// SPM cuts the text where no token joins the characters either side; where
// a token does (a newline inside, U+2581 after a letter), it merges across.
TEST(TokenizerTest, SpmMergesAcrossNewlinesAndSpacesATokenJoins) {
  Vocabulary vocab;
  vocab.model = TokenizerModel::kSpm;
  vocab.tokens = {"<unk>", "a", "b", "\n", "\xE2\x96\x81", "a\n", "a\nb", "b\xE2\x96\x81",
                  "b\xE2\x96\x81" "a"};
  vocab.scores = {0, -1, -1, -1, -1, -2, -3, -2, -3};
  vocab.unk_id = 0;
  vocab.add_space_prefix = false;
  auto tokenizer = Tokenizer::Create(std::move(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Tokenize("a\nb"), (std::vector<int32_t>{6}));
  EXPECT_EQ((*tokenizer)->Tokenize("b a"), (std::vector<int32_t>{8}));
  // "b" joins the U+2581 after it (-2) before "a\nb" forms (-3).
  EXPECT_EQ((*tokenizer)->Tokenize("a\nb a"), (std::vector<int32_t>{5, 8}));
}

// Special tokens are matched longest first: "cdef" takes bytes 2 to 5
// before "abcd" (as long, later id) is tried, so "abcd" cannot be taken
// and the shorter "ab" takes the bytes before "cdef", as in llama.cpp.
TEST(TokenizerTest, SpecialTokenBlockedPartWayLeavesRoomForAShorterOne) {
  Vocabulary vocab;
  vocab.model = TokenizerModel::kSpm;
  vocab.tokens = {"<unk>", "a", "b", "cdef", "abcd", "ab"};
  vocab.types = {TokenType::kUnknown,     TokenType::kNormal,      TokenType::kNormal,
                 TokenType::kUserDefined, TokenType::kUserDefined, TokenType::kUserDefined};
  vocab.unk_id = 0;
  vocab.add_space_prefix = false;
  auto tokenizer = Tokenizer::Create(std::move(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Tokenize("abcdef"), (std::vector<int32_t>{5, 3}));
  EXPECT_EQ((*tokenizer)->Tokenize("abcdabcdef"), (std::vector<int32_t>{4, 5, 3}));
}

// Malformed metadata: each gives InvalidArgument (or Unimplemented for what
// zcpack does not support) naming the key.
nlohmann::json TinyBpeJson() {
  return nlohmann::json{
      {"tokenizer.ggml.model", "gpt2"},
      {"tokenizer.ggml.pre", "gpt-2"},
      {"tokenizer.ggml.tokens", {"a", "b", "ab", "<|endoftext|>"}},
      {"tokenizer.ggml.token_type", {1, 1, 1, 3}},
      {"tokenizer.ggml.merges", {"a b"}},
      {"tokenizer.ggml.bos_token_id", 3},
      {"tokenizer.ggml.eos_token_id", 3},
  };
}

TEST(VocabularyFromGgufJsonTest, TinyBpeMerges) {
  auto vocab = VocabularyFromGgufJson(TinyBpeJson().dump(), "tiny.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Tokenize("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ((*tokenizer)->Tokenize("ba"), (std::vector<int32_t>{1, 0}));
  EXPECT_TRUE((*tokenizer)->IsEndOfGeneration(3));
}

// llama.cpp's converter writes "no token" as 4294967295 (uint32 -1); it reads
// as absent, as llama.cpp reads it. Other values outside the vocabulary stay
// errors (BrokenMetadata below).
TEST(VocabularyFromGgufJsonTest, NoTokenSentinelReadsAsAbsent) {
  nlohmann::json j = TinyBpeJson();
  j["tokenizer.ggml.padding_token_id"] = 4294967295u;
  j["tokenizer.ggml.eot_token_id"] = -1;
  auto vocab = VocabularyFromGgufJson(j.dump(), "tiny.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->pad_id, -1);
  EXPECT_EQ(vocab->eot_id, -1);
  EXPECT_EQ(vocab->eos_id, 3);
  j["tokenizer.ggml.padding_token_id"] = 4294967294u;
  EXPECT_EQ(VocabularyFromGgufJson(j.dump(), "tiny.gguf").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// As in llama.cpp, user-defined tokens are matched in plain text; control
// tokens only with parse_special; the longest candidate first.
TEST(VocabularyFromGgufJsonTest, UserDefinedTokensMatchWithoutParseSpecial) {
  nlohmann::json j = TinyBpeJson();
  j["tokenizer.ggml.tokens"] = {"a", "b", "ab", "<|endoftext|>", "<ud>", "<ud>b"};
  j["tokenizer.ggml.token_type"] = {1, 1, 1, 3, 4, 4};
  auto vocab = VocabularyFromGgufJson(j.dump(), "tiny.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Tokenize("a<ud>a<ud>b"), (std::vector<int32_t>{0, 4, 0, 5}));
  const std::vector<int32_t> plain = (*tokenizer)->Tokenize("<|endoftext|>");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 3), 0);
  EXPECT_EQ((*tokenizer)->Tokenize("a<|endoftext|>", {.parse_special = true}),
            (std::vector<int32_t>{0, 3}));
}

struct BrokenCase {
  const char* what;
  std::function<void(nlohmann::json&)> damage;
  absl::StatusCode code;
  const char* message;
};

TEST(VocabularyFromGgufJsonTest, RefusesMalformedMetadata) {
  const BrokenCase cases[] = {
      {"not JSON", nullptr, absl::StatusCode::kInvalidArgument, "not valid JSON"},
      {"no model", [](nlohmann::json& j) { j.erase("tokenizer.ggml.model"); },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.model is missing"},
      {"unknown model", [](nlohmann::json& j) { j["tokenizer.ggml.model"] = "t5"; },
       absl::StatusCode::kUnimplemented, "'t5' is not supported"},
      {"unknown pre", [](nlohmann::json& j) { j["tokenizer.ggml.pre"] = "no-such-pre"; },
       absl::StatusCode::kUnimplemented, "'no-such-pre' is not a pre-tokenizer"},
      {"no tokens", [](nlohmann::json& j) { j.erase("tokenizer.ggml.tokens"); },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.tokens is missing"},
      {"token not a string", [](nlohmann::json& j) { j["tokenizer.ggml.tokens"][1] = 7; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.tokens[1] is an integer"},
      {"short types", [](nlohmann::json& j) { j["tokenizer.ggml.token_type"] = {1, 1}; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.token_type has 2 entries"},
      {"long scores", [](nlohmann::json& j) { j["tokenizer.ggml.scores"] = {0, 0, 0, 0, 0}; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.scores has 5 entries"},
      {"bad type", [](nlohmann::json& j) { j["tokenizer.ggml.token_type"][0] = 9; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.token_type[0] is 9"},
      {"merge of a missing token", [](nlohmann::json& j) { j["tokenizer.ggml.merges"] = {"a c"}; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.merges[0] 'a c' names 'c'"},
      {"merge without space", [](nlohmann::json& j) { j["tokenizer.ggml.merges"] = {"ab"}; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.merges[0] 'ab' is not two tokens"},
      {"no merges", [](nlohmann::json& j) { j.erase("tokenizer.ggml.merges"); },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.merges is missing"},
      {"bos out of range", [](nlohmann::json& j) { j["tokenizer.ggml.bos_token_id"] = 4; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.bos_token_id is 4, outside"},
      {"eos negative", [](nlohmann::json& j) { j["tokenizer.ggml.eos_token_id"] = -2; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.eos_token_id is -2, outside"},
      {"eot a string", [](nlohmann::json& j) { j["tokenizer.ggml.eot_token_id"] = "3"; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.eot_token_id is a string"},
      {"add_bos not bool", [](nlohmann::json& j) { j["tokenizer.ggml.add_bos_token"] = 1; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.add_bos_token is an integer"},
      {"duplicate token", [](nlohmann::json& j) { j["tokenizer.ggml.tokens"][2] = "a"; },
       absl::StatusCode::kInvalidArgument, "tokenizer.ggml.tokens[2] 'a' repeats"},
      {"bad UTF-8", [](nlohmann::json& j) { j["tokenizer.ggml.tokens"][2] = "\xed\xa0\x80"; },
       absl::StatusCode::kInvalidArgument, "ill-formed UTF-8"},
      {"byte token not <0xXX>",
       [](nlohmann::json& j) { j["tokenizer.ggml.token_type"][2] = 6; },
       absl::StatusCode::kInvalidArgument, "is a byte token but not written <0xXX>"},
  };
  for (const BrokenCase& c : cases) {
    std::string text = "{not json";
    if (c.damage) {
      nlohmann::json j = TinyBpeJson();
      c.damage(j);
      // Invalid UTF-8 must reach the loader as bytes: dump() would refuse it.
      text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::ignore);
      if (std::string(c.what) == "bad UTF-8") {
        nlohmann::json ok = TinyBpeJson();
        ok["tokenizer.ggml.tokens"][2] = "@@@";
        text = ok.dump();
        text.replace(text.find("@@@"), 3, "\xed\xa0\x80");
      }
    }
    auto vocab = VocabularyFromGgufJson(text, "broken.gguf");
    EXPECT_EQ(vocab.status().code(), c.code) << c.what << ": " << vocab.status();
    EXPECT_THAT(vocab.status().message(), HasSubstr(c.message)) << c.what;
    EXPECT_THAT(vocab.status().message(), HasSubstr("broken.gguf")) << c.what;
  }
}

TEST(TokenizerCreateTest, RefusesTokensThatAreNotUtf8) {
  Vocabulary v;
  v.tokens = {"a", "b\xff"};
  auto tokenizer = Tokenizer::Create(v);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("tokenizer.ggml.tokens[1] is not valid UTF-8"));
}

TEST(TokenizerCreateTest, RefusesIdsOutOfRange) {
  Vocabulary v;
  v.tokens = {"a", "b"};
  v.eos_id = 5;
  auto tokenizer = Tokenizer::Create(v);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("eos_token_id is 5"));
}

}  // namespace
}  // namespace zcpack::runtime
