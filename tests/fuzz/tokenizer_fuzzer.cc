// Fuzz target: the tokenizer must never crash, hang or read out of bounds,
// whatever the vocabulary metadata and the text. Input: the JSON of GGUF
// tokenizer.* keys (as the converter carries them), a NUL byte, then the
// text. An accepted vocabulary tokenizes the text with and without special
// tokens, and the ids go back through Detokenize() and DetokenizeStream.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "zcpack/runtime/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zcpack::runtime;
  const char* chars = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(chars, '\0', size);
  const size_t json_size = nul == nullptr ? size : static_cast<const char*>(nul) - chars;
  const std::string json(chars, json_size);
  const std::string text = nul == nullptr ? std::string() : std::string(chars + json_size + 1, size - json_size - 1);
  auto vocab = VocabularyFromGgufJson(json, "fuzz.json");
  if (!vocab.ok()) return 0;
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  if (!tokenizer.ok()) return 0;
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids =
        (*tokenizer)->Tokenize(text, {.add_special = special, .parse_special = special});
    for (int32_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= (*tokenizer)->size()) __builtin_trap();
      (void)(*tokenizer)->IsEndOfGeneration(id);
    }
    (void)(*tokenizer)->Detokenize(ids, special);
    DetokenizeStream stream(**tokenizer, special);
    for (int32_t id : ids) (void)stream.Push(id);
    (void)stream.Finish();
  }
  return 0;
}
