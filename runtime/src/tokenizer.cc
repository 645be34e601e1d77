// The tokenizer core: vocabulary checks, special-token partitioning, SPM and
// byte-level BPE tokenization, pieces and detokenization, all as llama.cpp's
// src/llama-vocab.cpp behaves (read for its behaviour; the code is zcpack's).
#include "zcpack/runtime/tokenizer.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cctype>
#include <cstring>
#include <limits>
#include <queue>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "tokenizer_internal.h"
#include "tokenizer_pretokenizer.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::runtime {
namespace {

using internal::PreTokenizer;
using internal::PreTokenizerRules;

// Token attributes, as llama.cpp derives them from the token types and then
// adjusts them by token text (llama_token_attr). Bits, because the
// adjustments add CONTROL to a token that keeps its type.
enum : uint32_t {
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  // Matched as a special token, it also takes the white space before it
  // (LSTRIP) or after it (RSTRIP) out of the text.
  kAttrLstrip = 1u << 6,
  kAttrRstrip = 1u << 7,
};

uint32_t AttrOfType(TokenType type) {
  switch (type) {
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kByte: return kAttrByte;
    case TokenType::kUndefined: break;
  }
  return 0;
}

constexpr char kSpmSpace[] = "\xE2\x96\x81";  // U+2581

// SPM's classes of characters for cutting text between words: each ASCII
// character its own class, U+2581 one, everything else (other characters,
// and the bytes of malformed UTF-8 a symbol holds) one more.
constexpr int kSpmSpaceClass = 128;
constexpr int kSpmOtherClass = 129;
constexpr int kSpmCharClasses = 130;

// The class of `symbol`, one character (or malformed bytes).
inline int SpmCharClass(absl::string_view symbol) {
  if (symbol.size() == 1 && static_cast<unsigned char>(symbol[0]) < 0x80) {
    return static_cast<unsigned char>(symbol[0]);
  }
  if (symbol == kSpmSpace) return kSpmSpaceClass;
  return kSpmOtherClass;
}

// How many of bytes[0, n) are zero before the first that is not (n when
// none is).
inline size_t LeadingZeroBytes(const uint8_t* bytes, size_t n) {
  size_t k = 0;
  for (; k + sizeof(uint64_t) <= n; k += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, bytes + k, sizeof(word));
    if (word != 0) break;
  }
  while (k < n && bytes[k] == 0) ++k;
  return k;
}

inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

void AppendUtf8(uint32_t cpt, std::string& out) {
  if (cpt < 0x80) {
    out += static_cast<char>(cpt);
  } else if (cpt < 0x800) {
    out += static_cast<char>(0xC0 | (cpt >> 6));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += static_cast<char>(0xE0 | (cpt >> 12));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cpt >> 18));
    out += static_cast<char>(0x80 | ((cpt >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  }
}

// The GPT-2 byte-level alphabet: byte b is written as code point
// ByteToCodePoint(b). Printable Latin-1 bytes stand for themselves; the other
// 68 take U+0100 onwards, in byte order.
std::array<uint32_t, 256> ByteToCodePointTable() {
  std::array<uint32_t, 256> table{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = printable ? b : next++;
  }
  return table;
}

const std::array<uint32_t, 256>& ByteToCodePoint() {
  static const std::array<uint32_t, 256> table = ByteToCodePointTable();
  return table;
}

// The byte code point `cpt` stands for, or -1 when it is not in the alphabet.
int CodePointToByte(uint32_t cpt) {
  static const absl::flat_hash_map<uint32_t, uint8_t>* map = [] {
    auto* m = new absl::flat_hash_map<uint32_t, uint8_t>();
    for (int b = 0; b < 256; ++b) m->emplace(ByteToCodePoint()[b], static_cast<uint8_t>(b));
    return m;
  }();
  auto it = map->find(cpt);
  return it == map->end() ? -1 : it->second;
}

// Decodes one code point at text[*offset] as llama.cpp's
// unicode_cpt_from_utf8() does (lead byte and continuation bits only: an
// overlong form decodes to its value). False for a malformed sequence.
bool DecodeLenient(absl::string_view text, size_t* offset, uint32_t* cpt) {
  const size_t i = *offset;
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = b(i);
  const auto cont = [&](size_t k) { return k < text.size() && (b(k) & 0xC0) == 0x80; };
  if (lead < 0x80) {
    *cpt = lead;
    *offset = i + 1;
    return true;
  }
  if ((lead & 0x40) == 0) return false;
  if ((lead & 0x20) == 0) {
    if (!cont(i + 1)) return false;
    *cpt = ((lead & 0x1Fu) << 6) | (b(i + 1) & 0x3Fu);
    *offset = i + 2;
    return true;
  }
  if ((lead & 0x10) == 0) {
    if (!cont(i + 1) || !cont(i + 2)) return false;
    *cpt = ((lead & 0x0Fu) << 12) | ((b(i + 1) & 0x3Fu) << 6) | (b(i + 2) & 0x3Fu);
    *offset = i + 3;
    return true;
  }
  if ((lead & 0x08) == 0) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return false;
    *cpt = ((lead & 0x07u) << 18) | ((b(i + 1) & 0x3Fu) << 12) | ((b(i + 2) & 0x3Fu) << 6) |
           (b(i + 3) & 0x3Fu);
    *offset = i + 4;
    return true;
  }
  return false;
}

// The text llama.cpp's BPE path sees: every malformed byte becomes U+FFFD
// and overlong forms their shortest form. (llama.cpp keeps surrogates and
// values above U+10FFFF, which PCRE2 cannot match; those become U+FFFD here,
// the one place zcpack differs, for input no encoder produces.)
std::string CanonicalUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  size_t offset = 0;
  while (offset < text.size()) {
    uint32_t cpt = 0;
    if (!DecodeLenient(text, &offset, &cpt)) {
      ++offset;
      cpt = 0xFFFD;
    }
    if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) cpt = 0xFFFD;
    AppendUtf8(cpt, out);
  }
  return out;
}

// llama.cpp's llama_decode_text(): a byte-level token's text back to bytes.
// A code point outside the alphabet is written as "[UNK_BYTE_0x<hex>" + the
// whole text + "]", as llama.cpp does.
std::string DecodeByteLevel(absl::string_view text) {
  std::string out;
  size_t offset = 0;
  while (offset < text.size()) {
    uint32_t cpt = 0;
    if (!DecodeLenient(text, &offset, &cpt)) {
      ++offset;
      cpt = 0xFFFD;
    }
    const int byte = CodePointToByte(cpt);
    if (byte >= 0) {
      out += static_cast<char>(byte);
      continue;
    }
    std::string utf8;
    AppendUtf8(cpt, utf8);
    out += "[UNK_BYTE_0x";
    for (unsigned char c : utf8) absl::StrAppendFormat(&out, "%02x", c);
    out.append(text.data(), text.size());
    out += "]";
  }
  return out;
}

// Whether every code point of `text` is in the byte-level alphabet.
bool IsByteLevelText(absl::string_view text) {
  size_t offset = 0;
  while (offset < text.size()) {
    uint32_t cpt = 0;
    if (!DecodeLenient(text, &offset, &cpt)) return false;
    if (CodePointToByte(cpt) < 0) return false;
  }
  return true;
}

// "<0xXX>" (uppercase or lowercase hex) -> XX; -1 otherwise.
int ParseByteToken(absl::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

// Token texts llama.cpp recognises by name (llama_vocab::impl::load).
constexpr absl::string_view kEotTexts[] = {
    "<|eot_id|>",  "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>",       "_<EOT>",     "[EOT]",   "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>"};
constexpr absl::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr absl::string_view kFimPreTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>",          "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr absl::string_view kFimSufTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
    "<SUF>",          "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr absl::string_view kFimMidTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>",          "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
constexpr absl::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                              "[PAD]"};
constexpr absl::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                              "<REPO>", "<reponame>"};
constexpr absl::string_view kFimSepTexts[] = {"<|file_sep|>"};
constexpr absl::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};
constexpr absl::string_view kForcedUserDefinedTexts[] = {"<|channel|>", "<|message|>", "<|start|>",
                                                         "<|constrain|>"};

struct BpeMerge {
  int32_t rank;
  int32_t merged;  // id of the merged text, or -1 when it is not a token
};

// One piece of the text after special-token partitioning: a token matched
// in the text (token >= 0) or raw text [begin, end).
struct Fragment {
  int32_t token;
  uint32_t begin;
  uint32_t end;
};

// A symbol of the merge loops: bytes [start, start + len) of the word, the
// token it is (or -1), and its alive neighbours.
struct Symbol {
  uint32_t start;
  uint32_t len;
  int32_t prev;
  int32_t next;
  int32_t id;
};

struct SpmBigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
  int32_t id;
};
struct SpmBigramOrder {
  // Highest score first; the leftmost first among equals.
  bool operator()(const SpmBigram& a, const SpmBigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

struct BpeBigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t size;
  int32_t id;
};
struct BpeBigramOrder {
  // Lowest rank first; the leftmost first among equals.
  bool operator()(const BpeBigram& a, const BpeBigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Applies the merges queued in `heap` (a heap under `order`) best first: a
// bigram is stale when one side has merged since (symbols only grow, so the
// sizes tell); otherwise its right symbol joins its left, and try_add queues
// the merges the new symbol makes with its neighbours. The one merge loop of
// SPM (by score) and BPE (by rank).
template <typename Bigram, typename Order, typename TryAdd>
void RunMerges(std::vector<Symbol>& symbols, std::vector<Bigram>& heap, const Order& order,
               const TryAdd& try_add) {
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), order);
    const Bigram bigram = heap.back();
    heap.pop_back();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != bigram.size) continue;
    left.len += right.len;
    left.id = bigram.id;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }
}

// The ids of the words already merged in one Tokenize() call. Text repeats
// (indentation, common words, identifiers), so most words are found here
// instead of being merged again. Words longer than kMaxWord are not kept,
// nor any once kMaxEntries are.
class WordCache {
 public:
  // Appends the ids of `word` to `out`: those kept for it, else what
  // merge(word, out) appends, which are then kept.
  template <typename Merge>
  void Append(absl::string_view word, std::vector<int32_t>& out, const Merge& merge) {
    if (word.size() > kMaxWord) {
      merge(word, out);
      return;
    }
    if (auto it = map_.find(word); it != map_.end()) {
      const auto begin = ids_.begin() + it->second.first;
      out.insert(out.end(), begin, begin + it->second.second);
      return;
    }
    const size_t before = out.size();
    merge(word, out);
    if (map_.size() >= kMaxEntries) return;
    const auto offset = static_cast<uint32_t>(ids_.size());
    ids_.insert(ids_.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
    map_.emplace(std::string(word),
                 std::make_pair(offset, static_cast<uint32_t>(out.size() - before)));
  }

 private:
  // Long enough for a deep indentation and the word after it (SPM keeps
  // them together).
  static constexpr size_t kMaxWord = 256;
  static constexpr size_t kMaxEntries = 1 << 16;
  // word -> (offset in ids_, count)
  absl::flat_hash_map<std::string, std::pair<uint32_t, uint32_t>> map_;
  std::vector<int32_t> ids_;
};

// Token texts as a byte trie, for finding special tokens in text. Node 0 is
// the root. Each node's edges lie together, so that a step is a short scan
// (the root's, a table) rather than a hash lookup: Partition() steps once
// per byte of every match, which white-space tokens make many.
class TokenTrie {
 public:
  TokenTrie() { root_.fill(-1); }

  // Add(): `text` (not empty) leads to `token`. Only before Finish().
  void Add(absl::string_view text, int32_t token) {
    int32_t node = 0;
    for (unsigned char c : text) {
      int32_t next = -1;
      for (const auto& [byte, child] : building_[node]) {
        if (byte == c) next = child;
      }
      if (next < 0) {
        next = static_cast<int32_t>(token_.size());
        token_.push_back(-1);
        building_[node].emplace_back(c, next);
        building_.emplace_back();
      }
      node = next;
    }
    token_[node] = token;
  }

  // Finish(): lays the edges out for Child().
  void Finish() {
    first_edge_.assign(1, 0);
    for (const auto& edges : building_) {
      for (const auto& [byte, child] : edges) {
        edge_byte_.push_back(byte);
        edge_node_.push_back(child);
      }
      first_edge_.push_back(static_cast<uint32_t>(edge_byte_.size()));
    }
    for (const auto& [byte, child] : building_[0]) root_[byte] = child;
    // A child is always made after its parent, so in node order the
    // parent's value is known when the child's is set.
    shorter_token_.assign(token_.size(), -1);
    for (size_t node = 0; node < building_.size(); ++node) {
      const int32_t above = token_[node] >= 0 ? static_cast<int32_t>(node) : shorter_token_[node];
      for (const auto& edge : building_[node]) shorter_token_[edge.second] = above;
    }
    building_.clear();
  }

  // Root(): Child(0, byte).
  int32_t Root(unsigned char byte) const { return root_[byte]; }
  // Child(): the node `byte` leads to from `node`, or -1.
  int32_t Child(int32_t node, unsigned char byte) const {
    if (node == 0) return root_[byte];
    for (uint32_t e = first_edge_[node]; e < first_edge_[node + 1]; ++e) {
      if (edge_byte_[e] == byte) return edge_node_[e];
    }
    return -1;
  }
  // Token(): the token whose text ends at `node`, or -1.
  int32_t Token(int32_t node) const { return token_[node]; }
  // ShorterToken(): the nearest node above `node` that ends a token (the
  // longest token that is a proper prefix of its text), or -1.
  int32_t ShorterToken(int32_t node) const { return shorter_token_[node]; }

 private:
  std::vector<int32_t> token_{-1};  // node -> token
  std::vector<std::vector<std::pair<uint8_t, int32_t>>> building_{1};
  std::vector<int32_t> shorter_token_;  // node -> ShorterToken()
  std::vector<uint32_t> first_edge_;     // node -> its edges, to first_edge_[node + 1]
  std::vector<uint8_t> edge_byte_;
  std::vector<int32_t> edge_node_;
  std::array<int32_t, 256> root_;
};

}  // namespace

struct Tokenizer::Impl {
  Vocabulary vocab;
  std::vector<uint32_t> attrs;
  absl::flat_hash_map<absl::string_view, int32_t> text_to_id;  // views of vocab.tokens
  std::vector<std::string> pieces;                             // TokenToPiece(id, true)
  absl::flat_hash_set<int32_t> eog;

  // Special-token matching: a trie over the texts of control, user-defined
  // and unknown tokens; the priority of each (its place in llama.cpp's
  // longest-first order) for parse_special, and for plain text (only
  // user-defined tokens that are not control or unknown), -1 when it is not
  // matched then.
  TokenTrie trie;
  std::vector<int32_t> priority_special;
  std::vector<int32_t> priority_plain;
  int32_t num_priorities = 0;  // priorities are 0 to num_priorities - 1
  bool any_plain = false;
  bool any_special = false;

  // SPM. A merge makes a token of two adjacent symbols, so no merge crosses
  // a place in the text where the two characters either side never stand
  // side by side in a token. The text is cut there (between whole symbols)
  // and each word merged on its own: the same ids, and words that repeat
  // are looked up instead of merged again.
  std::array<int32_t, 256> spm_byte_token{};
  // spm_joined[a][b]: some token has a character of class a right before
  // one of class b (SpmCharClass()).
  std::array<std::bitset<kSpmCharClasses>, kSpmCharClasses> spm_joined{};
  // The id SpmMerge() gives a word of one ASCII character (-1: none).
  std::array<int32_t, 128> spm_ascii_word{};

  // BPE.
  const PreTokenizerRules* rules = nullptr;
  std::unique_ptr<PreTokenizer> pre;
  std::array<int32_t, 256> bpe_byte_token{};               // raw byte -> its symbol's token
  std::array<std::array<int32_t, 2>, 256> bpe_fallback{};  // raw byte -> tokens when unmerged
  absl::flat_hash_map<uint64_t, BpeMerge> merges;          // (left << 32 | right)
  // The merge of two adjacent raw bytes' symbols, (first << 8 | second) ->
  // merges' entry for their tokens, rank -1 for none: a word's first
  // bigrams, the most looked up, from a table small enough to stay in the
  // core's cache instead of the 150k-entry map.
  std::vector<BpeMerge> byte_pair_merges;
  std::vector<std::string> raw_texts;                      // ignore_merges: token bytes
  absl::flat_hash_map<absl::string_view, int32_t> raw_to_id;

  int32_t Find(absl::string_view text) const {
    auto it = text_to_id.find(text);
    return it == text_to_id.end() ? -1 : it->second;
  }

  void Partition(absl::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  // What SpmTokenize() keeps across the fragments of one Tokenize() call.
  struct SpmScratch {
    std::string text;  // the fragment, spaces written U+2581
    WordCache cache;
    std::vector<Symbol> symbols;
    std::vector<SpmBigram> heap;
  };
  void SpmTokenize(absl::string_view fragment, bool add_prefix, SpmScratch& scratch,
                   std::vector<int32_t>& out) const;
  void SpmMerge(absl::string_view text, std::vector<Symbol>& symbols,
                std::vector<SpmBigram>& heap, std::vector<int32_t>& out) const;
  // What BpeTokenize() keeps across the fragments of one Tokenize() call.
  // Pieces repeat at every step of the pre-tokenizer, not only as words:
  // cache[e] remembers the ids of each piece expression e gave (the last
  // expression's pieces are the words), so that a repeated piece is neither
  // cut again nor merged.
  struct BpeScratch {
    explicit BpeScratch(size_t expressions) : ends(expressions), cache(expressions) {}
    PreTokenizer::MatchStatePtr match = PreTokenizer::NewMatchState();
    std::vector<std::vector<uint32_t>> ends;  // per expression
    std::vector<WordCache> cache;             // per expression
    std::vector<Symbol> symbols;
    std::vector<BpeBigram> heap;
  };
  void BpeTokenize(absl::string_view text, BpeScratch& scratch, std::vector<int32_t>& out) const;
  // BpePiece(): the ids of `piece`, cut by expressions `expression` onwards.
  void BpePiece(size_t expression, absl::string_view piece, BpeScratch& scratch,
                std::vector<int32_t>& out) const;
  void BpeWord(absl::string_view word, std::vector<Symbol>& symbols,
               std::vector<BpeBigram>& heap, std::vector<int32_t>& out) const;
};

namespace internal {

absl::Status CheckVocabulary(const Vocabulary& vocab, absl::string_view source) {
  const auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  const size_t n = vocab.tokens.size();
  if (n == 0) return bad("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return bad("tokenizer.ggml.tokens has ", n, " entries");
  if (!vocab.scores.empty() && vocab.scores.size() != n) {
    return bad("tokenizer.ggml.scores has ", vocab.scores.size(), " entries, tokenizer.ggml.tokens ",
               n);
  }
  if (!vocab.types.empty() && vocab.types.size() != n) {
    return bad("tokenizer.ggml.token_type has ", vocab.types.size(),
               " entries, tokenizer.ggml.tokens ", n);
  }
  absl::flat_hash_map<absl::string_view, size_t> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& token = vocab.tokens[i];
    if (!format::IsValidUtf8(token)) {
      return bad("tokenizer.ggml.tokens[", i, "] is not valid UTF-8 ('",
                 format::EscapeInvalidUtf8(token), "')");
    }
    if (token.empty()) continue;  // Create() names it "[EMPTY_<i>]", as llama.cpp does
    auto [it, inserted] = seen.emplace(token, i);
    if (!inserted) {
      return bad("tokenizer.ggml.tokens[", i, "] '", token, "' repeats tokenizer.ggml.tokens[",
                 it->second, "]");
    }
  }
  for (size_t i = 0; i < vocab.types.size(); ++i) {
    const auto type = static_cast<int32_t>(vocab.types[i]);
    if (type < 0 || type > static_cast<int32_t>(TokenType::kByte)) {
      return bad("tokenizer.ggml.token_type[", i, "] is ", type, ", expected 0 to 6");
    }
    if (vocab.types[i] == TokenType::kByte && ParseByteToken(vocab.tokens[i]) < 0) {
      return bad("tokenizer.ggml.tokens[", i, "] '", vocab.tokens[i],
                 "' is a byte token but not written <0xXX>");
    }
  }
  for (const auto& [key, id] : SpecialTokenIds(vocab)) {
    if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n)) {
      return bad(key, " is ", id, ", outside the vocabulary of ", n, " tokens");
    }
  }
  if (vocab.add_bos && vocab.bos_id < 0) {
    return bad("tokenizer.ggml.add_bos_token is true but there is no BOS token");
  }
  if (vocab.add_eos && vocab.eos_id < 0) {
    return bad("tokenizer.ggml.add_eos_token is true but there is no EOS token");
  }
  if (!format::IsValidUtf8(vocab.chat_template)) {
    return bad("tokenizer.chat_template is not valid UTF-8");
  }
  if (vocab.model == TokenizerModel::kBpe) {
    if (internal::FindPreTokenizerRules(vocab.pre) == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(source, ": tokenizer.ggml.pre '", format::EscapeInvalidUtf8(vocab.pre),
                       "' is not a pre-tokenizer zcpack knows (known: ",
                       internal::KnownPreTokenizerNames(), ")"));
    }
    for (size_t i = 0; i < vocab.merges.size(); ++i) {
      const std::string& merge = vocab.merges[i];
      if (!format::IsValidUtf8(merge)) {
        return bad("tokenizer.ggml.merges[", i, "] is not valid UTF-8 ('",
                   format::EscapeInvalidUtf8(merge), "')");
      }
      const size_t space = merge.size() < 2 ? std::string::npos : merge.find(' ', 1);
      if (space == std::string::npos) {
        return bad("tokenizer.ggml.merges[", i, "] '", merge, "' is not two tokens separated by a space");
      }
      const absl::string_view left = absl::string_view(merge).substr(0, space);
      const absl::string_view right = absl::string_view(merge).substr(space + 1);
      for (absl::string_view part : {left, right}) {
        if (!seen.contains(part)) {
          return bad("tokenizer.ggml.merges[", i, "] '", merge, "' names '", part,
                     "', which is not a token");
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace internal

namespace {

// The lowest id whose text is in `texts`, or -1.
template <size_t N>
int32_t FindByText(const absl::flat_hash_map<absl::string_view, int32_t>& text_to_id,
                   const absl::string_view (&texts)[N]) {
  int32_t lowest = -1;
  for (absl::string_view text : texts) {
    auto it = text_to_id.find(text);
    if (it != text_to_id.end() && (lowest < 0 || it->second < lowest)) lowest = it->second;
  }
  return lowest;
}

// The ids of the tokens whose text is in `texts`.
template <size_t N>
std::vector<int32_t> IdsOfTexts(const absl::flat_hash_map<absl::string_view, int32_t>& text_to_id,
                                const absl::string_view (&texts)[N]) {
  std::vector<int32_t> ids;
  for (absl::string_view text : texts) {
    auto it = text_to_id.find(text);
    if (it != text_to_id.end()) ids.push_back(it->second);
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(Vocabulary vocab) {
  ZCPACK_RETURN_IF_ERROR(internal::CheckVocabulary(vocab, "vocabulary"));
  auto impl = std::make_unique<Impl>();
  const size_t n = vocab.tokens.size();
  for (size_t i = 0; i < n; ++i) {
    if (vocab.tokens[i].empty()) vocab.tokens[i] = absl::StrCat("[EMPTY_", i, "]");
  }
  impl->vocab = std::move(vocab);
  Vocabulary& v = impl->vocab;
  const bool bpe = v.model == TokenizerModel::kBpe;

  impl->text_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!impl->text_to_id.emplace(v.tokens[i], static_cast<int32_t>(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vocabulary: tokenizer.ggml.tokens[", i, "] '", v.tokens[i], "' repeats another token"));
    }
  }

  // Attributes, then llama.cpp's adjustments by token text.
  impl->attrs.resize(n, kAttrNormal);
  for (size_t i = 0; i < v.types.size(); ++i) impl->attrs[i] = AttrOfType(v.types[i]);
  auto& attrs = impl->attrs;
  const auto detect = [&](int32_t& id, const auto& texts) {
    if (id >= 0) return;
    id = FindByText(impl->text_to_id, texts);
    if (id >= 0) attrs[id] |= kAttrControl;
  };
  detect(v.eot_id, kEotTexts);
  detect(v.eom_id, kEomTexts);
  detect(v.fim_pre_id, kFimPreTexts);
  detect(v.fim_suf_id, kFimSufTexts);
  detect(v.fim_mid_id, kFimMidTexts);
  detect(v.fim_pad_id, kFimPadTexts);
  detect(v.fim_rep_id, kFimRepTexts);
  detect(v.fim_sep_id, kFimSepTexts);

  auto& eog = impl->eog;
  for (int32_t id : {v.fim_pad_id, v.fim_rep_id, v.fim_sep_id}) {
    if (id >= 0) eog.insert(id);
  }
  for (int32_t id : IdsOfTexts(impl->text_to_id, kEogTexts)) {
    eog.insert(id);
    attrs[id] |= kAttrControl;
  }
  for (int32_t id : IdsOfTexts(impl->text_to_id, kForcedUserDefinedTexts)) {
    attrs[id] = kAttrUserDefined;
  }
  for (int32_t id : {v.eos_id, v.eot_id, v.eom_id}) {
    if (id >= 0) eog.insert(id);
  }
  {
    // Harmony-style vocabularies end a turn with <|return|> or <|call|>;
    // their <|end|> only separates messages.
    bool has_return = false, has_call = false, has_flush = false;
    int32_t end_id = -1;
    for (int32_t id : eog) {
      const std::string& text = v.tokens[id];
      if (text == "<|return|>") has_return = true;
      if (text == "<|call|>" || text == "<|calls|>") has_call = true;
      if (text == "<|flush|>") has_flush = true;
      if (text == "<|end|>") end_id = id;
    }
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
      eog.erase(end_id);
      attrs[end_id] = kAttrUserDefined;
    }
    bool has_tool_response = false;
    int32_t s_id = -1;
    for (int32_t id : eog) {
      if (v.tokens[id] == "<|tool_response>") has_tool_response = true;
      if (v.tokens[id] == "</s>") s_id = id;
    }
    if (has_tool_response && s_id >= 0) {
      eog.erase(s_id);
      attrs[s_id] = kAttrNormal;
    }
  }

  // Special tokens, longest first (llama.cpp sorts with an unstable sort;
  // equal lengths keep id order here).
  std::vector<int32_t> special;
  for (size_t i = 0; i < n; ++i) {
    if (attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      special.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(special.begin(), special.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].size() > v.tokens[b].size();
  });
  // llama.cpp keys one white-space rule on the model's name: Phi-3's special
  // tokens take the white space after them (but <unk>, <s> and
  // <|endoftext|> do not, and </s> does).
  {
    std::string name = v.model_name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
      for (int32_t id : special) attrs[id] |= kAttrRstrip;
      if (const int32_t id = impl->Find("</s>"); id >= 0) attrs[id] |= kAttrRstrip;
      for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
        if (const int32_t id = impl->Find(text); id >= 0) attrs[id] &= ~kAttrRstrip;
      }
    }
  }
  impl->num_priorities = static_cast<int32_t>(special.size());
  impl->priority_special.assign(n, -1);
  impl->priority_plain.assign(n, -1);
  for (size_t rank = 0; rank < special.size(); ++rank) {
    const int32_t id = special[rank];
    impl->priority_special[id] = static_cast<int32_t>(rank);
    impl->any_special = true;
    if ((attrs[id] & (kAttrControl | kAttrUnknown)) == 0) {
      impl->priority_plain[id] = static_cast<int32_t>(rank);
      impl->any_plain = true;
    }
    impl->trie.Add(v.tokens[id], id);
  }
  impl->trie.Finish();

  if (bpe) {
    impl->rules = internal::FindPreTokenizerRules(v.pre);
    ZCPACK_ASSIGN_OR_RETURN(impl->pre, PreTokenizer::Create(impl->rules->patterns));
    const auto& alphabet = ByteToCodePoint();
    for (int b = 0; b < 256; ++b) {
      std::string encoded;
      AppendUtf8(alphabet[b], encoded);
      impl->bpe_byte_token[b] = impl->Find(encoded);
      // An unmerged symbol that is not a token falls back to the tokens of
      // the single bytes of its encoded text (llama.cpp looks each up).
      impl->bpe_fallback[b] = {-1, -1};
      for (size_t k = 0; k < encoded.size() && k < 2; ++k) {
        impl->bpe_fallback[b][k] = impl->Find(encoded.substr(k, 1));
      }
    }
    impl->merges.reserve(v.merges.size());
    std::string merged;
    for (size_t i = 0; i < v.merges.size(); ++i) {
      const std::string& merge = v.merges[i];
      const size_t space = merge.find(' ', 1);
      const int32_t left = impl->Find(absl::string_view(merge).substr(0, space));
      const int32_t right = impl->Find(absl::string_view(merge).substr(space + 1));
      merged.assign(merge, 0, space);
      merged.append(merge, space + 1);
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                           static_cast<uint32_t>(right);
      // The first rank of a repeated pair wins, as in llama.cpp.
      impl->merges.emplace(key, BpeMerge{static_cast<int32_t>(i), impl->Find(merged)});
    }
    impl->byte_pair_merges.assign(256 * 256, BpeMerge{-1, -1});
    for (int first = 0; first < 256; ++first) {
      for (int second = 0; second < 256; ++second) {
        const int32_t l = impl->bpe_byte_token[first], r = impl->bpe_byte_token[second];
        if (l < 0 || r < 0) continue;
        auto it = impl->merges.find((static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) |
                                    static_cast<uint32_t>(r));
        if (it != impl->merges.end()) impl->byte_pair_merges[first << 8 | second] = it->second;
      }
    }
    if (impl->rules->ignore_merges) {
      impl->raw_texts.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (IsByteLevelText(v.tokens[i])) impl->raw_texts[i] = DecodeByteLevel(v.tokens[i]);
      }
      for (size_t i = 0; i < n; ++i) {
        if (!impl->raw_texts[i].empty()) {
          impl->raw_to_id.emplace(impl->raw_texts[i], static_cast<int32_t>(i));
        }
      }
    }
  } else {
    for (int b = 0; b < 256; ++b) {
      int32_t id = impl->Find(absl::StrFormat("<0x%02X>", b));
      if (id < 0) id = impl->Find(std::string(1, static_cast<char>(b)));
      impl->spm_byte_token[b] = id >= 0 ? id : v.unk_id;
    }
    for (int b = 0; b < 128; ++b) {
      const int32_t id = impl->Find(std::string(1, static_cast<char>(b)));
      impl->spm_ascii_word[b] = id >= 0 ? id : impl->spm_byte_token[b];
    }
    for (const std::string& token : v.tokens) {
      int previous = -1;
      for (size_t offset = 0; offset < token.size();) {
        const size_t len =
            std::min(Utf8Length(static_cast<unsigned char>(token[offset])), token.size() - offset);
        const int cls = SpmCharClass(absl::string_view(token).substr(offset, len));
        if (previous >= 0) impl->spm_joined[previous][cls] = true;
        previous = cls;
        offset += len;
      }
    }
  }

  // Pieces (llama.cpp's cache_token_to_piece, with special tokens' text).
  impl->pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = v.tokens[i];
    const uint32_t attr = attrs[i];
    std::string& piece = impl->pieces[i];
    if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      piece = text;
    } else if (attr & kAttrNormal) {
      if (bpe) {
        piece = DecodeByteLevel(text);
      } else {
        piece = absl::StrReplaceAll(text, {{kSpmSpace, " "}});
      }
    } else if (attr & kAttrByte) {
      piece = std::string(1, static_cast<char>(ParseByteToken(text)));
    }
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

const Vocabulary& Tokenizer::vocabulary() const { return impl_->vocab; }
size_t Tokenizer::size() const { return impl_->vocab.tokens.size(); }

bool Tokenizer::IsEndOfGeneration(int32_t id) const { return impl_->eog.contains(id); }

void Tokenizer::Impl::Partition(absl::string_view text, bool parse_special,
                                std::vector<Fragment>& out) const {
  const auto size = static_cast<uint32_t>(text.size());
  if (size == 0) return;
  if (!(parse_special ? any_special : any_plain)) {
    out.push_back({-1, 0, size});
    return;
  }
  const std::vector<int32_t>& priority = parse_special ? priority_special : priority_plain;
  // llama.cpp's order: candidates longest first, each taking its leftmost
  // occurrences that do not overlap what was taken before. Taken bytes stay
  // taken, so once an occurrence is blocked, so is every longer one at its
  // position: each position waits with the longest token it could still
  // take (a trie node) and, blocked part-way, moves on to the longest
  // shorter one that fits before the taken byte. A run of white space that
  // many user-defined tokens match so costs one entry per byte, not one
  // per token.
  struct Occurrence {
    int32_t priority;
    uint32_t pos;
    int32_t node;
  };
  const auto before = [](const Occurrence& a, const Occurrence& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.pos < b.pos;
  };
  std::vector<Occurrence> found;
  const auto root = [&](uint32_t pos) {
    return trie.Root(static_cast<unsigned char>(text[pos]));
  };
  for (uint32_t pos = 0; pos < size; ++pos) {
    // Most bytes start no special token: a tight loop of table lookups.
    while (pos < size && root(pos) < 0) ++pos;
    if (pos == size) break;
    int32_t node = root(pos);
    int32_t longest = -1;
    for (uint32_t j = pos + 1; node >= 0; ++j) {
      const int32_t token = trie.Token(node);
      if (token >= 0 && priority[token] >= 0) longest = node;
      if (j == size) break;
      node = trie.Child(node, static_cast<unsigned char>(text[j]));
    }
    if (longest >= 0) found.push_back({priority[trie.Token(longest)], pos, longest});
  }
  if (found.empty()) {
    out.push_back({-1, 0, size});
    return;
  }
  // By priority, then position. `found` is in position order, one per
  // position, so where it outnumbers the priorities a counting sort by
  // priority gives that order in linear time.
  if (found.size() < static_cast<size_t>(num_priorities)) {
    std::sort(found.begin(), found.end(), before);
  } else {
    std::vector<uint32_t> first(num_priorities + 1, 0);
    for (const Occurrence& o : found) ++first[o.priority + 1];
    for (int32_t p = 0; p < num_priorities; ++p) first[p + 1] += first[p];
    std::vector<Occurrence> sorted(found.size());
    for (const Occurrence& o : found) sorted[first[o.priority]++] = o;
    found.swap(sorted);
  }
  // Positions moved on to a shorter token, first in the same order on top.
  const auto after = [&](const Occurrence& a, const Occurrence& b) { return before(b, a); };
  std::priority_queue<Occurrence, std::vector<Occurrence>, decltype(after)> shorter(after);
  // taken: 1 for a matched token's bytes, 2 for white space a token strips.
  std::vector<uint8_t> taken(size, 0);
  std::vector<Fragment> tokens;
  // C's isspace(), as llama.cpp strips.
  const auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t next = 0;
  while (next < found.size() || !shorter.empty()) {
    Occurrence o;
    if (shorter.empty() || (next < found.size() && before(found[next], shorter.top()))) {
      o = found[next++];
    } else {
      o = shorter.top();
      shorter.pop();
    }
    const int32_t token = trie.Token(o.node);
    const auto len = static_cast<uint32_t>(vocab.tokens[token].size());
    const auto free = static_cast<uint32_t>(LeadingZeroBytes(taken.data() + o.pos, len));
    if (free < len) {
      if (free == 0) continue;  // inside what was taken: nothing here fits
      for (int32_t n = trie.ShorterToken(o.node); n >= 0; n = trie.ShorterToken(n)) {
        const int32_t t = trie.Token(n);
        if (priority[t] >= 0 && vocab.tokens[t].size() <= free) {
          shorter.push({priority[t], o.pos, n});
          break;
        }
      }
      continue;
    }
    std::fill(taken.begin() + o.pos, taken.begin() + o.pos + len, 1);
    tokens.push_back({token, o.pos, o.pos + len});
    if (attrs[token] & kAttrLstrip) {
      for (uint32_t k = o.pos; k > 0 && taken[k - 1] == 0 && is_space(text[k - 1]); --k) {
        taken[k - 1] = 2;
      }
    }
    if (attrs[token] & kAttrRstrip) {
      for (uint32_t k = o.pos + len; k < size && taken[k] == 0 && is_space(text[k]); ++k) {
        taken[k] = 2;
      }
    }
  }
  std::sort(tokens.begin(), tokens.end(),
            [](const Fragment& a, const Fragment& b) { return a.begin < b.begin; });
  // Raw text is what no token took or stripped.
  uint32_t at = 0;
  const auto raw_until = [&](uint32_t end) {
    while (at < end) {
      while (at < end && taken[at] != 0) ++at;
      uint32_t run = at;
      while (run < end && taken[run] == 0) ++run;
      if (run > at) out.push_back({-1, at, run});
      at = run;
    }
  };
  for (const Fragment& t : tokens) {
    raw_until(t.begin);
    out.push_back(t);
    at = t.end;
  }
  raw_until(size);
}

void Tokenizer::Impl::SpmTokenize(absl::string_view fragment, bool add_prefix,
                                  SpmScratch& scratch, std::vector<int32_t>& out) const {
  constexpr size_t kSpaceSize = sizeof(kSpmSpace) - 1;
  std::string& text = scratch.text;
  const auto spaces = static_cast<size_t>(std::count(fragment.begin(), fragment.end(), ' '));
  text.resize(fragment.size() + spaces * (kSpaceSize - 1) + (add_prefix ? kSpaceSize : 0));
  char* write = text.data();
  if (add_prefix) write = std::copy_n(kSpmSpace, kSpaceSize, write);
  for (char c : fragment) {
    if (c == ' ') {
      write = std::copy_n(kSpmSpace, kSpaceSize, write);
    } else {
      *write++ = c;
    }
  }
  const absl::string_view all(text);
  const auto merge = [&](absl::string_view word, std::vector<int32_t>& ids) {
    SpmMerge(word, scratch.symbols, scratch.heap, ids);
  };
  const auto word = [&](size_t begin, size_t end) {
    const auto first = static_cast<unsigned char>(all[begin]);
    if (end - begin == 1 && first < 0x80) {
      if (spm_ascii_word[first] >= 0) out.push_back(spm_ascii_word[first]);
      return;
    }
    scratch.cache.Append(all.substr(begin, end - begin), out, merge);
  };
  // Symbols as SpmMerge() makes them (a lead byte takes the bytes it
  // announces, whatever they are), so that a cut never splits one.
  size_t begin = 0;
  int previous = -1;
  for (size_t offset = 0; offset < all.size();) {
    const auto lead = static_cast<unsigned char>(all[offset]);
    const size_t len = lead < 0x80 ? 1 : std::min(Utf8Length(lead), all.size() - offset);
    const int cls = SpmCharClass(all.substr(offset, len));
    if (previous >= 0 && !spm_joined[previous][cls]) {
      word(begin, offset);
      begin = offset;
    }
    previous = cls;
    offset += len;
  }
  if (begin < all.size()) word(begin, all.size());
}

void Tokenizer::Impl::SpmMerge(absl::string_view text, std::vector<Symbol>& symbols,
                               std::vector<SpmBigram>& heap, std::vector<int32_t>& out) const {
  symbols.clear();
  heap.clear();
  for (size_t offset = 0; offset < text.size();) {
    const auto len = static_cast<uint32_t>(
        std::min(Utf8Length(static_cast<unsigned char>(text[offset])), text.size() - offset));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(offset), len, index - 1,
                       offset + len == text.size() ? -1 : index + 1, -1});
    offset += len;
  }
  const SpmBigramOrder order;
  const auto make = [&](int32_t left, int32_t right, SpmBigram* bigram) {
    if (left < 0 || right < 0) return false;
    const uint32_t size = symbols[left].len + symbols[right].len;
    const int32_t id = Find(text.substr(symbols[left].start, size));
    if (id < 0) return false;
    const float score = vocab.scores.empty() ? 0.0f : vocab.scores[id];
    *bigram = {score, left, right, size, id};
    return true;
  };
  const auto try_add = [&](int32_t left, int32_t right) {
    SpmBigram bigram;
    if (!make(left, right, &bigram)) return;
    heap.push_back(bigram);
    std::push_heap(heap.begin(), heap.end(), order);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) {
    SpmBigram bigram;
    if (make(i - 1, i, &bigram)) heap.push_back(bigram);
  }
  std::make_heap(heap.begin(), heap.end(), order);
  RunMerges(symbols, heap, order, try_add);
  for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const int32_t id = s.id >= 0 ? s.id : Find(text.substr(s.start, s.len));
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // Not a token: its bytes, as <0xXX> byte tokens.
    for (uint32_t k = 0; k < s.len; ++k) {
      const int32_t byte_id = spm_byte_token[static_cast<unsigned char>(text[s.start + k])];
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }
}

void Tokenizer::Impl::BpeWord(absl::string_view word, std::vector<Symbol>& symbols,
                              std::vector<BpeBigram>& heap, std::vector<int32_t>& out) const {
  if (rules->ignore_merges) {
    auto it = raw_to_id.find(word);
    if (it != raw_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  symbols.clear();
  heap.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols.push_back({static_cast<uint32_t>(i), 1, i - 1, i + 1 == n ? -1 : i + 1,
                       bpe_byte_token[static_cast<unsigned char>(word[i])]});
  }
  const BpeBigramOrder order;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t l = symbols[left].id, r = symbols[right].id;
    if (l < 0 || r < 0) return;
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) |
                          static_cast<uint32_t>(r));
    if (it == merges.end()) return;
    heap.push_back({it->second.rank, left, right, symbols[left].len + symbols[right].len,
                    it->second.merged});
    std::push_heap(heap.begin(), heap.end(), order);
  };
  // The first bigrams: byte pairs, from the small table, heaped at once.
  for (int32_t i = 1; i < n; ++i) {
    const BpeMerge& m = byte_pair_merges[static_cast<unsigned char>(word[i - 1]) << 8 |
                                         static_cast<unsigned char>(word[i])];
    if (m.rank >= 0) heap.push_back({m.rank, i - 1, i, 2, m.merged});
  }
  std::make_heap(heap.begin(), heap.end(), order);
  RunMerges(symbols, heap, order, try_add);
  for (int32_t i = n == 0 ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    for (uint32_t k = 0; k < s.len; ++k) {
      for (int32_t id : bpe_fallback[static_cast<unsigned char>(word[s.start + k])]) {
        if (id >= 0) out.push_back(id);
      }
    }
  }
}

void Tokenizer::Impl::BpeTokenize(absl::string_view raw, BpeScratch& scratch,
                                  std::vector<int32_t>& out) const {
  std::string canonical;
  absl::string_view text = raw;
  if (!format::IsValidUtf8(raw)) {
    canonical = CanonicalUtf8(raw);
    text = canonical;
  }
  BpePiece(0, text, scratch, out);
}

void Tokenizer::Impl::BpePiece(size_t expression, absl::string_view piece, BpeScratch& scratch,
                               std::vector<int32_t>& out) const {
  if (expression == pre->expressions()) {
    BpeWord(piece, scratch.symbols, scratch.heap, out);
    return;
  }
  std::vector<uint32_t>& ends = scratch.ends[expression];
  ends.clear();
  pre->Cut(expression, piece, ends, *scratch.match);
  if (expression > 0 && ends.size() == 1) {
    // Not cut: the cache of the expression before already keeps `piece`.
    BpePiece(expression + 1, piece, scratch, out);
    return;
  }
  const auto cut_further = [&](absl::string_view part, std::vector<int32_t>& ids) {
    BpePiece(expression + 1, part, scratch, ids);
  };
  uint32_t start = 0;
  for (uint32_t end : ends) {
    scratch.cache[expression].Append(piece.substr(start, end - start), out, cut_further);
    start = end;
  }
}

std::vector<int32_t> Tokenizer::Tokenize(absl::string_view text, TokenizeOptions options) const {
  const Impl& impl = *impl_;
  const Vocabulary& v = impl.vocab;
  // Offsets inside a piece are 32-bit: a longer text goes through in pieces.
  constexpr size_t kMaxPiece = std::numeric_limits<uint32_t>::max();
  if (text.size() > kMaxPiece) {
    std::vector<int32_t> out;
    if (options.add_special && v.add_bos) out.push_back(v.bos_id);
    for (size_t at = 0; at < text.size(); at += kMaxPiece) {
      const std::vector<int32_t> part =
          Tokenize(text.substr(at, kMaxPiece), {.add_special = false,
                                                .parse_special = options.parse_special});
      out.insert(out.end(), part.begin(), part.end());
    }
    if (options.add_special && v.add_eos) out.push_back(v.eos_id);
    return out;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  std::vector<Fragment> fragments;
  impl.Partition(text, options.parse_special, fragments);
  if (options.add_special && v.add_bos) out.push_back(v.bos_id);
  if (v.model == TokenizerModel::kSpm) {
    Impl::SpmScratch scratch;
    bool previous_special = true;  // a leading space before the first text
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
        previous_special = true;
        continue;
      }
      impl.SpmTokenize(text.substr(f.begin, f.end - f.begin),
                       v.add_space_prefix && previous_special, scratch, out);
      previous_special = false;
    }
  } else {
    Impl::BpeScratch scratch(impl.pre->expressions());
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        impl.BpeTokenize(text.substr(f.begin, f.end - f.begin), scratch, out);
      }
    }
  }
  if (options.add_special && v.add_eos) out.push_back(v.eos_id);
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t id, bool special) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->pieces.size()) return std::string();
  if (!special && (impl_->attrs[id] & (kAttrUnknown | kAttrControl))) return std::string();
  return impl_->pieces[id];
}

namespace {

// llama.cpp's clean_spaces passes over detokenized BPE text.
std::string CleanSpaces(std::string text) {
  if (text.size() < 2) return text;
  // " ?", " !", " .", " ," lose their space.
  {
    std::string out(1, text[0]);
    for (size_t i = 1; i < text.size(); ++i) {
      const char x = text[i];
      if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) out.pop_back();
      out += x;
    }
    text.swap(out);
  }
  // " ' " loses both spaces; the removed second space no longer counts as
  // the space before what follows.
  if (text.size() >= 2) {
    std::string out(1, text[0]);
    for (size_t i = 1; i < text.size(); ++i) {
      const char x = text[i];
      if (x == '\'' && i + 1 < text.size() && text[i - 1] == ' ' && text[i + 1] == ' ') {
        out.pop_back();
        text[++i] = '\0';
      }
      out += x;
    }
    text.swap(out);
  }
  // " 's", " 'm", " 're", " 've" lose their space (" 't", " 'd", " 'll" keep it).
  if (text.size() >= 2) {
    std::string out(1, text[0]);
    for (size_t i = 1; i < text.size(); ++i) {
      const char x = text[i];
      if (text[i - 1] == ' ' && x == '\'' && i + 1 < text.size()) {
        const char x1 = text[i + 1];
        if (x1 == 's' || x1 == 'm') {
          out.pop_back();
        } else if (i + 2 < text.size()) {
          const char x2 = text[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) out.pop_back();
        }
      }
      out += x;
    }
    text.swap(out);
  }
  return text;
}

}  // namespace

std::string Tokenizer::Detokenize(std::span<const int32_t> ids, bool special) const {
  const Impl& impl = *impl_;
  std::string text;
  bool remove_space = impl.vocab.add_space_prefix;
  for (int32_t id : ids) {
    std::string piece = TokenToPiece(id, special);
    const bool skipped = id < 0 || static_cast<size_t>(id) >= impl.pieces.size() ||
                         (!special && (impl.attrs[id] & (kAttrUnknown | kAttrControl)));
    if (!skipped && remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    text += piece;
  }
  if (impl.vocab.model == TokenizerModel::kBpe && impl.rules->clean_spaces) {
    return CleanSpaces(std::move(text));
  }
  return text;
}

DetokenizeStream::DetokenizeStream(const Tokenizer& tokenizer, bool special, bool at_start)
    : tokenizer_(tokenizer),
      special_(special),
      remove_space_(at_start && tokenizer.vocabulary().add_space_prefix) {}

std::string DetokenizeStream::Push(int32_t id) {
  std::string piece = tokenizer_.TokenToPiece(id, special_);
  if (remove_space_ && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  remove_space_ = false;
  pending_ += piece;
  // The last sequence's lead byte, within the last four bytes: hold back
  // from it when fewer bytes follow than it announces.
  size_t lead = pending_.size();
  for (size_t k = 1; k <= 4 && k <= pending_.size(); ++k) {
    const auto c = static_cast<unsigned char>(pending_[pending_.size() - k]);
    if ((c & 0xC0) != 0x80) {
      lead = pending_.size() - k;
      break;
    }
  }
  size_t keep = 0;
  if (lead < pending_.size()) {
    const auto c = static_cast<unsigned char>(pending_[lead]);
    size_t want = 1;  // ASCII, or a byte that starts no sequence: never held
    if (c >= 0xC2 && c < 0xE0) want = 2;
    if (c >= 0xE0 && c < 0xF0) want = 3;
    if (c >= 0xF0 && c <= 0xF4) want = 4;
    if (pending_.size() - lead < want) keep = pending_.size() - lead;
  }
  std::string ready = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string DetokenizeStream::Finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

std::array<std::pair<const char*, int32_t>, 12> SpecialTokenIds(const Vocabulary& vocab) {
  return {{
      {"tokenizer.ggml.bos_token_id", vocab.bos_id},
      {"tokenizer.ggml.eos_token_id", vocab.eos_id},
      {"tokenizer.ggml.eot_token_id", vocab.eot_id},
      {"tokenizer.ggml.eom_token_id", vocab.eom_id},
      {"tokenizer.ggml.unknown_token_id", vocab.unk_id},
      {"tokenizer.ggml.padding_token_id", vocab.pad_id},
      {"tokenizer.ggml.fim_pre_token_id", vocab.fim_pre_id},
      {"tokenizer.ggml.fim_suf_token_id", vocab.fim_suf_id},
      {"tokenizer.ggml.fim_mid_token_id", vocab.fim_mid_id},
      {"tokenizer.ggml.fim_pad_token_id", vocab.fim_pad_id},
      {"tokenizer.ggml.fim_rep_token_id", vocab.fim_rep_id},
      {"tokenizer.ggml.fim_sep_token_id", vocab.fim_sep_id},
  }};
}

}  // namespace zcpack::runtime
