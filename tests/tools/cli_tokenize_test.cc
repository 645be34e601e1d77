// End-to-end tests of `zcpack tokenize`: llama.cpp's own cases through the
// command line, a container's carried tokenizer, and the exit codes.
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

std::string Vocab(const std::string& name) {
  return absl::StrCat(ZCPACK_VOCAB_DIR, "/ggml-vocab-", name, ".gguf");
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class CliTokenizeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("tokenize"); }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_;
};

TEST_F(CliTokenizeTest, PrintsLlamaCppIdsForTextArgument) {
  const CliResult r = RunZcpack({"tokenize", Vocab("llama-bpe"), "Hello world"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "9906 1917\n");
}

// Each case of llama.cpp's .inp, written to a file and read with --file,
// gives the ids of the .out line.
TEST_F(CliTokenizeTest, FileCasesMatchLlamaCpp) {
  for (const std::string name : {"llama-spm", "qwen2"}) {
    const std::string inp = ReadText(Vocab(name) + ".inp");
    const std::string out = ReadText(Vocab(name) + ".out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    const std::vector<std::string> lines = absl::StrSplit(out, '\n');
    size_t pos = 0;
    for (size_t i = 0; i < 6 && pos < inp.size(); ++i) {
      const size_t next = inp.find(sep, pos);
      const std::string text = inp.substr(pos, next - pos);
      pos = next + sep.size();
      const std::string path = dir_ + "/case.txt";
      ASSERT_TRUE(WriteFileBytes(path, std::vector<uint8_t>(text.begin(), text.end())).ok());
      const CliResult r = RunZcpack({"tokenize", Vocab(name), "--file", path});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      std::string expected(absl::StripAsciiWhitespace(lines[i]));
      EXPECT_EQ(r.out, expected + "\n") << name << " case " << i;
    }
  }
}

TEST_F(CliTokenizeTest, BosAndSpecialFlags) {
  const CliResult plain = RunZcpack({"tokenize", Vocab("llama-bpe"), "<|eot_id|>"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out, "128009\n");  // text, not the token
  const CliResult special =
      RunZcpack({"tokenize", Vocab("llama-bpe"), "<|eot_id|>", "--special", "--bos"});
  ASSERT_EQ(special.exit_code, 0) << special.err;
  EXPECT_EQ(special.out, "128000 128009\n");
  // Phi-3 (general.name in the GGUF): special tokens strip the space after.
  const CliResult phi3 =
      RunZcpack({"tokenize", Vocab("phi-3"), "<|user|>\n text<|end|>\n", "--special"});
  ASSERT_EQ(phi3.exit_code, 0) << phi3.err;
  EXPECT_EQ(phi3.out, "32010 1426 32007\n");
}

TEST_F(CliTokenizeTest, JsonReport) {
  const CliResult r = RunZcpack({"tokenize", Vocab("llama-spm"), "Hello world", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], nlohmann::json({15043, 3186}));
  EXPECT_EQ(j["token_count"], 2);
  EXPECT_EQ(j["text_bytes"], 11);
  EXPECT_EQ(j["tokenizer"]["model"], "spm");
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 32000);
}

// A converted container carries the GGUF's tokenizer; tokenizing through it
// gives what the GGUF itself gives.
TEST_F(CliTokenizeTest, ContainerUsesItsCarriedTokenizer) {
  const std::string gguf = dir_ + "/tiny.gguf";
  const std::string container = dir_ + "/tiny.zcp";
  ASSERT_TRUE(WriteFileBytes(gguf, TinyLlamaGguf(TinyLlamaModelInfo(), format::DTYPE_F32)).ok());
  const CliResult convert = RunZcpack({"convert", gguf, "-o", container, "--quiet"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const CliResult from_gguf = RunZcpack({"tokenize", gguf, "t3t5 t7", "--bos"});
  const CliResult from_container = RunZcpack({"tokenize", container, "t3t5 t7", "--bos"});
  ASSERT_EQ(from_gguf.exit_code, 0) << from_gguf.err;
  ASSERT_EQ(from_container.exit_code, 0) << from_container.err;
  EXPECT_EQ(from_container.out, from_gguf.out);
  EXPECT_THAT(from_container.out, ::testing::StartsWith("1 "));  // BOS
}

TEST_F(CliTokenizeTest, ExitCodes) {
  // No text, or text twice: usage errors.
  CliResult r = RunZcpack({"tokenize", Vocab("gpt-2")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give the text"));
  r = RunZcpack({"tokenize", Vocab("gpt-2"), "x", "--file", "/dev/null"});
  EXPECT_EQ(r.exit_code, 2);
  // A missing file: 3.
  r = RunZcpack({"tokenize", dir_ + "/missing.gguf", "x"});
  EXPECT_EQ(r.exit_code, 3);
  r = RunZcpack({"tokenize", Vocab("gpt-2"), "--file", dir_ + "/missing.txt"});
  EXPECT_EQ(r.exit_code, 3);
  // Neither a container nor a GGUF file: 1.
  const std::string text = dir_ + "/not-a-model";
  ASSERT_TRUE(WriteFileBytes(text, std::vector<uint8_t>(100, 'x')).ok());
  r = RunZcpack({"tokenize", text, "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not-a-model"));
  // A GGUF whose tokenizer zcpack does not support: 1, naming the model.
  GgufTestWriter w;
  w.AddString("tokenizer.ggml.model", "bert")
      .AddStringArray("tokenizer.ggml.tokens", {"[PAD]", "a"});
  const std::string bert = dir_ + "/bert.gguf";
  ASSERT_TRUE(WriteFileBytes(bert, w.Build()).ok());
  r = RunZcpack({"tokenize", bert, "a"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'bert' is not supported"));
  // A FIFO is refused at once, as by every command (1).
  const std::string fifo = dir_ + "/vocab.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  r = FinishZcpack(StartZcpack({"tokenize", fifo, "a"}), /*timeout_seconds=*/30);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a regular file"));
  // A GGUF without tokenizer metadata: 1.
  GgufTestWriter empty;
  empty.AddString("general.architecture", "llama");
  const std::string bare = dir_ + "/bare.gguf";
  ASSERT_TRUE(WriteFileBytes(bare, empty.Build()).ok());
  r = RunZcpack({"tokenize", bare, "a"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no tokenizer"));
}

TEST_F(CliTokenizeTest, HelpDescribesTheCommand) {
  const CliResult r = RunZcpack({"tokenize", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--special"));
  EXPECT_THAT(r.out, HasSubstr("--file PATH"));
}

}  // namespace
}  // namespace zcpack::testing
