// Chat templates: detection by markers and rendering. The expected strings
// are what Jinja2 (3.1, with Hugging Face's trim_blocks and lstrip_blocks)
// renders from the real templates (Meta Llama 3 and 3.1, Qwen 2.5, Meta
// Llama 2 chat) for the same messages, minus the leading bos_token, which the
// tokenizer adds. The template sources below are cut down to the markers
// detection reads.
#include "zcpack/runtime/chat_template.h"

#include <cctype>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zcpack::runtime {
namespace {

// Marker-bearing stand-ins for the real templates.
constexpr char kLlama3[] =
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% endfor %}";
constexpr char kLlama31[] =
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" "
    "%}{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}<|end_header_id|>";
constexpr char kLlama32[] =
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}"
    "{%- else %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "Cutting Knowledge Date <|start_header_id|> <|end_header_id|>";
constexpr char kQwen25[] =
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}"
    "{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
    "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are "
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}";
constexpr char kChatMlPlain[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
constexpr char kLlama2[] =
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\\\n' + "
    "system_message + '\\\\n<</SYS>>\\\\n\\\\n' + message['content'] %}{% endif %}{{ bos_token + "
    "'[INST] ' + content.strip() + ' [/INST]' }}{{ ' '  + content.strip() + ' ' + eos_token }}";
constexpr char kMistralV01[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' "
    "+ message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% endif %}{% endfor %}";

const std::vector<ChatMessage> kUserOnly = {{"user", "  Hello there \n"}};
const std::vector<ChatMessage> kWithSystem = {{"system", " Be brief. "}, {"user", "Hi"}};
const std::vector<ChatMessage> kMultiTurn = {
    {"system", "S"}, {"user", "Q1 "}, {"assistant", " A1 "}, {"user", "Q2"}};

std::string Render(const char* source, const std::vector<ChatMessage>& messages,
                   ChatRenderOptions options = {}) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(source);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return "";
  absl::StatusOr<std::string> text = t->Apply(messages, options);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

ChatRenderOptions Llama2Tokens() {
  ChatRenderOptions options;
  options.bos_text = "<s>";
  options.eos_text = "</s>";
  return options;
}

TEST(ChatTemplateTest, DetectsEachFamilyByItsMarkers) {
  EXPECT_EQ(ChatTemplate::Detect(kLlama3)->kind(), ChatTemplateKind::kLlama3);
  EXPECT_EQ(ChatTemplate::Detect(kLlama31)->kind(), ChatTemplateKind::kLlama3);
  EXPECT_EQ(ChatTemplate::Detect(kQwen25)->kind(), ChatTemplateKind::kChatMl);
  EXPECT_EQ(ChatTemplate::Detect(kChatMlPlain)->kind(), ChatTemplateKind::kChatMl);
  EXPECT_EQ(ChatTemplate::Detect(kLlama2)->kind(), ChatTemplateKind::kLlama2);
  EXPECT_EQ(ChatTemplate::Detect(kMistralV01)->kind(), ChatTemplateKind::kLlama2);
  EXPECT_EQ(ChatTemplate::Detect(kLlama3)->name(), "llama3");
  EXPECT_EQ(ChatTemplate::Detect(kQwen25)->name(), "chatml");
  EXPECT_EQ(ChatTemplate::Detect(kLlama2)->name(), "llama2");
}

TEST(ChatTemplateTest, ChatMlMarkersWinOverInst) {
  // llama.cpp checks <|im_start|> before [INST]; so does Detect().
  EXPECT_EQ(ChatTemplate::Detect("<|im_start|> [INST]")->kind(), ChatTemplateKind::kChatMl);
}

TEST(ChatTemplateTest, EmptyTemplateIsFailedPrecondition) {
  const absl::Status s = ChatTemplate::Detect("").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("no chat template"), std::string::npos) << s;
}

TEST(ChatTemplateTest, UnknownTemplatesAreRefusedNamingWhatWasFound) {
  struct Case {
    const char* source;
    const char* says;
  } cases[] = {
      {"{% for m in messages %}<start_of_turn>{{ m['content'] }}{% endfor %}",
       "none of the llama-3"},
      {"<|im_start|>{{ m }}<|im_sep|>", "ChatML variant"},
      {"[SYSTEM_PROMPT]{{ s }}[/SYSTEM_PROMPT][INST]", "Mistral"},
      {"[AVAILABLE_TOOLS][INST]", "Mistral"},
      {"mistral-v7", "Mistral"},
  };
  for (const Case& c : cases) {
    const absl::Status s = ChatTemplate::Detect(c.source).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << c.source;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s;
    // The template's start is quoted.
    EXPECT_NE(s.message().find(std::string(c.source).substr(0, 8)), std::string::npos) << s;
  }
}

TEST(ChatTemplateTest, QuotedTemplateStartIsCutAndEscaped) {
  const std::string source = std::string("\xff{{ x }}") + std::string(200, 'a');
  const absl::Status s = ChatTemplate::Detect(source).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("\\xff{{ x }}"), std::string::npos) << s;
  EXPECT_NE(s.message().find("...'"), std::string::npos) << s;
  EXPECT_EQ(s.message().find(std::string(100, 'a')), std::string::npos);
}

TEST(ChatTemplateTest, Llama3RendersTrimmedTurnsAndTheAssistantHeader) {
  EXPECT_EQ(Render(kLlama3, kUserOnly),
            "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(kLlama3, kWithSystem),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(kLlama3, kMultiTurn),
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ1<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Llama3WithoutGenerationPromptEndsAtTheLastTurn) {
  ChatRenderOptions options;
  options.add_generation_prompt = false;
  EXPECT_EQ(Render(kLlama3, kUserOnly, options),
            "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>");
}

TEST(ChatTemplateTest, Llama31AlwaysWritesTheDatedSystemHeader) {
  const absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(kLlama31);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->has_date_header());
  EXPECT_EQ(Render(kLlama31, kUserOnly),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(kLlama31, kWithSystem),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(kLlama31, kMultiTurn),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ1<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Llama31DateCanBeGiven) {
  ChatRenderOptions options;
  options.date_string = "01 Jan 2030";
  EXPECT_NE(Render(kLlama31, kUserOnly, options).find("Today Date: 01 Jan 2030\n\n"),
            std::string::npos);
}

TEST(ChatTemplateTest, Llama32DateComesFromTheClock) {
  // strftime_now("%d %b %Y"): two digits, a three-letter month, four digits.
  const std::string text = Render(kLlama32, kUserOnly);
  const size_t at = text.find("Today Date: ");
  ASSERT_NE(at, std::string::npos) << text;
  const std::string date = text.substr(at + 12, 11);
  EXPECT_TRUE(std::isdigit(date[0]) && std::isdigit(date[1]) && date[2] == ' ' &&
              std::isalpha(date[3]) && date[6] == ' ' && std::isdigit(date[7]) &&
              std::isdigit(date[10]))
      << date;
  EXPECT_EQ(text.substr(at + 23, 2), "\n\n");
}

TEST(ChatTemplateTest, QwenWritesItsDefaultSystemMessageWhenThereIsNone) {
  const absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(kQwen25);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->default_system(),
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(Render(kQwen25, kUserOnly),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\n  Hello there \n<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Render(kQwen25, kWithSystem),
            "<|im_start|>system\n Be brief. <|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Render(kQwen25, kMultiTurn),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1 <|im_end|>\n"
            "<|im_start|>assistant\n A1 <|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, PlainChatMlHasNoDefaultSystemMessage) {
  EXPECT_EQ(ChatTemplate::Detect(kChatMlPlain)->default_system(), "");
  EXPECT_EQ(Render(kChatMlPlain, kUserOnly),
            "<|im_start|>user\n  Hello there \n<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Llama2PutsTheSystemPromptInTheFirstTurn) {
  EXPECT_EQ(Render(kLlama2, kUserOnly, Llama2Tokens()), "[INST] Hello there [/INST]");
  EXPECT_EQ(Render(kLlama2, kWithSystem, Llama2Tokens()),
            "[INST] <<SYS>>\n Be brief. \n<</SYS>>\n\nHi [/INST]");
  EXPECT_EQ(Render(kLlama2, kMultiTurn, Llama2Tokens()),
            "[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
}

TEST(ChatTemplateTest, Llama2WithoutStripKeepsTextAndWritesNoBosBetweenTurns) {
  const std::vector<ChatMessage> turns = {
      {"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}};
  EXPECT_EQ(Render(kMistralV01, turns, Llama2Tokens()), "[INST] Q1 [/INST]A1</s>[INST] Q2 [/INST]");
}

TEST(ChatTemplateTest, Llama2WithoutSysBlockRefusesASystemMessage) {
  const absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(kMistralV01);
  ASSERT_TRUE(t.ok());
  const absl::Status s = t->Apply(kWithSystem, Llama2Tokens()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("<<SYS>>"), std::string::npos) << s;
}

TEST(ChatTemplateTest, Llama2RequiresAlternatingTurns) {
  const absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(kLlama2);
  ASSERT_TRUE(t.ok());
  const std::vector<ChatMessage> twice = {{"user", "a"}, {"user", "b"}};
  EXPECT_EQ(t->Apply(twice).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<ChatMessage> assistant_first = {{"assistant", "a"}};
  EXPECT_EQ(t->Apply(assistant_first).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, BadConversationsAreInvalidArgument) {
  const absl::StatusOr<ChatTemplate> t = ChatTemplate::Detect(kChatMlPlain);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Apply({}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<ChatMessage> bad_role = {{"tool", "x"}};
  const absl::Status role = t->Apply(bad_role).status();
  EXPECT_EQ(role.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(role.message().find("'tool'"), std::string::npos) << role;
  const std::vector<ChatMessage> late_system = {{"user", "x"}, {"system", "y"}};
  EXPECT_EQ(t->Apply(late_system).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, ApplyChatTemplateUsesTheVocabularysBosAndEos) {
  Vocabulary vocab;
  vocab.tokens = {"<unk>", "<s>", "</s>", "a"};
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  vocab.chat_template = kLlama2;
  const std::vector<ChatMessage> turns = {
      {"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}};
  const absl::StatusOr<std::string> text = ApplyChatTemplate(vocab, turns);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "[INST] Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
  vocab.chat_template.clear();
  EXPECT_EQ(ApplyChatTemplate(vocab, turns).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace zcpack::runtime
