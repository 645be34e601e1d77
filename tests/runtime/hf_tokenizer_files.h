// Hugging Face tokenizer files written from a Vocabulary, for tests and fuzz
// seeds: a tokenizer.json laid out as the `tokenizers` library serialises the
// model families zcpack reads (llama 3, qwen2 and gpt-2 byte-level BPE; llama 2
// and phi-3 SentencePiece-style BPE), and a SentencePiece tokenizer.model
// (ModelProto bytes). There is no network in the test environment, so the
// files are made from the GGUF vocabularies llama.cpp ships, and a loader
// that reads them back must give what llama.cpp's converter would have put
// in that GGUF.
#ifndef ZCPACK_TESTS_RUNTIME_HF_TOKENIZER_FILES_H_
#define ZCPACK_TESTS_RUNTIME_HF_TOKENIZER_FILES_H_

#include <string>

#include "zcpack/runtime/tokenizer.h"

namespace zcpack::testing {

struct HfJsonStyle {
  // Merges as ["left", "right"] pairs (tokenizers 0.20 and later) instead of
  // "left right" strings.
  bool pair_merges = false;
  // SentencePiece-style: a Metaspace pre-tokenizer (transformers' non-legacy
  // llama layout) instead of the Prepend + Replace normalizer.
  bool metaspace = false;
};

// HfTokenizerJson(): tokenizer.json text for `vocab`.
//   kBpe: normal tokens in model.vocab, control / user-defined ones only in
//   added_tokens; the pre-tokenizer that Hugging Face writes for vocab.pre
//   ("llama-bpe", "qwen2" or "gpt-2"; anything else aborts the test program);
//   a TemplateProcessing that adds BOS when vocab.add_bos.
//   kSpm: every token up to the last normal or byte one in model.vocab, the
//   others only in added_tokens; merges made from the scores as transformers'
//   SentencePiece converter makes them (every split of a normal piece into
//   two normal pieces, ordered by the piece's score, highest first).
std::string HfTokenizerJson(const runtime::Vocabulary& vocab, const HfJsonStyle& style = {});

// SentencePieceModel(): ModelProto bytes of a BPE SentencePiece model with
// vocab's tokens, scores (0 when absent) and types, its unk/bos/eos/pad ids
// and add_space_prefix as add_dummy_prefix.
std::string SentencePieceModel(const runtime::Vocabulary& vocab);

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_RUNTIME_HF_TOKENIZER_FILES_H_
