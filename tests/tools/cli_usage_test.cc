// Every check of a flag's value, in every command, as one table: each is a
// usage error (exit code 2, README's table), says what is wrong in one line
// followed by the command's usage line, and is found before anything is
// written. Built by going through each command's flags in zcpack_main.cc and
// each check in tools/cli/ (CheckConvertOptions, CheckRunOptions,
// VerifyOptionsFromFlags, CheckBenchOptions, CheckSynthOptions,
// CheckTokenizeOptions, ParseArgs); a new check belongs here.
#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/cli_runner.h"
#include "tests/tools/model_suite.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

// A checkpoint and its container (which carries no tokenizer: synth writes none).
class UsageTest : public ModelSuite {
 protected:
  static void SetUpTestSuite() { SetUpModel("usage", "tiny"); }
  // Where an output would go: must not exist after a usage error.
  static std::string Out() { return Path("out"); }
};

struct UsageCase {
  std::vector<std::string> args;
  std::string says;  // part of the one-line message
};

// Entries of `dir`, "." and ".." aside.
std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

TEST_F(UsageTest, EveryBadFlagValueIsExitTwoWithTheUsageLineAndWritesNothing) {
  const std::string src = Source(), c = Container(), out = Out();
  const std::vector<UsageCase> cases = {
      // convert
      {{"convert", src}, "-o OUT is required"},
      {{"convert", src, "-o", out, "--quant", "q9"}, "--quant q9: 'q9' is not a type"},
      {{"convert", src, "-o", out, "--quant", "q8"}, "did you mean q8_0?"},
      {{"convert", src, "-o", out, "--quant", "bf16"}, "does not convert to bf16"},
      {{"convert", src, "-o", out, "--quant", "q6_k"}, "does not convert to q6_k"},
      {{"convert", src, "-o", out, "--quant", "q4_k_m"}, "did you mean q4_k?"},
      {{"convert", src, "-o", out, "--quant", "Q5_K_M"}, "nearest are q4_k"},
      {{"convert", src, "-o", out, "--output-quant", "q9"}, "--output-quant q9"},
      {{"convert", src, "-o", out, "--output-quant", "keep"}, "--output-quant keep"},
      {{"convert", src, "-o", out, "--quant", "keep", "--output-quant", "q8_0"},
       "--output-quant cannot be given with --quant keep"},
      {{"convert", src, "-o", out, "--quant", "keep", "--keep-f16", "*"},
       "--keep-f16 cannot be given with --quant keep"},
      {{"convert", src, "-o", out, "--alignment", "1000"}, "alignment 1000 is not a power of two"},
      {{"convert", src, "-o", out, "--alignment", "0"}, "alignment 0 is not a power of two"},
      {{"convert", src, "-o", out, "--alignment", "4194304"}, "between 4096 and 2097152"},
      {{"convert", src, "-o", out, "--alignment", "16q"},
       "'16q': unknown unit (use K, M, G or T)"},
      {{"convert", src, "-o", out, "--alignment", "1.5"},
       "'1.5' is not a whole number of bytes"},
      {{"convert", src, "-o", out, "--alignment", "1.5K"}, "alignment 1536 is not a power of two"},
      {{"convert", src, "-o", out, "--layout", "columns"}, "--layout: 'columns' is not a layout"},
      {{"convert", src, "-o", out, "--keep-f16", "a\xff"}, "is not valid UTF-8"},
      {{"convert", src, "-o", out, "--threads", "-1"}, "--threads -1 is out of range"},
      {{"convert", src, "-o", out, "--quiett"}, "unknown flag '--quiett' (did you mean --quiet?)"},
      {{"convert", src, "-o", out, "--noforce=1"}, "flag '--noforce=1' takes no value"},
      {{"convert", src, "-o"}, "flag '-o' needs a value"},
      {{"convert", src, "-o", out, "--force", "--force"}, "given more than once"},
      {{"convert", "-o", out}, "expected 1 argument(s), got 0"},
      {{"convert", src, src, "-o", out}, "expected 1 argument(s), got 2"},
      // verify
      {{"verify", c, "--level", "deep"}, "--level"},
      {{"verify", c, "--against", ""}, "--against needs a source path"},
      {{"verify", c, "--max-rmse", "0.2"}, "apply only with --against"},
      {{"verify", c, "--min-snr", "5"}, "apply only with --against"},
      {{"verify", c, "--against", src, "--max-rmse", "-1"}, "--max-rmse must be a number >= 0"},
      {{"verify", c, "--against", src, "--max-rmse", "nan"}, "--max-rmse must be a number >= 0"},
      {{"verify", c, "--against", src, "--min-snr", "nan"}, "--min-snr must be a number of dB"},
      {{"verify", c, "--threads", "2000"}, "--threads 2000 is out of range"},
      {{"verify", c, "--max-tensors", "lots"}, "bad value 'lots' for --max_tensors"},
      {{"verify", c, "--levle", "full"}, "(did you mean --level?)"},
      // run
      {{"run", c}, "give a prompt: --tokens IDS, --prompt TEXT or --chat MESSAGE"},
      {{"run", c, "--tokens", "1", "--prompt", "hi"}, "give only one of --tokens, --prompt"},
      {{"run", c, "--tokens", "1", "--system", "be brief"}, "--system goes with --chat"},
      {{"run", c, "--tokens", "1,abc"}, "--tokens: 'abc' is not a token id"},
      {{"run", c, "--tokens", ","}, "--tokens: give at least one token id"},
      {{"run", c, "--tokens", "1,99999"}, "--tokens: token 99999 at index 1 is outside"},
      {{"run", c, "--tokens", "-4"}, "--tokens: token -4 at index 0 is outside"},
      {{"run", c, "--prompt", "hello"}, "carries no tokenizer, so --prompt cannot be used"},
      {{"run", c, "--chat", "hello"}, "carries no tokenizer, so --chat cannot be used"},
      {{"run", c, "--tokens", "1", "-n", "-1"}, "-n -1: give at least 1 token to generate"},
      {{"run", c, "--tokens", "1", "-n", "0"}, "-n 0: give at least 1 token to generate"},
      {{"run", c, "--tokens", "1", "-n", "2147483647"}, "more than the 2147483647 a session"},
      {{"run", c, "--tokens", "1", "--context", "-1"}, "--context must not be negative"},
      {{"run", c, "--tokens", "1", "--temperature", "-1"}, "--temperature -1 is not a finite"},
      {{"run", c, "--tokens", "1", "--temperature", "nan"}, "--temperature nan is not a finite"},
      {{"run", c, "--tokens", "1", "--temperature", "inf"}, "--temperature inf is not a finite"},
      {{"run", c, "--tokens", "1", "--top-p", "5"}, "--top_p 5 is not a number from 0 to 1"},
      {{"run", c, "--tokens", "1", "--top-p", "-0.5"}, "--top_p -0.5 is not a number from 0 to 1"},
      {{"run", c, "--tokens", "1", "--top-p", "nan"}, "--top_p nan is not a number from 0 to 1"},
      {{"run", c, "--tokens", "1", "--top-k", "-3"}, "--top_k -3 is negative"},
      {{"run", c, "--tokens", "1", "--prefetch-layers", "-2"}, "--prefetch-layers -2 is negative"},
      {{"run", c, "--tokens", "1", "--loader", "bogus"}, "--loader: unknown loader 'bogus'"},
      {{"run", c, "--tokens", "1", "--advice", "sideways"}, "--advice: "},
      {{"run", c, "--tokens", "1", "--threads", "5000"}, "--threads 5000 is out of range"},
      {{"run", c, "--tokens", "1", "--seed", "many"}, "bad value 'many' for --seed"},
      {{"run", c, "--tokens", "1", "--temprature", "1"}, "(did you mean --temperature?)"},
      {{"run", c, c, "--tokens", "1"}, "expected 1 argument(s), got 2"},
      // tokenize
      {{"tokenize", c}, "give the text to tokenize: an argument, '-' for stdin, or --file"},
      {{"tokenize", c, "text", "--file", "-"}, "either as an argument or with --file, not both"},
      {{"tokenize", c, "a", "b"}, "expected 1 to 2 argument(s), got 3"},
      // bench
      {{"bench", c, "--loaders", "bogus"}, "unknown loader 'bogus'"},
      {{"bench", c, "--runs", "0"}, "--runs must be at least 1"},
      {{"bench", c, "--tokens", "0"}, "--tokens: '0' is not a positive number of tokens"},
      {{"bench", c, "--tokens", "x"}, "--tokens: 'x' is not a positive number of tokens"},
      {{"bench", c, "--cold", "--warm"}, "give at most one of --cold, --warm and --both"},
      {{"bench", c, "--budget", "1MiB"}, "--budget: give at least 16MiB"},
      {{"bench", c, "--budget", "lots"}, "'lots' is not a byte size"},
      {{"bench", c, "--plot", out + ".txt"}, "--plot: the chart must be a .svg or a .png file"},
      {{"bench", c, "--threads", "-2"}, "--threads -2 is out of range"},
      {{"bench", c, "--output", "xml"}, "--output: 'xml' is not a report format"},
      // export
      {{"export", c}, "-o OUT is required"},
      {{"export", c, "-o", out + ".gguf", "--alignment", "1000"},
       "alignment 1000 is not a power of two from 32 to 2097152"},
      {{"export", c, "-o", out + ".gguf", "--alignment", "16"},
       "alignment 16 is not a power of two from 32 to 2097152"},
      // synth
      {{"synth"}, "--out DIR is required"},
      {{"synth", "--shape", "huge", "-o", out}, "unknown shape 'huge'"},
      {{"synth", "--shape", "gpt5", "-o", out}, "unknown shape 'gpt5'"},
      {{"synth", "--dtype", "q4_0", "-o", out}, "synth writes f16, bf16 or f32, not q4_0"},
      {{"synth", "--dtype", "q9", "-o", out}, "--dtype"},
      {{"synth", "--seed", "many", "-o", out}, "bad value 'many' for --seed"},
      {{"synth", "--threads", "100000", "-o", out}, "--threads 100000 is out of range"},
      {{"synth", "-o", out, "stray"}, "expected 0 argument(s), got 1"},
      {{"synth", "--shpe", "tiny", "-o", out}, "(did you mean --shape?)"},
      // inspect
      {{"inspect"}, "expected 1 argument(s), got 0"},
      {{"inspect", c, "--json=maybe"}, "bad value 'maybe' for --json"},
      {{"inspect", c, "--checksum"}, "(did you mean --checksums?)"},
  };
  for (const UsageCase& usage : cases) {
    const std::string what = ::testing::PrintToString(usage.args);
    const CliResult r = RunZcpack(usage.args);
    EXPECT_EQ(r.exit_code, 2) << what << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(usage.says)) << what;
    EXPECT_THAT(r.err, HasSubstr("\nUsage: zcpack " + usage.args[0] + " ")) << what << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << what << ": " << r.err;
    EXPECT_EQ(r.out, "") << what;
  }
  EXPECT_THAT(List(Dir()), ::testing::UnorderedElementsAre("tiny", "tiny.zcpack"));
}

}  // namespace
}  // namespace zcpack::testing
