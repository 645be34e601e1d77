#include "zcpack/runtime/chat_template.h"

#include <ctime>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/utf8.h"

namespace zcpack::runtime {
namespace {

// How much of an unrecognised template an error quotes.
constexpr size_t kQuotedTemplateBytes = 60;

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return absl::StrContains(haystack, needle);
}

// The text of a Jinja string literal body: \n, \t, \\, \' and \" unescaped;
// any other backslash kept as written.
std::string UnescapeJinja(absl::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out.push_back(body[i]);
      continue;
    }
    const char next = body[++i];
    switch (next) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case '\\':
      case '\'':
      case '"': out.push_back(next); break;
      default:
        out.push_back('\\');
        out.push_back(next);
        break;
    }
  }
  return out;
}

// The default system message of a ChatML template: the first string literal
// holding "<|im_start|>system\n" followed directly by literal text up to
// "<|im_end|>" (Qwen 2 and 2.5 write theirs so). Empty when there is none:
// text that leaves the literal (a quote) or is an expression (a brace)
// between the two markers is the conversation's own system message.
std::string ChatMlDefaultSystem(absl::string_view source) {
  constexpr absl::string_view kOpen = "<|im_start|>system\\n";
  constexpr absl::string_view kClose = "<|im_end|>";
  for (size_t at = source.find(kOpen); at != absl::string_view::npos;
       at = source.find(kOpen, at + 1)) {
    const size_t begin = at + kOpen.size();
    const size_t end = source.find(kClose, begin);
    if (end == absl::string_view::npos) break;
    const absl::string_view body = source.substr(begin, end - begin);
    if (body.empty() || body.find_first_of("'\"{}") != absl::string_view::npos) continue;
    return UnescapeJinja(body);
  }
  return std::string();
}

// The date a Llama 3.1 template sets by itself: the literal of its
// `set date_string = "..."` (3.1: "26 Jul 2024"); that date when absent.
std::string Llama3DefaultDate(absl::string_view source) {
  constexpr absl::string_view kSet = "set date_string = ";
  const size_t at = source.find(kSet);
  if (at != absl::string_view::npos) {
    const size_t open = at + kSet.size();
    if (open < source.size() && (source[open] == '"' || source[open] == '\'')) {
      const size_t close = source.find(source[open], open + 1);
      if (close != absl::string_view::npos) {
        return UnescapeJinja(source.substr(open + 1, close - open - 1));
      }
    }
  }
  return "26 Jul 2024";
}

// Today's local date as strftime_now("%d %b %Y") gives it in Hugging Face's
// renderer.
std::string TodayDate() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  const size_t n = std::strftime(text, sizeof(text), "%d %b %Y", &local);
  return std::string(text, n);
}

std::string Trim(absl::string_view text) { return std::string(absl::StripAsciiWhitespace(text)); }

absl::Status CheckRoles(std::span<const ChatMessage> messages) {
  if (messages.empty()) return absl::InvalidArgumentError("chat: no messages to render");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat("chat: message ", i, " has role '", format::EscapeInvalidUtf8(role),
                       "' (expected system, user or assistant)"));
    }
    if (role == "system" && i != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("chat: message ", i, " is a system message; only the first may be"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ChatTemplateKindName(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama3: return "llama3";
    case ChatTemplateKind::kLlama2: return "llama2";
    default: return "chatml";
  }
}

absl::StatusOr<ChatTemplate> ChatTemplate::Detect(absl::string_view source) {
  if (source.empty()) {
    return absl::FailedPreconditionError(
        "the tokenizer carries no chat template (tokenizer.chat_template)");
  }
  ChatTemplate t;
  // The order is llama.cpp's: ChatML first (a template with both ChatML and
  // [INST] markers is ChatML), then the [INST] family, then Llama 3.
  if (Contains(source, "<|im_start|>") && !Contains(source, "<|im_sep|>") &&
      !Contains(source, "<end_of_utterance>")) {
    t.kind_ = ChatTemplateKind::kChatMl;
    t.default_system_ = ChatMlDefaultSystem(source);
    return t;
  }
  const bool inst_family =
      !Contains(source, "<|im_start|>") &&
      (absl::StartsWith(source, "mistral") || Contains(source, "[INST]"));
  if (inst_family && !absl::StartsWith(source, "mistral") &&
      !Contains(source, "[SYSTEM_PROMPT]") && !Contains(source, "[AVAILABLE_TOOLS]") &&
      !Contains(source, "' [INST] ' + system_message")) {
    t.kind_ = ChatTemplateKind::kLlama2;
    t.system_block_ = Contains(source, "<<SYS>>");
    t.strip_ = Contains(source, "content.strip()");
    t.bos_between_turns_ = Contains(source, "bos_token + '[INST]");
    return t;
  }
  if (!inst_family && Contains(source, "<|start_header_id|>") &&
      Contains(source, "<|end_header_id|>")) {
    t.kind_ = ChatTemplateKind::kLlama3;
    t.date_header_ = Contains(source, "Cutting Knowledge Date");
    t.date_from_clock_ = Contains(source, "strftime_now");
    t.default_date_ = Llama3DefaultDate(source);
    return t;
  }
  const absl::string_view what =
      Contains(source, "<|im_start|>") ? "a ChatML variant (phi-4 or SmolVLM)"
      : inst_family                    ? "a Mistral [INST] form"
                                       : "none of the llama-3 (<|start_header_id|>), ChatML "
                                         "(<|im_start|>) or llama-2 ([INST]) markers";
  const absl::string_view start = source.substr(0, kQuotedTemplateBytes);
  return absl::UnimplementedError(absl::StrCat(
      "unsupported chat template: ", what, " (zcpack renders llama-3, ChatML and llama-2); it "
      "begins '", format::EscapeInvalidUtf8(absl::Utf8SafeCEscape(start)),
      source.size() > start.size() ? "...'" : "'"));
}

absl::StatusOr<std::string> ChatTemplate::Apply(std::span<const ChatMessage> messages,
                                                const ChatRenderOptions& options) const {
  if (absl::Status s = CheckRoles(messages); !s.ok()) return s;
  const bool has_system = messages.front().role == "system";
  std::string out;
  switch (kind_) {
    case ChatTemplateKind::kLlama3: {
      std::span<const ChatMessage> turns = messages;
      if (date_header_) {
        std::string system;
        if (has_system) {
          system = Trim(messages.front().content);
          turns = turns.subspan(1);
        }
        const std::string date = !options.date_string.empty() ? options.date_string
                                 : date_from_clock_          ? TodayDate()
                                                             : default_date_;
        absl::StrAppend(&out, "<|start_header_id|>system<|end_header_id|>\n\n",
                        "Cutting Knowledge Date: December 2023\n", "Today Date: ", date, "\n\n",
                        system, "<|eot_id|>");
      }
      for (const ChatMessage& m : turns) {
        absl::StrAppend(&out, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n",
                        Trim(m.content), "<|eot_id|>");
      }
      if (options.add_generation_prompt) {
        absl::StrAppend(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
      }
      return out;
    }
    case ChatTemplateKind::kChatMl: {
      if (!has_system && !default_system_.empty()) {
        absl::StrAppend(&out, "<|im_start|>system\n", default_system_, "<|im_end|>\n");
      }
      for (const ChatMessage& m : messages) {
        absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
      }
      if (options.add_generation_prompt) absl::StrAppend(&out, "<|im_start|>assistant\n");
      return out;
    }
    case ChatTemplateKind::kLlama2: {
      std::span<const ChatMessage> turns = messages;
      std::string system;
      if (has_system) {
        if (!system_block_) {
          return absl::InvalidArgumentError(
              "chat: this llama-2 template has no system prompt (no <<SYS>>); leave out "
              "the system message");
        }
        system = messages.front().content;
        turns = turns.subspan(1);
      }
      for (size_t i = 0; i < turns.size(); ++i) {
        const bool user = turns[i].role == "user";
        if (user != (i % 2 == 0)) {
          return absl::InvalidArgumentError(
              "chat: conversation roles must alternate user/assistant/user/assistant/...");
        }
        std::string content = turns[i].content;
        if (i == 0 && has_system) {
          content = absl::StrCat("<<SYS>>\n", system, "\n<</SYS>>\n\n", content);
        }
        if (strip_) content = Trim(content);
        if (user) {
          if (i > 0 && bos_between_turns_) absl::StrAppend(&out, options.bos_text);
          absl::StrAppend(&out, "[INST] ", content, " [/INST]");
        } else if (strip_) {
          absl::StrAppend(&out, " ", content, " ", options.eos_text);
        } else {
          absl::StrAppend(&out, content, options.eos_text);
        }
      }
      return out;
    }
  }
  return absl::InternalError("chat: unknown template kind");
}

absl::StatusOr<std::string> ApplyChatTemplate(const Vocabulary& vocab,
                                              std::span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(vocab.chat_template);
  if (!t.ok()) return t.status();
  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  const auto token_text = [&](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < vocab.tokens.size() ? vocab.tokens[id]
                                                                    : std::string();
  };
  options.bos_text = token_text(vocab.bos_id);
  options.eos_text = token_text(vocab.eos_id);
  return t->Apply(messages, options);
}

}  // namespace zcpack::runtime
