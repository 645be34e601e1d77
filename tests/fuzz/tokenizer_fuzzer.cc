// Fuzz target: every tokenizer loader must never crash, hang or run away
// with memory, whatever the bytes, and neither must a tokenizer built from
// what a loader accepts.
//
// Input: byte 0 picks the loader (modulo 3): 0 the GGUF tokenizer.* JSON
// (VocabularyFromGgufJson), 1 a Hugging Face tokenizer.json, 2 a
// SentencePiece tokenizer.model; the remaining bytes are the file. An
// accepted vocabulary goes through Tokenizer::Create(); an accepted tokenizer
// tokenizes the file's last bytes (up to 48, any bytes, UTF-8 or not) with
// and without special-token parsing, detokenizes the ids, and renders a few
// pieces, including ids out of range. An id outside the vocabulary aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/runtime/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zcpack::runtime;
  if (size == 0) return 0;
  const absl::string_view file(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<Vocabulary> vocab;
  switch (data[0] % 3) {
    case 0: vocab = VocabularyFromGgufJson(file, "fuzz.gguf"); break;
    case 1: vocab = VocabularyFromHfTokenizerJson(file, "tokenizer.json"); break;
    default: vocab = VocabularyFromSentencePieceModel(file, "tokenizer.model"); break;
  }
  if (!vocab.ok()) return 0;
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  if (!tokenizer.ok()) return 0;
  const Tokenizer& t = **tokenizer;
  const int64_t n = static_cast<int64_t>(t.size());
  const absl::string_view text = file.substr(file.size() - std::min<size_t>(file.size(), 48));
  for (const bool special : {false, true}) {
    const std::vector<int32_t> ids = t.Tokenize(text, {.add_special = special, .parse_special = special});
    for (const int32_t id : ids) {
      if (id < 0 || id >= n) std::abort();
    }
    (void)t.Detokenize(ids, special);
    (void)t.Detokenize(ids, !special);
  }
  for (const int64_t id : {int64_t{-1}, int64_t{0}, n - 1, n}) {
    (void)t.TokenToPiece(static_cast<int32_t>(id), true);
    (void)t.TokenToPiece(static_cast<int32_t>(id), false);
    (void)t.IsEndOfGeneration(static_cast<int32_t>(id));
  }
  return 0;
}
