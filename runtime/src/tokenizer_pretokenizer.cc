#include "tokenizer_pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace zcpack::runtime::internal {
namespace {

// The expressions, as the models' tokenizer.json files give them (llama.cpp
// writes the case-insensitive contractions out as character classes).
constexpr absl::string_view kContractionsAnyCase =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
// GPT-2's expression (also the second step of several others).
constexpr absl::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

std::string Llama3Pattern() {
  return absl::StrCat(kContractionsAnyCase,
                      R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)",
                      R"(|\s*[\r\n]+|\s+(?!\S)|\s+)");
}

std::string Qwen2Pattern() {
  return absl::StrCat(kContractionsAnyCase,
                      R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)",
                      R"(|\s*[\r\n]+|\s+(?!\S)|\s+)");
}

std::string Qwen35Pattern() {
  return absl::StrCat(kContractionsAnyCase,
                      R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*)",
                      R"(|\s*[\r\n]+|\s+(?!\S)|\s+)");
}

using RulesTable = absl::flat_hash_map<std::string, PreTokenizerRules>;

const RulesTable& Rules() {
  static const RulesTable* table = [] {
    auto* t = new RulesTable();
    auto add = [t](std::initializer_list<absl::string_view> names, const PreTokenizerRules& rules) {
      for (absl::string_view name : names) t->emplace(std::string(name), rules);
    };
    const std::string gpt2(kGpt2);
    add({"default"},
        {{R"([\p{P}\$\+<=>\^~\|]+)", gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, true, false, false});
    add({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
         "jina-v5-nano"},
        {{Llama3Pattern()}, true, true, true});
    add({"dbrx", "smaug-bpe"}, {{Llama3Pattern()}, true, false, false});
    add({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"},
        {{Qwen2Pattern()}, false, false, false});
    add({"stablelm2", "megrez"}, {{Qwen2Pattern()}, true, false, false});
    add({"qwen35"}, {{Qwen35Pattern()}, false, false, false});
    add({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "a.x-4.0", "mellum", "exaone4", "mpt",
         "olmo", "jais"},
        {{gpt2}, true, false, false});
    add({"trillion", "granite-docling"}, {{gpt2}, false, false, false});
    add({"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
        {{R"(\p{N})", gpt2}, true, false, false});
    add({"command-r", "smollm"}, {{R"(\p{N})", gpt2}, false, false, false});
    add({"falcon"}, {{R"([\p{P}\$\+<=>\^~\|`]+)", gpt2, "[0-9][0-9][0-9]"}, true, false, false});
    add({"deepseek-coder"},
        {{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)",
          R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N})"},
         false,
         false,
         false});
    return t;
  }();
  return *table;
}

// \s -> \p{White_Space}, \S -> \P{White_Space}, leaving other escapes alone.
std::string WithUnicodeWhiteSpace(absl::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += R"(\p{White_Space})";
      } else if (next == 'S') {
        out += R"(\P{White_Space})";
      } else {
        out.append(pattern.data() + i, 2);
      }
      ++i;
      continue;
    }
    out += pattern[i];
  }
  return out;
}

// Bytes of the UTF-8 sequence starting with `lead` (1 for a stray byte).
inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

}  // namespace

const PreTokenizerRules* FindPreTokenizerRules(absl::string_view name) {
  const RulesTable& table = Rules();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

std::string KnownPreTokenizerNames() {
  std::vector<std::string> names;
  for (const auto& [name, rules] : Rules()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return absl::StrJoin(names, ", ");
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(std::vector<std::unique_ptr<Compiled>> compiled)
    : compiled_(std::move(compiled)) {}

PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(
    const std::vector<std::string>& patterns) {
  std::vector<std::unique_ptr<Compiled>> compiled;
  for (const std::string& pattern : patterns) {
    const std::string rewritten = WithUnicodeWhiteSpace(pattern);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto c = std::make_unique<Compiled>();
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &error_offset,
                            nullptr);
    if (c->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return absl::InternalError(absl::StrCat("pre-tokenizer expression '", pattern,
                                              "' does not compile at offset ", error_offset, ": ",
                                              reinterpret_cast<const char*>(message)));
    }
    // JIT is an optimisation: where PCRE2 was built without it (or it fails),
    // the interpreter gives the same matches.
    c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;
    compiled.push_back(std::move(c));
  }
  return std::unique_ptr<PreTokenizer>(new PreTokenizer(std::move(compiled)));
}

// Per-call PCRE2 state: match data and a JIT stack larger than the default
// 32 KiB, so that long runs of one character class never hit its limit.
class PreTokenizer::MatchState {
 public:
  MatchState() {
    match_data_ = pcre2_match_data_create(1, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    jit_stack_ = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
    if (context_ != nullptr && jit_stack_ != nullptr) {
      pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
    }
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(match_data_);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;

  // Match(): the next match in subject[offset, size) as [begin, end), or
  // false for none (or a PCRE2 failure).
  bool Match(const pcre2_code* code, bool jit, absl::string_view subject, size_t offset,
             size_t& begin, size_t& end) {
    if (match_data_ == nullptr) return false;
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    const int rc = jit ? pcre2_jit_match(code, s, subject.size(), offset, 0, match_data_, context_)
                       : pcre2_match(code, s, subject.size(), offset, PCRE2_NO_UTF_CHECK,
                                     match_data_, context_);
    if (rc < 0) return false;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data_);
    begin = ovector[0];
    end = ovector[1];
    return true;
  }

 private:
  pcre2_match_data* match_data_ = nullptr;
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* jit_stack_ = nullptr;
};

namespace {

// Cuts piece [0, subject.size()) of `subject` (offsets relative to
// `base`) into matches and gaps, appending absolute end offsets.
void SplitPiece(PreTokenizer::MatchState& state, const pcre2_code* code, bool jit, absl::string_view subject,
                uint32_t base, std::vector<uint32_t>& ends) {
  size_t offset = 0;
  size_t emitted = 0;  // end of what has been appended
  while (offset < subject.size()) {
    size_t begin = 0, end = 0;
    if (!state.Match(code, jit, subject, offset, begin, end)) break;
    if (end == begin) {
      // An empty match cuts nothing; step over one character and go on.
      offset = begin + Utf8Length(static_cast<unsigned char>(subject[begin]));
      continue;
    }
    if (begin > emitted) ends.push_back(base + static_cast<uint32_t>(begin));
    ends.push_back(base + static_cast<uint32_t>(end));
    emitted = end;
    offset = end;
  }
  if (emitted < subject.size()) ends.push_back(base + static_cast<uint32_t>(subject.size()));
}

}  // namespace

void PreTokenizer::MatchStateDeleter::operator()(MatchState* state) const { delete state; }

PreTokenizer::MatchStatePtr PreTokenizer::NewMatchState() {
  return MatchStatePtr(new MatchState());
}

void PreTokenizer::Split(absl::string_view text, std::vector<uint32_t>& ends) const {
  MatchState state;
  Split(text, ends, state);
}

void PreTokenizer::Cut(size_t expression, absl::string_view piece, std::vector<uint32_t>& ends,
                       MatchState& state) const {
  if (piece.empty()) return;
  const Compiled& c = *compiled_[expression];
  SplitPiece(state, c.code, c.jit, piece, 0, ends);
}

void PreTokenizer::Split(absl::string_view text, std::vector<uint32_t>& ends,
                         MatchState& state) const {
  if (text.empty()) return;
  const size_t first = ends.size();
  if (compiled_.empty()) {
    ends.push_back(static_cast<uint32_t>(text.size()));
    return;
  }
  // First expression over the whole text.
  SplitPiece(state, compiled_[0]->code, compiled_[0]->jit, text, 0, ends);
  // Each further expression re-cuts the pieces of the one before.
  std::vector<uint32_t> previous;
  for (size_t r = 1; r < compiled_.size(); ++r) {
    previous.assign(ends.begin() + static_cast<std::ptrdiff_t>(first), ends.end());
    ends.resize(first);
    uint32_t start = 0;
    for (uint32_t end : previous) {
      SplitPiece(state, compiled_[r]->code, compiled_[r]->jit, text.substr(start, end - start),
                 start, ends);
      start = end;
    }
  }
}

}  // namespace zcpack::runtime::internal
