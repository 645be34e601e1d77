// The tokenizer.* keys of an exported GGUF file, in llama.cpp's types.
#ifndef ZCPACK_EXPORTER_GGUF_TOKENIZER_H_
#define ZCPACK_EXPORTER_GGUF_TOKENIZER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "zcpack/exporter/gguf_writer.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::exporter::internal {

// AddTokenizerKeysFromGgufJson(): the keys of a gguf-metadata blob (the
// GGUF tokenizer.* keys as one JSON object, converter::GgufTokenizerBlob())
// back as GGUF values, in the JSON's (sorted) order. The keys llama.cpp
// reads get the type it requires (tokens and merges string arrays,
// token_type int32, scores float32, *_token_id uint32, add_* bool, ...);
// a value that does not fit that type, and every other key, gets the type
// its JSON value has (strings, bools, integers as uint32/int32 or 64-bit
// when larger, other numbers as float64, arrays of one of these). Rendered
// as JSON again, the keys give the same text, so a conversion of the
// exported file carries the same blob. DataLoss naming `source` and the key
// for text that is not a JSON object, or a nested or mixed value.
absl::Status AddTokenizerKeysFromGgufJson(absl::string_view json, absl::string_view source,
                                          GgufMetadata* metadata);

// AddTokenizerKeysFromVocabulary(): llama.cpp's keys for a vocabulary read
// from a tokenizer.json or tokenizer.model by the runtime's loaders:
// tokenizer.ggml.model ("llama" for SentencePiece, "gpt2" for byte-level
// BPE), pre, tokens, token_type, scores (when it has them), merges (BPE),
// the special token ids it names, add_bos_token, add_eos_token,
// add_space_prefix (SentencePiece) and chat_template (when it has one).
void AddTokenizerKeysFromVocabulary(const runtime::Vocabulary& vocab, GgufMetadata* metadata);

}  // namespace zcpack::exporter::internal

#endif  // ZCPACK_EXPORTER_GGUF_TOKENIZER_H_
