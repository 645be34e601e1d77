// Each command recognises what it was given (a container, a GGUF file, a
// safetensors file, a model folder) and, given the wrong kind, says what the
// file is and what to run instead: `convert tiny.zcpack` used to answer
// "header of 727905342071200393 bytes runs past the end". Misspelled
// commands, flags and llama.cpp's quantization names get a "did you mean".
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/cli_runner.h"
#include "tests/tools/model_suite.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

class InputKindTest : public ModelSuite {
 protected:
  static void SetUpTestSuite() {
    SetUpModel("input-kind", "tiny");
    // Recognised by its magic alone: the commands refuse it before parsing.
    std::ofstream(Gguf(), std::ios::binary) << std::string("GGUF\x03\0\0\0", 8) << std::string(64, '\0');
  }
  static std::string Folder() { return Source(); }
  static std::string Safetensors() { return Source() + "/model.safetensors"; }
  static std::string Gguf() { return Path("model.gguf"); }
};

TEST_F(InputKindTest, ConvertOfAContainerSaysItIsOneAlready) {
  const std::string out = Dir() + "/again.zcpack";
  const CliResult r = RunZcpack({"convert", Container(), "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "zcpack convert: " + Container() +
                       " is already a zcpack container; there is nothing to convert. Check it "
                       "with 'zcpack verify " + Container() + "', look inside with 'zcpack "
                       "inspect " + Container() + "', or generate with 'zcpack run " +
                       Container() + " --prompt TEXT'\n");
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("runs past the end")));
}

// run, inspect, verify, bench and plan read containers only: given a checkpoint,
// each says what it is and gives the convert command line.
TEST_F(InputKindTest, ContainerCommandsGivenACheckpointSayConvertFirst) {
  struct Case {
    std::string path, kind, suggested;
  };
  const std::vector<Case> inputs = {
      {Gguf(), "a GGUF file", "model.zcpack"},
      {Safetensors(), "a safetensors file", "model.zcpack"},
      {Folder(), "a model folder (Hugging Face layout)", "tiny.zcpack"},
  };
  for (const Case& input : inputs) {
    const std::vector<std::vector<std::string>> commands = {
        {"run", input.path, "--tokens", "1"},
        {"inspect", input.path},
        {"verify", input.path},
        {"bench", input.path, "--runs", "1"},
        {"plan", input.path},
    };
    for (const auto& args : commands) {
      const CliResult r = RunZcpack(args);
      EXPECT_EQ(r.exit_code, 1) << args[0] << " " << input.path << ": " << r.err;
      EXPECT_EQ(r.err, "zcpack " + args[0] + ": " + input.path + " is " + input.kind +
                           ", not a zcpack container, which is what " + args[0] +
                           " reads: convert it first: zcpack convert " + input.path + " -o " +
                           input.suggested + "\n");
      EXPECT_EQ(r.out, "") << args[0];
    }
  }
}

// export reads containers: a GGUF is pointed at convert --to gguf (the
// layout in one step), a checkpoint at convert.
TEST_F(InputKindTest, ExportOfAGgufPointsAtConvertToGguf) {
  const std::string out = Dir() + "/aligned.gguf";
  CliResult r = RunZcpack({"export", Gguf(), "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "zcpack export: " + Gguf() +
                       " is already a GGUF file; export reads a zcpack container. For the "
                       "page-aligned, forward-pass-ordered GGUF layout run: zcpack convert " +
                       Gguf() + " -o " + out + " --to gguf\n");
  r = RunZcpack({"export", Folder(), "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is a model folder (Hugging Face layout), not a zcpack container, "
                               "which is what export reads: convert it first"));
  EXPECT_FALSE(std::ifstream(out).good());
}

// tokenize reads GGUF files as well as containers; a checkpoint folder is
// pointed at convert, which carries its tokenizer files.
TEST_F(InputKindTest, TokenizeOfAFolderSaysConvertFirst) {
  const CliResult r = RunZcpack({"tokenize", Folder(), "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("zcpack tokenize: " + Folder() +
                               " is a model folder (Hugging Face layout); tokenize reads a zcpack "
                               "container or a GGUF file: convert it first"));
}

// A file of none of the kinds still gets the reader's own words.
TEST_F(InputKindTest, AnythingElseIsLeftToTheReader) {
  const std::string text = Dir() + "/notes.txt";
  std::ofstream(text) << "not a model\n";
  const CliResult r = RunZcpack({"run", text, "--tokens", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a zcpack container (bad magic)"));
}

TEST_F(InputKindTest, AMisspelledCommandGetsTheNearestOne) {
  const CliResult r = RunZcpack({"convret", Folder(), "-o", Dir() + "/x.zcpack"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "zcpack: unknown command 'convret' (did you mean convert?); run 'zcpack --help'\n");
  const CliResult far = RunZcpack({"frobnicate"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_EQ(far.err, "zcpack: unknown command 'frobnicate'; run 'zcpack --help'\n");
}

TEST_F(InputKindTest, AMisspelledFlagGetsTheNearestOfItsCommand) {
  const CliResult r = RunZcpack({"convert", Folder(), "-o", Dir() + "/x.zcpack", "--quiett"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::StartsWith(
                         "zcpack convert: unknown flag '--quiett' (did you mean --quiet?)\n"));
  // Nothing near: no suggestion.
  const CliResult far = RunZcpack({"inspect", Container(), "--shape", "tiny"});
  EXPECT_THAT(far.err, ::testing::StartsWith("zcpack inspect: unknown flag '--shape'\n"));
}

// The --quant error lists only what convert accepts (bf16 is a dtype zcpack
// reads, never a target), and llama.cpp's names get the nearest choice.
TEST_F(InputKindTest, QuantNamesGetTheNearestTarget) {
  const std::string out = Dir() + "/x.zcpack";
  const CliResult r = RunZcpack({"convert", Folder(), "-o", out, "--quant", "q9"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give keep, q4_0, q4_k, q8_0, f16 or f32\n"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("bf16")));
  const CliResult mix = RunZcpack({"convert", Folder(), "-o", out, "--quant", "q4_k_m"});
  EXPECT_EQ(mix.exit_code, 2);
  EXPECT_THAT(mix.err, HasSubstr("zcpack convert: --quant q4_k_m: llama.cpp's Q4_K_M is a mix of "
                                 "block types; did you mean q4_k? (zcpack's mix: every matrix "
                                 "q4_k, the output head q8_0 (--output-quant), 1-D tensors as "
                                 "they are; a Q4_K_M GGUF file is repacked as it is with --quant "
                                 "keep); give keep, q4_0, q4_k, q8_0, f16 or f32\n"));
  const CliResult bf16 = RunZcpack({"convert", Folder(), "-o", out, "--quant", "bf16"});
  EXPECT_THAT(bf16.err, HasSubstr("zcpack reads bf16 tensors (a GGUF source keeps them with "
                                  "--quant keep) but does not convert to bf16"));
  const CliResult close = RunZcpack({"convert", Folder(), "-o", out, "--quant", "q8"});
  EXPECT_THAT(close.err, HasSubstr("'q8' is not a type zcpack converts to (did you mean q8_0?)"));
  const CliResult q5 = RunZcpack({"convert", Folder(), "-o", out, "--output-quant", "q5_k_m"});
  EXPECT_THAT(q5.err, HasSubstr("--output-quant q5_k_m: llama.cpp's Q5_K_M is not a type zcpack "
                                "converts to; the nearest are q4_k"));
  EXPECT_THAT(q5.err, HasSubstr("; give q4_0, q4_k, q8_0, f16 or f32\n"));
}

}  // namespace
}  // namespace zcpack::testing
