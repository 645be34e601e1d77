// What a person at a terminal sees. Each command runs on a pseudo-terminal
// of a known width (tests/tools/pty_runner.h) and the test checks the final
// screen: the progress line of convert, synth and verify never reaches the
// terminal's width (the convert line used to be 96 characters, so at 80
// columns every redraw wrapped and left a broken line behind), it leaves no
// fragment once the command is done, and off a terminal nothing but the
// result is written. Help is wrapped to the terminal's width.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/cli_runner.h"
#include "tests/tools/model_suite.h"
#include "tests/tools/pty_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

class TerminalTest : public ModelSuite {
 protected:
  // A stories15m-shaped checkpoint (48 MiB of f16) and its container: big
  // enough that the progress line is drawn while the work runs.
  static void SetUpTestSuite() { SetUpModel("terminal", "stories15m"); }
  static std::string Out(const std::string& name) { return Path(name); }
};

// The screen after `raw`, checked for what every terminal test requires: no
// line reached the width (nothing wrapped), no escape sequence but the
// erases, no line longer than the width.
std::vector<std::string> Screen(const std::string& raw, int columns) {
  ScreenModel screen(columns);
  screen.Feed(raw);
  EXPECT_EQ(screen.wraps(), 0) << "a line reached the terminal's width and wrapped";
  EXPECT_THAT(screen.unknown_sequences(), IsEmpty());
  const std::vector<std::string> lines = screen.Lines();
  for (const std::string& line : lines) {
    EXPECT_LE(line.size(), static_cast<size_t>(columns)) << line;
  }
  return lines;
}

// Whether `raw` holds a progress redraw: a carriage return and an erase.
bool DrewProgress(const std::string& raw) {
  return raw.find('\r') != std::string::npos && raw.find("\x1b[K") != std::string::npos;
}

// No line of the progress display is left on the screen.
void ExpectNoProgressFragment(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr("ETA"))) << "a stale progress line";
    EXPECT_THAT(line, Not(HasSubstr("[#"))) << "a stale progress bar";
    EXPECT_THAT(line, Not(HasSubstr("/s "))) << "a stale throughput";
  }
}

TEST_F(TerminalTest, ConvertProgressFitsEightyColumnsAndLeavesOnlyTheSummary) {
  const PtyResult r = RunZcpackInPty(
      {"convert", Source(), "-o", Out("c80.zcpack"), "--threads", "1"}, 80);
  ASSERT_EQ(r.exit_code, 0) << r.raw;
  EXPECT_TRUE(DrewProgress(r.raw)) << "no progress line was drawn";
  const std::vector<std::string> lines = Screen(r.raw, 80);
  ExpectNoProgressFragment(lines);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines[0], StartsWith("wrote " + Out("c80.zcpack")));
}

TEST_F(TerminalTest, ConvertProgressFitsANarrowTerminal) {
  for (const int columns : {40, 24}) {
    const PtyResult r = RunZcpackInPty(
        {"convert", Source(), "-o", Out("narrow.zcpack"), "--threads", "1", "--force"}, columns);
    ASSERT_EQ(r.exit_code, 0) << r.raw;
    EXPECT_TRUE(DrewProgress(r.raw));
    ExpectNoProgressFragment(Screen(r.raw, columns));
  }
}

TEST_F(TerminalTest, ProgressShowsEtaThroughputAndSizesWhereThereIsRoom) {
  const PtyResult r = RunZcpackInPty(
      {"convert", Source(), "-o", Out("c120.zcpack"), "--threads", "1"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.raw;
  // The last redraw before the line is erased: the whole job done.
  const size_t erase = r.raw.rfind("\r\x1b[K");
  ASSERT_NE(erase, std::string::npos);
  const size_t start = r.raw.rfind('\r', erase - 1);
  ASSERT_NE(start, std::string::npos);
  const std::string last = r.raw.substr(start + 1, erase - start - 1);
  EXPECT_THAT(last, AllOf(StartsWith("convert 100% [#"), HasSubstr(" MiB/"), HasSubstr(" MiB/s"),
                          HasSubstr("ETA 0s"), HasSubstr("tensors")))
      << last;
  EXPECT_LT(last.size(), 120u);
}

TEST_F(TerminalTest, SynthShowsProgressAndLeavesOnlyTheSummary) {
  const PtyResult r =
      RunZcpackInPty({"synth", "--shape", "stories15m", "-o", Out("synth80"), "--threads", "1"}, 80);
  ASSERT_EQ(r.exit_code, 0) << r.raw;
  EXPECT_TRUE(DrewProgress(r.raw));
  const std::vector<std::string> lines = Screen(r.raw, 80);
  ExpectNoProgressFragment(lines);
  ASSERT_EQ(lines.size(), 3u) << r.raw;
  EXPECT_THAT(lines[0], StartsWith("synth stories15m: "));
  EXPECT_THAT(lines[1], HasSubstr("config.json"));
  EXPECT_THAT(lines[2], HasSubstr("model.safetensors"));
}

TEST_F(TerminalTest, VerifyShowsProgressAndLeavesOnlyTheReport) {
  const PtyResult r = RunZcpackInPty({"verify", Container(), "--threads", "1"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.raw;
  EXPECT_TRUE(DrewProgress(r.raw));
  const std::vector<std::string> lines = Screen(r.raw, 60);
  ExpectNoProgressFragment(lines);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines[0], StartsWith("verify " + Container()));
}

TEST_F(TerminalTest, QuietWritesNothingAtAll) {
  const PtyResult convert = RunZcpackInPty({"convert", Source(), "-o", Out("q.zcpack"), "-q"}, 80);
  EXPECT_EQ(convert.exit_code, 0);
  EXPECT_EQ(convert.raw, "");
  const PtyResult verify = RunZcpackInPty({"verify", Container(), "--quiet"}, 80);
  EXPECT_EQ(verify.exit_code, 0);
  EXPECT_EQ(verify.raw, "");
  const PtyResult synth =
      RunZcpackInPty({"synth", "--shape", "tiny", "-o", Out("qsynth"), "-q"}, 80);
  EXPECT_EQ(synth.exit_code, 0);
  EXPECT_EQ(synth.raw, "");
}

TEST_F(TerminalTest, StdoutThatIsNoTerminalGetsOnlyTheResult) {
  const PtyResult r = RunZcpackInPty({"convert", Source(), "-o", Out("file.zcpack")}, 80, 24,
                                     /*stdout_to_file=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.raw;
  EXPECT_THAT(r.stdout_file, StartsWith("wrote " + Out("file.zcpack")));
  EXPECT_EQ(r.stdout_file.find('\r'), std::string::npos);
  EXPECT_EQ(r.stdout_file.find('\x1b'), std::string::npos);
  // The progress went to the terminal on stderr, and was erased from it.
  EXPECT_TRUE(DrewProgress(r.raw));
  EXPECT_THAT(Screen(r.raw, 80), IsEmpty());
}

TEST_F(TerminalTest, NoProgressWhenStderrIsNoTerminal) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"convert", Source(), "-o", Out("pipe.zcpack")},
        std::vector<std::string>{"synth", "--shape", "tiny", "-o", Out("pipe-synth")},
        std::vector<std::string>{"verify", Container()}}) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err, "") << args[0];
    EXPECT_EQ(r.out.find('\r'), std::string::npos) << args[0];
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << args[0];
  }
}

// Ctrl-C while the progress line is up: the line is erased and the
// "interrupted" message takes its place. (The signal is sent as soon as the
// first line is drawn; should the conversion end first, the screen must
// still be clean.)
TEST_F(TerminalTest, InterruptReplacesTheProgressLine) {
  const PtyResult r =
      RunZcpackInPty({"convert", Source(), "-o", Out("int.zcpack"), "--threads", "1", "--force"},
                     80, 24, false, 600, "\x1b[K");
  EXPECT_TRUE(DrewProgress(r.raw));
  const std::vector<std::string> lines = Screen(r.raw, 80);
  ExpectNoProgressFragment(lines);
  if (r.exit_code == 130) {
    ASSERT_FALSE(lines.empty());
    EXPECT_THAT(lines[0], StartsWith("zcpack convert: interrupted (SIGINT)"));
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.raw;
  }
}

TEST_F(TerminalTest, HelpIsWrappedToTheTerminal) {
  for (const int columns : {80, 60}) {
    for (const char* command : {"convert", "verify", "run", "bench", "plan"}) {
      const PtyResult r = RunZcpackInPty({command, "--help"}, columns);
      ASSERT_EQ(r.exit_code, 0);
      const std::vector<std::string> lines = Screen(r.raw, columns);
      ASSERT_FALSE(lines.empty());
      EXPECT_THAT(lines[0], StartsWith(std::string("Usage: zcpack ") + command));
    }
  }
  // Wrapping keeps every word: the help's flags are all still there.
  const PtyResult narrow = RunZcpackInPty({"convert", "--help"}, 50);
  const CliResult plain = RunZcpack({"convert", "--help"});
  for (const char* flag : {"--allow-nonfinite", "--output-quant", "--keep-f16", "--tokenizer",
                           "--verbose", "--quiet"}) {
    EXPECT_THAT(narrow.raw, HasSubstr(flag));
    EXPECT_THAT(plain.out, HasSubstr(flag));
  }
}

TEST(ScreenModelTest, ModelsWrapsAndErases) {
  ScreenModel screen(10);
  screen.Feed("0123456789ab\r\nxyz\rA\x1b[K\nlong line\rab\x1b[2Kc\n");
  EXPECT_EQ(screen.wraps(), 1);
  EXPECT_THAT(screen.Lines(), ElementsAre("0123456789", "ab", "A", "  c"));
  EXPECT_THAT(screen.unknown_sequences(), IsEmpty());
  screen.Feed("\x1b[31m");
  EXPECT_THAT(screen.unknown_sequences(), ElementsAre("\x1b[31m"));
}

}  // namespace
}  // namespace zcpack::testing
