// Seeds for zcpack_tokenizer_fuzzer: small SentencePiece and byte-level BPE
// vocabularies (gpt-2, llama-bpe and qwen2 pre-tokenizers, special and
// user-defined tokens, byte tokens), each with a text. Usage: <folder>.
#include <cstdio>
#include <fstream>
#include <string>

#include "nlohmann/json.hpp"

namespace {

bool Write(const std::string& path, const nlohmann::json& vocab, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  const std::string json = vocab.dump();
  out.write(json.data(), static_cast<std::streamsize>(json.size()));
  out.put('\0');
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  return static_cast<bool>(out);
}

// The 256 byte-level symbols of GPT-2's alphabet, as UTF-8.
std::vector<std::string> ByteLevelAlphabet() {
  std::vector<std::string> out;
  unsigned next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const unsigned cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  nlohmann::json spm = {
      {"tokenizer.ggml.model", "llama"},
      {"tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x0A>", "<0xE2>", "\u2581", "\u2581a", "ab",
                                 "\u2581ab", "b", "a", "<|user|>"}},
      {"tokenizer.ggml.scores", {0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6, 0}},
      {"tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 4}},
  };
  ok &= Write(dir + "/spm", spm, "ab ab\n<s>a</s> <|user|>b\xE2\x82");
  std::vector<std::string> tokens = ByteLevelAlphabet();
  for (const char* t : {"\xC4\xA0" "a", "ab", "\xC4\xA0" "ab", "<|endoftext|>", "<|im_end|>"}) tokens.push_back(t);
  std::vector<int> types(tokens.size(), 1);
  types[types.size() - 2] = 3;
  types[types.size() - 1] = 4;
  for (const char* pre : {"gpt-2", "llama-bpe", "qwen2"}) {
    nlohmann::json bpe = {
        {"tokenizer.ggml.model", "gpt2"},
        {"tokenizer.ggml.pre", pre},
        {"tokenizer.ggml.tokens", tokens},
        {"tokenizer.ggml.token_type", types},
        {"tokenizer.ggml.merges", {"\xC4\xA0 a", "a b", "\xC4\xA0" "a b"}},
        {"tokenizer.ggml.bos_token_id", 256 + 3},
        {"tokenizer.ggml.eos_token_id", 256 + 3},
    };
    ok &= Write(dir + "/bpe-" + pre, bpe, "ab ab's  12345\n\n<|endoftext|><|im_end|> \xF0\x9F\xA6\x99\xff");
  }
  return ok ? 0 : 1;
}
