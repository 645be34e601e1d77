// `zcpack run --prompt/--chat` as a user runs it: text in, text out.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/runtime/text_model.h"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPrompt[] = "Once upon a time";

class RunTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    plain_ = new std::string(ConvertTinyModel(*dir_, "plain"));
    text_ = new std::string(TextModel(*dir_, "text"));
    chat_ = new std::string(TextModel(*dir_, "chat", kChatMlTemplate));
  }
  static void TearDownTestSuite() {
    delete chat_;
    delete text_;
    delete plain_;
    delete dir_;
  }
  static nlohmann::json Json(const CliResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  static ScopedTempDir* dir_;
  static std::string* plain_;
  static std::string* text_;
  static std::string* chat_;
};
ScopedTempDir* RunTextTest::dir_ = nullptr;
std::string* RunTextTest::plain_ = nullptr;
std::string* RunTextTest::text_ = nullptr;
std::string* RunTextTest::chat_ = nullptr;

TEST_F(RunTextTest, PromptStreamsThePromptAndTheTextThenWhyItStopped) {
  const CliResult r = RunZcpack({"run", *text_, "--prompt", kPrompt, "-n", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(kPrompt));
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_THAT(r.err, HasSubstr("stopped: "));
  EXPECT_THAT(r.err, HasSubstr("tokens/s"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("tokens/s")));  // stdout is only text
}

TEST_F(RunTextTest, JsonRecordsIdsTextAndTheStopReason) {
  const nlohmann::json j =
      Json(RunZcpack({"run", *text_, "--prompt", kPrompt, "-n", "5", "--json"}));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["prompt_text"], kPrompt);
  ASSERT_FALSE(j["prompt"].empty());
  EXPECT_EQ(j["prompt"][0], kBosId);  // the vocabulary adds BOS
  EXPECT_LE(j["generated"].size(), 5u);
  const std::string reason = j["stop_reason"];
  EXPECT_TRUE(reason == "max_tokens" || reason == "end_of_generation") << reason;
  if (reason == "max_tokens") {
    EXPECT_EQ(j["generated"].size(), 5u);
  }
  // The streamed text is the prompt, then exactly the reported text.
  const CliResult streamed = RunZcpack({"run", *text_, "--prompt", kPrompt, "-n", "5"});
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, std::string(kPrompt) + j["text"].get<std::string>() + "\n");
}

TEST_F(RunTextTest, StopsAtTheVocabularysEndOfGeneration) {
  const nlohmann::json first =
      Json(RunZcpack({"run", *text_, "--prompt", kPrompt, "-n", "4", "--json"}));
  ASSERT_FALSE(first["generated"].empty());
  // The same weights with a vocabulary whose EOS is the first token they
  // generate after this prompt.
  const int32_t eos = first["generated"][0];
  const std::string path = TextModel(*dir_, "eos", "", {}, eos);
  const nlohmann::json j = Json(RunZcpack({"run", path, "--prompt", kPrompt, "-n", "4", "--json"}));
  EXPECT_EQ(j["stop_reason"], "end_of_generation");
  EXPECT_EQ(j["generated"], nlohmann::json::array({eos}));
  const CliResult text = RunZcpack({"run", path, "--prompt", kPrompt, "-n", "4"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.err, HasSubstr("stopped: end_of_generation after 1 tokens"));
}

TEST_F(RunTextTest, ChatRendersTheTemplateAndPrintsOnlyTheReply) {
  const nlohmann::json j = Json(RunZcpack(
      {"run", *chat_, "--chat", "hi", "--system", "be brief", "-n", "3", "--json"}));
  EXPECT_EQ(j["prompt_text"],
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n");
  // The markers are special tokens: BOS, then <|im_start|>.
  ASSERT_GE(j["prompt"].size(), 2u);
  EXPECT_EQ(j["prompt"][0], kBosId);
  EXPECT_EQ(j["prompt"][1], kImStartId);
  const CliResult r = RunZcpack({"run", *chat_, "--chat", "hi", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("im_start")));
}

TEST_F(RunTextTest, ChatWithoutATemplateIsRefused) {
  const CliResult r = RunZcpack({"run", *text_, "--chat", "hi"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(*text_));
  EXPECT_THAT(r.err, HasSubstr("no chat template"));
}

TEST_F(RunTextTest, UnknownChatTemplateIsRefusedNamingIt) {
  const std::string path =
      TextModel(*dir_, "gemma", "{% for m in messages %}<start_of_turn>{{ m }}{% endfor %}");
  const CliResult r = RunZcpack({"run", path, "--chat", "hi"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("unsupported chat template"));
  EXPECT_THAT(r.err, HasSubstr("<start_of_turn>"));
}

// tokenize on a container that carries no tokenizer: the input cannot be
// used (1, as the README's exit codes say), not a missing file (3).
TEST_F(RunTextTest, TokenizeWithoutATokenizerIsAnUnusableInput) {
  const CliResult r = RunZcpack({"tokenize", *plain_, "hi"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("carries no tokenizer"));
}

TEST_F(RunTextTest, PromptWithoutATokenizerIsAUsageError) {
  for (const char* flag : {"--prompt", "--chat"}) {
    const CliResult r = RunZcpack({"run", *plain_, flag, "hi"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("carries no tokenizer"));
    EXPECT_THAT(r.err, HasSubstr("--tokens"));
  }
}

TEST_F(RunTextTest, PromptFlagsAreExclusive) {
  const struct {
    std::vector<std::string> args;
    const char* says;
  } cases[] = {
      {{"run", *text_, "--prompt", "a", "--tokens", "1,2"}, "only one of"},
      {{"run", *text_, "--prompt", "a", "--chat", "b"}, "only one of"},
      {{"run", *text_, "--prompt", "a", "--system", "b"}, "--system goes with --chat"},
      {{"run", *text_}, "give a prompt"},
  };
  for (const auto& c : cases) {
    const CliResult r = RunZcpack(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says));
  }
}

TEST_F(RunTextTest, TokensStillWorkOnAContainerWithATokenizer) {
  const CliResult r = RunZcpack({"run", *text_, "--tokens", "1,2,3", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("generated: "));
}

// A vocabulary-only GGUF of TextVocabulary() (as llama.cpp's
// ggml-vocab-*.gguf files are), written to `path`.
void WriteVocabularyGguf(const std::string& path) {
  const nlohmann::json v = TextVocabulary();
  GgufTestWriter w;
  w.AddString("general.architecture", "llama")
      .AddString("tokenizer.ggml.model", "llama")
      .AddStringArray("tokenizer.ggml.tokens", v["tokenizer.ggml.tokens"].get<std::vector<std::string>>())
      .AddFloat32Array("tokenizer.ggml.scores", v["tokenizer.ggml.scores"].get<std::vector<float>>())
      .AddInt32Array("tokenizer.ggml.token_type", v["tokenizer.ggml.token_type"].get<std::vector<int32_t>>())
      .AddUint32("tokenizer.ggml.bos_token_id", kBosId)
      .AddUint32("tokenizer.ggml.eos_token_id", kEosId)
      .AddBool("tokenizer.ggml.add_bos_token", true);
  ASSERT_TRUE(WriteFileBytes(path, w.Build()).ok());
}

TEST_F(RunTextTest, ConvertCarriesATokenizerGivenBesideTheCheckpoint) {
  const std::string vocab = dir_->File("vocab.gguf");
  WriteVocabularyGguf(vocab);
  const std::string source = dir_->File("tok-src");
  ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", source}).exit_code, 0);
  const std::string out = dir_->File("tok.zcpack");
  const CliResult convert =
      RunZcpack({"convert", source, "-o", out, "--tokenizer", vocab, "--quiet"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const CliResult inspect = RunZcpack({"inspect", out, "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  const nlohmann::json j = nlohmann::json::parse(inspect.out);
  ASSERT_EQ(j["tokenizers"].size(), 1u);
  EXPECT_EQ(j["tokenizers"][0]["kind"], "gguf-metadata");
  EXPECT_EQ(j["tokenizers"][0]["file_name"], "vocab.gguf");
  // The carried vocabulary runs, and gives the ids the same vocabulary
  // carried by hand gives.
  const nlohmann::json a = Json(RunZcpack({"run", out, "--prompt", kPrompt, "-n", "2", "--json"}));
  const nlohmann::json b =
      Json(RunZcpack({"run", *text_, "--prompt", kPrompt, "-n", "2", "--json"}));
  EXPECT_EQ(a["prompt"], b["prompt"]);
  EXPECT_EQ(a["generated"], b["generated"]);
  // verify checks the carried blob with the rest.
  EXPECT_EQ(RunZcpack({"verify", out}).exit_code, 0);
}

TEST_F(RunTextTest, ConvertRefusesATokenizerItCannotCarry) {
  const std::string source = dir_->File("tok-src-bad");
  ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", source}).exit_code, 0);
  const std::string bogus = dir_->File("vocab.txt");
  ASSERT_TRUE(WriteFileBytes(bogus, {'a', 'b'}).ok());
  const CliResult r =
      RunZcpack({"convert", source, "-o", dir_->File("bad.zcpack"), "--tokenizer", bogus});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("vocab.txt"));
  EXPECT_THAT(r.err, HasSubstr("not a tokenizer zcpack carries"));
}

}  // namespace
}  // namespace zcpack::testing
