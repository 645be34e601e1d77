// Seeds for zcpack_tokenizer_fuzzer: small valid inputs for each loader, each
// prefixed with the byte that selects it (0 GGUF tokenizer JSON, 1
// tokenizer.json, 2 tokenizer.model). The target tokenizes an input's last
// bytes; mutations turn them into text, and the tokenizer.model seed's last
// piece is a sample text to start from.
//   - a SentencePiece-style vocabulary (byte tokens, merges by score, a
//     user-defined token) as GGUF JSON, as tokenizer.json in both layouts
//     (Prepend + Replace normalizer, Metaspace), and as tokenizer.model;
//   - a byte-level vocabulary (the 256 byte symbols, merges, special tokens)
//     as GGUF JSON and as tokenizer.json with each known pre-tokenizer
//     (gpt-2, llama-bpe, qwen2), merges as strings and as pairs.
// Usage: <folder>.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/runtime/hf_tokenizer_files.h"
#include "zcpack/runtime/tokenizer.h"

namespace {

using zcpack::runtime::TokenizerModel;
using zcpack::runtime::TokenType;
using zcpack::runtime::Vocabulary;

bool Write(const std::string& dir, const std::string& name, char selector, const std::string& body) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.put(selector);
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  out.close();
  if (!out) std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
  return static_cast<bool>(out);
}

void Add(Vocabulary& v, const std::string& text, TokenType type, float score) {
  v.tokens.push_back(text);
  v.types.push_back(type);
  v.scores.push_back(score);
}

Vocabulary TinySpm() {
  Vocabulary v;
  v.model = TokenizerModel::kSpm;
  Add(v, "<unk>", TokenType::kUnknown, 0);
  Add(v, "<s>", TokenType::kControl, 0);
  Add(v, "</s>", TokenType::kControl, 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    Add(v, name, TokenType::kByte, 0);
  }
  float score = -1;
  for (const char* piece : {"\xe2\x96\x81h", "\xe2\x96\x81t", "he", "\xe2\x96\x81the", "ll", "\xe2\x96\x81hello",
                            "hell", "lo", "\xe2\x96\x81w", "or", "\xe2\x96\x81world", "ld", "wor", "\xe2\x96\x81\xe2\x96\x81",
                            "\xe2\x96\x81", "h", "e", "l", "o", "t", "w", "r", "d", "\xc3\xa4", "\xe6\x97\xa5"}) {
    Add(v, piece, TokenType::kNormal, score);
    score -= 1;
  }
  Add(v, "<|user|>", TokenType::kControl, 0);
  Add(v, "<tool>", TokenType::kUserDefined, 0);
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the
// others for U+0100 onwards, in byte order.
std::vector<std::string> ByteSymbols() {
  std::vector<std::string> out;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
    out.push_back(s);
  }
  return out;
}

Vocabulary TinyByteLevel(const std::string& pre) {
  Vocabulary v;
  v.model = TokenizerModel::kBpe;
  v.pre = pre;
  v.tokens = ByteSymbols();
  const std::string space = v.tokens[' '];
  const std::vector<std::pair<std::string, std::string>> merges = {
      {space, "t"}, {"h", "e"}, {space + "t", "he"}, {"l", "l"}, {space, "w"}, {"o", "r"},
      {space + "w", "or"}, {"ll", "o"}, {"e", "llo"}, {"h", "ello"}, {space, "h"}, {space + "h", "ello"},
      {"1", "2"}, {"12", "3"}, {"\xc4\x8a", "\xc4\x8a"}};
  for (const auto& [l, r] : merges) {
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(l + r);
  }
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  for (const char* special : {"<|endoftext|>", "<|begin_of_text|>", "<|im_start|>"}) {
    v.tokens.push_back(special);
    v.types.push_back(TokenType::kControl);
  }
  v.tokens.push_back("[PAD0]");
  v.types.push_back(TokenType::kUserDefined);
  v.eos_id = static_cast<int32_t>(v.tokens.size()) - 4;
  v.bos_id = pre == "llama-bpe" ? v.eos_id + 1 : v.eos_id;
  v.add_bos = pre == "llama-bpe";
  v.add_space_prefix = false;
  return v;
}

// The JSON object of tokenizer.* keys the converter carries for a GGUF
// (converter/gguf.h, GgufTokenizerBlob).
std::string GgufJson(const Vocabulary& v, const std::string& chat_template) {
  nlohmann::json j = nlohmann::json::object();
  j["tokenizer.ggml.model"] = v.model == TokenizerModel::kSpm ? "llama" : "gpt2";
  j["tokenizer.ggml.pre"] = v.pre;
  j["tokenizer.ggml.tokens"] = v.tokens;
  if (!v.scores.empty()) j["tokenizer.ggml.scores"] = v.scores;
  std::vector<int> types;
  for (TokenType t : v.types) types.push_back(static_cast<int>(t));
  j["tokenizer.ggml.token_type"] = types;
  if (!v.merges.empty()) j["tokenizer.ggml.merges"] = v.merges;
  if (v.bos_id >= 0) j["tokenizer.ggml.bos_token_id"] = v.bos_id;
  if (v.eos_id >= 0) j["tokenizer.ggml.eos_token_id"] = v.eos_id;
  if (v.unk_id >= 0) j["tokenizer.ggml.unknown_token_id"] = v.unk_id;
  j["tokenizer.ggml.add_bos_token"] = v.add_bos;
  j["tokenizer.ggml.add_eos_token"] = false;
  j["tokenizer.chat_template"] = chat_template;
  return j.dump();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  namespace t = zcpack::testing;
  const std::string dir = argv[1];
  // Sample text: a chat template's tail, the tokenizer.model's last piece.
  const std::string text = "Hello world <s> h\xc3\xa4 12 3\n\n";
  bool ok = true;

  Vocabulary spm = TinySpm();
  ok &= Write(dir, "spm.gguf.json", 0, GgufJson(spm, "<|user|>" + text));
  ok &= Write(dir, "spm_normalizer.tokenizer.json", 1, t::HfTokenizerJson(spm));
  ok &= Write(dir, "spm_metaspace.tokenizer.json", 1, t::HfTokenizerJson(spm, {.pair_merges = true, .metaspace = true}));
  Vocabulary spm_model = spm;
  spm_model.tokens.push_back(text);  // a last piece that holds the text
  spm_model.types.push_back(TokenType::kUserDefined);
  spm_model.scores.push_back(0);
  ok &= Write(dir, "spm.tokenizer.model", 2, t::SentencePieceModel(spm_model));

  for (const char* pre : {"gpt-2", "llama-bpe", "qwen2"}) {
    const Vocabulary bpe = TinyByteLevel(pre);
    const std::string name = pre;
    ok &= Write(dir, name + ".gguf.json", 0, GgufJson(bpe, text));
    ok &= Write(dir, name + ".tokenizer.json", 1, t::HfTokenizerJson(bpe, {.pair_merges = name == "qwen2"}));
  }
  return ok ? 0 : 1;
}
