// The small flags every command shares: -q/--quiet silences progress, notes
// and summaries (never errors, warnings or --json), -v/--verbose adds the
// detail a command has (per-tensor lines, per-check lines, file sizes), and
// every flag that takes a byte count accepts size suffixes.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"
#include "tests/tools/model_suite.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// How many lines of `text` start with `prefix`.
int LinesStartingWith(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0;
  return n;
}

class FlagsTest : public ModelSuite {
 protected:
  static void SetUpTestSuite() { SetUpModel("flags", "tiny"); }
  static size_t TensorCount() {
    const CliResult r = RunZcpack({"inspect", Container(), "--json"});
    return nlohmann::json::parse(r.out)["tensors"].size();
  }
};

TEST_F(FlagsTest, QuietConvertExportAndSynthPrintNothing) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"convert", Source(), "-o", Path("q.zcpack"), "-q"},
        std::vector<std::string>{"export", Container(), "-o", Path("q.gguf"), "--quiet"},
        std::vector<std::string>{"synth", "--shape", "tiny", "-o", Path("qsynth"), "-q"}}) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_EQ(r.err, "") << args[0];
  }
}

TEST_F(FlagsTest, QuietKeepsJsonAndErrors) {
  const CliResult json = RunZcpack({"convert", Source(), "-o", Path("qj.zcpack"), "-q", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NO_THROW(nlohmann::json::parse(json.out));
  const CliResult missing = RunZcpack({"convert", Path("absent"), "-o", Path("x.zcpack"), "-q"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("absent"));
}

TEST_F(FlagsTest, QuietVerifyPrintsTheReportOnlyWhenACheckFails) {
  const CliResult sound = RunZcpack({"verify", Container(), "-q"});
  EXPECT_EQ(sound.exit_code, 0) << sound.err;
  EXPECT_EQ(sound.out, "");
  // One byte of the first tensor's data flipped: its checksum fails.
  const std::string damaged = Path("damaged.zcpack");
  std::string bytes = ReadWholeFile(Container());
  const auto j = nlohmann::json::parse(RunZcpack({"inspect", Container(), "--json"}).out);
  const uint64_t offset = j["tensors"][0]["offset"].get<uint64_t>();
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x40);
  std::ofstream(damaged, std::ios::binary) << bytes;
  const CliResult unsound = RunZcpack({"verify", damaged, "-q"});
  EXPECT_EQ(unsound.exit_code, 1);
  EXPECT_THAT(unsound.out, HasSubstr("checksum"));
  EXPECT_THAT(unsound.err, HasSubstr("unsound"));
}

TEST_F(FlagsTest, VerboseConvertAndExportPrintALinePerTensor) {
  const size_t tensors = TensorCount();
  const CliResult plain = RunZcpack({"convert", Source(), "-o", Path("p.zcpack")});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(LinesStartingWith(plain.out, "  tensor "), 0);
  const CliResult convert = RunZcpack({"convert", Source(), "-o", Path("v.zcpack"), "-v"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  EXPECT_EQ(LinesStartingWith(convert.out, "  tensor "), static_cast<int>(tensors));
  EXPECT_THAT(convert.out, HasSubstr("f16 -> q4_0"));
  EXPECT_THAT(convert.out, HasSubstr("dB"));
  const CliResult exported = RunZcpack({"export", Container(), "-o", Path("v.gguf"), "--verbose"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_EQ(LinesStartingWith(exported.out, "  tensor "), static_cast<int>(tensors));
}

TEST_F(FlagsTest, VerboseVerifyListsEveryCheck) {
  const CliResult plain = RunZcpack({"verify", Container()});
  const CliResult verbose = RunZcpack({"verify", Container(), "-v"});
  ASSERT_EQ(verbose.exit_code, 0) << verbose.err;
  EXPECT_THAT(plain.out, Not(HasSubstr("checks:\n")));
  EXPECT_THAT(verbose.out, HasSubstr("checks:\n"));
  EXPECT_THAT(verbose.out, HasSubstr("  pass  integrity/checksum: "));
  EXPECT_THAT(verbose.out, HasSubstr("  pass  header/magic\n"));
}

TEST_F(FlagsTest, VerboseSynthGivesEachFileSize) {
  const CliResult r = RunZcpack({"synth", "--shape", "tiny", "-o", Path("vsynth"), "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("model.safetensors ("));
  EXPECT_THAT(r.out, HasSubstr("MiB)"));
}

TEST_F(FlagsTest, ByteCountsTakeSizeSuffixes) {
  // The same container bytes from 16K as from 16384.
  ASSERT_EQ(RunZcpack({"convert", Source(), "-o", Path("a16k.zcpack"), "--alignment", "16K"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"convert", Source(), "-o", Path("a16384.zcpack"), "--alignment", "16384"}).exit_code, 0);
  EXPECT_EQ(ReadWholeFile(Path("a16k.zcpack")), ReadWholeFile(Path("a16384.zcpack")));
  const CliResult a64k = RunZcpack({"convert", Source(), "-o", Path("a64k.zcpack"), "--alignment", "64KiB"});
  ASSERT_EQ(a64k.exit_code, 0) << a64k.err;
  EXPECT_EQ(nlohmann::json::parse(RunZcpack({"inspect", Path("a64k.zcpack"), "--json"}).out)["alignment"],
            65536);
  const CliResult gguf = RunZcpack({"export", Container(), "-o", Path("a.gguf"), "--alignment", "2M", "--json"});
  ASSERT_EQ(gguf.exit_code, 0) << gguf.err;
  EXPECT_EQ(nlohmann::json::parse(gguf.out)["alignment"], 2097152);
  // A reader limit given with a suffix: a manifest over 1K is a problem.
  const CliResult limited = RunZcpack({"verify", Container(), "--max-manifest-raw-bytes", "1K"});
  EXPECT_EQ(limited.exit_code, 1) << limited.err;
  EXPECT_THAT(limited.out, HasSubstr("manifest_limit"));
  EXPECT_EQ(RunZcpack({"verify", Container(), "--max-manifest-raw-bytes", "64M",
                       "--max-manifest-bytes", "64M", "--max-name-bytes", "4K"})
                .exit_code,
            0);
}

}  // namespace
}  // namespace zcpack::testing
