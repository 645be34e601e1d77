// Chat templates: a conversation rendered as the prompt text a chat model
// was trained on.
//
// A model carries its template as Jinja source (tokenizer.chat_template).
// zcpack runs no Jinja: it recognises the template's family by its markers,
// as llama.cpp's llm_chat_detect_template() does, and renders that family
// in C++, byte for byte as the Jinja template renders the same messages:
//
//   - kLlama3 ("<|start_header_id|>" and "<|end_header_id|>"): each message
//     is "<|start_header_id|>" role "<|end_header_id|>\n\n" content
//     "<|eot_id|>", the content trimmed; the generation prompt is the
//     assistant header. Llama 3.1 and later templates (they contain "Cutting
//     Knowledge Date") always open with a system header holding the
//     knowledge date, "Today Date: " and the date, then the (trimmed) system
//     message, if any.
//   - kChatMl ("<|im_start|>", qwen2 and many others; not phi-4, whose
//     template also has "<|im_sep|>", nor SmolVLM's "<end_of_utterance>"):
//     "<|im_start|>" role "\n" content "<|im_end|>\n", content untouched; the
//     generation prompt is "<|im_start|>assistant\n". A template that writes
//     a default system message when the conversation has none (Qwen 2 and
//     2.5: "<|im_start|>system\nYou are ...<|im_end|>\n" as one string
//     literal) gets it written too.
//   - kLlama2 ("[INST]", but none of the Mistral forms that llama.cpp tells
//     apart: "[SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "' [INST] ' +
//     system_message", a template named "mistral..."): user turns are
//     "[INST] " content " [/INST]", the system message goes inside the first
//     one as "<<SYS>>\n" system "\n<</SYS>>\n\n" (only in templates that have
//     "<<SYS>>"; others refuse a system message). Templates with
//     "content.strip()" (Meta's own) strip each turn's text and write an
//     assistant turn as " " content " " EOS, and with "bos_token + '[INST]"
//     write BOS before every user turn after the first; others write the
//     assistant turn as content EOS. There is no generation prompt: the
//     prompt ends with " [/INST]".
//
// BOS: every one of these Jinja templates writes bos_token at the very start
// (Llama 3 and 2; ChatML writes none). Apply() never does: the tokenizer adds
// BOS when the vocabulary says to (TokenizeOptions::add_special), as
// llama.cpp does, so that BOS is never doubled. Tokenize the rendered text
// with add_special and parse_special both true: the markers (and a BOS or
// EOS written between turns) are special tokens.
//
// Trimming is Jinja's `trim` / `strip()` on ASCII whitespace only (Python
// also strips other Unicode spaces; llama.cpp strips ASCII, as here).
//
// Thread-safety: a ChatTemplate is an immutable value.
#ifndef ZCPACK_RUNTIME_CHAT_TEMPLATE_H_
#define ZCPACK_RUNTIME_CHAT_TEMPLATE_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime {

enum class ChatTemplateKind : int { kLlama3 = 0, kChatMl = 1, kLlama2 = 2 };

// "llama3", "chatml" or "llama2" (llama.cpp's names for the same families).
absl::string_view ChatTemplateKindName(ChatTemplateKind kind);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatRenderOptions {
  // Append what makes the model answer next (the assistant header); as
  // Jinja's add_generation_prompt.
  bool add_generation_prompt = true;
  // Llama 3.1+ templates: the "Today Date: " text. Empty means what the
  // template does by itself: today's local date as "%d %b %Y" ("29 Nov
  // 2026") when it calls strftime_now (3.2), else the date its source
  // sets (3.1: "26 Jul 2024").
  std::string date_string;
  // The text of the vocabulary's BOS and EOS tokens, for the llama-2 turns
  // that write them between turns ("<s>", "</s>").
  std::string bos_text;
  std::string eos_text;
};

class ChatTemplate {
 public:
  // Detect(): the family of the Jinja `source` (see the file comment).
  // FailedPrecondition when `source` is empty ("no chat template");
  // Unimplemented when it is none of the three families, naming the markers
  // looked for and quoting the template's start. Messages do not name a file: callers
  // add it.
  static absl::StatusOr<ChatTemplate> Detect(absl::string_view source);

  ChatTemplateKind kind() const { return kind_; }
  absl::string_view name() const { return ChatTemplateKindName(kind_); }
  // A Llama 3.1+ template (the system header with the dates).
  bool has_date_header() const { return date_header_; }
  // The system message a ChatML template writes when the conversation has
  // none; empty when it writes none.
  const std::string& default_system() const { return default_system_; }

  // Apply(): `messages` rendered as the template renders them (without the
  // leading BOS; see the file comment). InvalidArgument for a role other
  // than system, user and assistant, a system message that is not the
  // first, an empty conversation, a system message to a llama-2 template
  // without "<<SYS>>", or (llama-2, as its template raises) turns after the
  // system message that do not alternate user, assistant, user, ...
  absl::StatusOr<std::string> Apply(std::span<const ChatMessage> messages,
                                    const ChatRenderOptions& options = {}) const;

 private:
  ChatTemplate() = default;

  ChatTemplateKind kind_ = ChatTemplateKind::kChatMl;
  // kLlama3
  bool date_header_ = false;
  bool date_from_clock_ = false;
  std::string default_date_;
  // kChatMl
  std::string default_system_;
  // kLlama2
  bool system_block_ = false;
  bool strip_ = false;
  bool bos_between_turns_ = false;
};

// ApplyChatTemplate(): detects `vocab`'s chat_template and renders `messages`
// with its BOS and EOS texts; the errors of Detect() and Apply().
absl::StatusOr<std::string> ApplyChatTemplate(const Vocabulary& vocab,
                                              std::span<const ChatMessage> messages,
                                              bool add_generation_prompt = true);

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_CHAT_TEMPLATE_H_
