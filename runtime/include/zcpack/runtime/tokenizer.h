// Tokenizers: text to token ids and back, as llama.cpp's llama-vocab does it.
//
// Two algorithms, chosen by the vocabulary's model:
//   - kSpm ("llama" in GGUF, SentencePiece BPE as llama 2 and phi-3 use it):
//     spaces become U+2581, an optional leading space is added, symbols are
//     merged greedily by the highest-scoring adjacent pair, and what the
//     vocabulary lacks falls back to <0xXX> byte tokens.
//   - kBpe ("gpt2" in GGUF, byte-level BPE as llama 3, qwen2 and gpt-2 use
//     it): the text is split by the pre-tokenizer's regular expressions
//     (PCRE2 with Unicode properties, never hand-written tables), each piece
//     is mapped to the byte-level alphabet and merged by merge rank.
// Special and user-defined tokens are matched in the text first (only when
// asked, as llama.cpp's `parse_special`), and the text between them goes
// through the algorithm.
//
// Decoding is lazy everywhere it is carried: a container's tokenizer blobs
// are decoded on first use, never by Open() (see model.h).
//
// Trust: every loader checks what it reads (array lengths agree, strings are
// UTF-8, merges name tokens that exist, ids are in range) and returns
// InvalidArgument naming the source and the key or entry that is wrong.
// Nothing a loader reads can make it crash, hang or allocate more than a
// bounded multiple of its input.
//
// Thread-safety: a Tokenizer is immutable after Create(); all const methods
// may be called from several threads at once.
#ifndef ZCPACK_RUNTIME_TOKENIZER_H_
#define ZCPACK_RUNTIME_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"

namespace zcpack::runtime {

enum class TokenizerModel : int { kSpm = 0, kBpe = 1 };

// GGUF's tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Vocabulary: everything a Tokenizer is built from, in llama.cpp's terms
// (the GGUF tokenizer.ggml.* keys). The loaders below fill it; Create()
// checks it.
struct Vocabulary {
  TokenizerModel model = TokenizerModel::kSpm;
  // tokenizer.ggml.pre: the pre-tokenizer's name ("default", "llama-bpe",
  // "qwen2", "gpt-2", ...). Create() refuses a name it has no rules for.
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;     // empty, or one per token
  std::vector<TokenType> types;  // empty (all kNormal), or one per token
  // BPE merges in rank order, each "left right" as GGUF stores them.
  std::vector<std::string> merges;
  int32_t bos_id = -1, eos_id = -1, eot_id = -1, eom_id = -1, unk_id = -1, pad_id = -1;
  // Fill-in-the-middle tokens (prefix, suffix, middle, pad, repository,
  // file separator); pad, repository and separator end generation, as in
  // llama.cpp. -1 where the source does not name them.
  int32_t fim_pre_id = -1, fim_suf_id = -1, fim_mid_id = -1;
  int32_t fim_pad_id = -1, fim_rep_id = -1, fim_sep_id = -1;
  // Whether Tokenize() with add_special adds BOS / EOS.
  bool add_bos = false;
  bool add_eos = false;
  // SPM: whether a leading space is added (tokenizer.ggml.add_space_prefix).
  bool add_space_prefix = true;
  // tokenizer.chat_template, empty when absent.
  std::string chat_template;
  // The model's name (GGUF general.name), empty when unknown. llama.cpp keys
  // one rule on it: in a Phi-3 model ("phi-3" or "phi3" in the name) special
  // tokens matched in the text take the white space after them. The GGUF
  // tokenizer blob does not carry it; a caller that has the name sets it.
  std::string model_name;
};

// SpecialTokenIds(): the vocabulary's special-token ids (-1: none) with
// their GGUF metadata keys (tokenizer.ggml.bos_token_id, ...), in one fixed
// order: what the loaders check and the GGUF writer writes.
std::array<std::pair<const char*, int32_t>, 12> SpecialTokenIds(const Vocabulary& vocab);

// VocabularyFromGgufJson(): from the JSON object of GGUF tokenizer.* keys that
// the converter carries as a "gguf-metadata" blob (converter/gguf.h,
// GgufTokenizerBlob). `source` names the file in errors.
absl::StatusOr<Vocabulary> VocabularyFromGgufJson(absl::string_view json, absl::string_view source);

// VocabularyFromHfTokenizerJson(): from a Hugging Face tokenizer.json
// (model.type "BPE", byte-level or with byte fallback; added_tokens; the
// pre-tokenizer recognised from its regular expressions and mapped to
// llama.cpp's names).
absl::StatusOr<Vocabulary> VocabularyFromHfTokenizerJson(absl::string_view json,
                                                         absl::string_view source);

// VocabularyFromSentencePieceModel(): from a SentencePiece tokenizer.model
// (its ModelProto bytes).
absl::StatusOr<Vocabulary> VocabularyFromSentencePieceModel(absl::string_view bytes,
                                                            absl::string_view source);

struct TokenizeOptions {
  // Add BOS (and EOS) where the vocabulary says to (add_bos / add_eos).
  bool add_special = false;
  // Match special and user-defined tokens written in the text.
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Create(): checks `vocab` (InvalidArgument naming what is wrong;
  // Unimplemented for a BPE pre-tokenizer name zcpack has no rules for) and
  // builds the lookup tables. As llama.cpp does, it then finds by token text
  // the EOT, EOM and fill-in-the-middle tokens the vocabulary leaves at -1
  // ("<|eot_id|>", "<|im_end|>", "<|fim_prefix|>", ...; the lowest id where
  // several match) and stores them in vocabulary(), marks those and the
  // other end-of-generation texts as control tokens, and names an empty
  // token "[EMPTY_<id>]".
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocabulary vocab);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Tokenize(): the ids llama.cpp's llama_tokenize() gives for `text` with the
  // same options. Invalid UTF-8 is tokenized as llama.cpp does (SPM: byte
  // tokens; BPE: each malformed byte as U+FFFD), never refused. The one
  // difference: BPE reads a UTF-8-encoded surrogate or a value above
  // U+10FFFF as U+FFFD, where llama.cpp keeps the code point.
  // Special tokens in the text (parse_special) are matched as llama.cpp's
  // tokenizer_st_partition() does: longest token first, each taking its
  // leftmost occurrences. User-defined tokens are matched even without
  // parse_special, as in llama.cpp. A text longer than 4 GiB - 1 bytes is
  // tokenized in pieces of that size (ids may differ from llama.cpp's at the
  // seams).
  std::vector<int32_t> Tokenize(absl::string_view text, TokenizeOptions options = {}) const;

  // TokenToPiece(): the bytes token `id` stands for (SPM U+2581 -> space,
  // <0xXX> -> that byte, byte-level BPE symbols -> their bytes). Control
  // tokens give their text only when `special`. Empty for an id out of range.
  std::string TokenToPiece(int32_t id, bool special = false) const;

  // Detokenize(): the concatenated pieces, with SPM's leading space removed
  // as llama.cpp's llama_detokenize() does (remove_special false,
  // unparse_special = `special`), and for BPE pre-tokenizers that clean
  // spaces, the space before ? ! . , and some contractions removed.
  std::string Detokenize(std::span<const int32_t> ids, bool special = false) const;

  // Whether `id` ends generation (EOS, EOT, EOM, and the vocabulary's other
  // end-of-generation tokens).
  bool IsEndOfGeneration(int32_t id) const;

  const Vocabulary& vocabulary() const;
  size_t size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// DetokenizeStream: text for ids that arrive one at a time (generation), to
// print as it comes. Each Push() returns the new text: the token's piece as
// Detokenize() writes it (with SPM's leading space removed from the first
// piece when `at_start`: the ids begin the text rather than continue a
// prompt), except that a UTF-8 sequence split across tokens is held back
// until its last byte arrives. BPE's clean_spaces (" ," -> ",") is not
// applied: it depends on text not yet generated. Holds a reference to
// `tokenizer`, which must outlive it. Not thread-safe (one per stream).
class DetokenizeStream {
 public:
  explicit DetokenizeStream(const Tokenizer& tokenizer, bool special = false, bool at_start = true);

  // Push(): the text that `id` completes (empty while a sequence is open).
  std::string Push(int32_t id);
  // Finish(): whatever is still held back (an incomplete sequence at the end
  // of the stream), as it is; the stream is then empty.
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  bool remove_space_;
  std::string pending_;
};

// TokenizerBlobIndex(): the index in c.manifest().tokenizers() of the blob
// the runtime reads: the first of kind gguf-metadata, else tokenizer.json,
// else tokenizer.model. NotFound, naming the file (and the kinds it carries),
// when there is none of these. Reads the manifest only.
absl::StatusOr<size_t> TokenizerBlobIndex(const format::Container& c);

// VocabularyFromContainer(): blob `index` (TokenizerBlobIndex()) decoded
// (Container::TokenizerData()) and read by its kind's loader above, with the
// BOS/EOS ids the vocabulary lacks taken from the model info; not checked by
// Tokenizer::Create(). The container's and the loaders' errors, the
// loaders' prefixed with the file and the blob. `index` must be in range.
absl::StatusOr<Vocabulary> VocabularyFromContainer(const format::Container& c, size_t index);

// TokenizerFromContainer(): the tokenizer a container carries, decoded now
// (Container::TokenizerData()) from its first blob of kind gguf-metadata,
// else tokenizer.json, else tokenizer.model; BOS/EOS ids the vocabulary
// lacks come from the model info. NotFound when it carries none of these;
// the loaders' and Create()'s errors, prefixed with the file and blob,
// otherwise. `kind`, when given, receives the blob kind used.
// Model::tokenizer() calls this once, on first use.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromContainer(const format::Container& c,
                                                                  std::string* kind = nullptr);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_TOKENIZER_H_
