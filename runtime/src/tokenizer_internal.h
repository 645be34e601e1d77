// Shared between the tokenizer's loaders and its core. Internal to the
// runtime; not installed.
#ifndef ZCPACK_RUNTIME_SRC_TOKENIZER_INTERNAL_H_
#define ZCPACK_RUNTIME_SRC_TOKENIZER_INTERNAL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime::internal {

// CheckVocabulary(): everything Tokenizer::Create() requires of `vocab`:
// tokens present, UTF-8 and distinct (empty ones aside); scores and types
// empty or one per token; types 0 to 6, byte tokens written <0xXX>; every id
// -1 or in range; BOS / EOS present when they are to be added; for BPE a
// known pre-tokenizer (Unimplemented otherwise) and merges "left right" of
// two existing tokens. InvalidArgument naming `source` and the GGUF key (and
// index) that is wrong.
absl::Status CheckVocabulary(const Vocabulary& vocab, absl::string_view source);

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_TOKENIZER_INTERNAL_H_
