// Byte-level BPE pre-tokenizers: the rules llama.cpp's llama-vocab applies
// for each tokenizer.ggml.pre name, and a PCRE2 splitter that cuts text into
// the pieces BPE merges within.
//
// A rule set is a list of regular expressions applied one after another, as
// llama.cpp's unicode_regex_split() does: the text starts as one piece; each
// expression then cuts every piece into its matches and the gaps between
// them (both kept, in order). Matching is confined to the piece, so a
// lookahead at a piece's end sees the end of the subject.
//
// The expressions are compiled with PCRE2_UTF and PCRE2_UCP (JIT-compiled
// where PCRE2 has JIT). \s and \S are rewritten to \p{White_Space} and
// \P{White_Space} before compiling: PCRE2's own \s also matches U+180E,
// which Unicode (and llama.cpp) no longer count as white space.
//
// Internal to the runtime; not installed.
#ifndef ZCPACK_RUNTIME_SRC_TOKENIZER_PRETOKENIZER_H_
#define ZCPACK_RUNTIME_SRC_TOKENIZER_PRETOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zcpack::runtime::internal {

// What a pre name means besides its expressions (llama_vocab::impl::load).
struct PreTokenizerRules {
  std::vector<std::string> patterns;
  // Detokenize() removes the space in " ?", " !", " .", " ,", " ' ",
  // " 's", " 'm", " 're", " 've" (llama.cpp's clean_spaces).
  bool clean_spaces = true;
  // A piece that is a token as a whole is emitted without merging.
  bool ignore_merges = false;
  // The add_bos default when the source does not say.
  bool add_bos = false;
};

// FindPreTokenizerRules(): the rules for `name` ("llama-bpe", "qwen2",
// "gpt-2", "default", ...), or nullptr for a name zcpack has no rules for.
const PreTokenizerRules* FindPreTokenizerRules(absl::string_view name);

// KnownPreTokenizerNames(): every name FindPreTokenizerRules() knows, sorted,
// comma-separated (for messages).
std::string KnownPreTokenizerNames();

// Compiled expressions of one rule set. Immutable after Create(); Split()
// may run on several threads at once (each call has its own match data).
class PreTokenizer {
 public:
  // Create(): compiles `patterns`; Internal naming the expression when PCRE2
  // refuses one (a bug in the rule table, never the input's fault).
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(
      const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Split(): appends to `ends` the end offset of each piece of `text`, in
  // order (the last is text.size(); nothing for empty text). `text` must be
  // valid UTF-8 (not checked here). Should PCRE2 fail on a piece (a JIT stack
  // or match limit, never seen with these expressions), that piece is kept
  // whole.
  void Split(absl::string_view text, std::vector<uint32_t>& ends) const;

  // PCRE2 match data and JIT stack for Split(), reusable across the calls of
  // one thread (one per Tokenize() call).
  class MatchState;
  struct MatchStateDeleter {
    void operator()(MatchState* state) const;
  };
  using MatchStatePtr = std::unique_ptr<MatchState, MatchStateDeleter>;
  static MatchStatePtr NewMatchState();
  // Split() with a caller's state, for many texts in a row.
  void Split(absl::string_view text, std::vector<uint32_t>& ends, MatchState& state) const;

  // The steps of Split() one at a time, for a caller that remembers what
  // repeated pieces give: expressions() is how many there are; Cut()
  // appends to `ends` the end offset of each piece that expression
  // `expression` (below expressions()) cuts `piece` into, relative to
  // `piece` (the last is piece.size(); nothing for an empty piece). Split()
  // is Cut() by the first expression, then by each next one on every piece
  // the one before gave.
  size_t expressions() const { return compiled_.size(); }
  void Cut(size_t expression, absl::string_view piece, std::vector<uint32_t>& ends,
           MatchState& state) const;

 private:
  struct Compiled;
  explicit PreTokenizer(std::vector<std::unique_ptr<Compiled>> compiled);
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_TOKENIZER_PRETOKENIZER_H_
