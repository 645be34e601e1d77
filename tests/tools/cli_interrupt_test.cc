// Ctrl-C (SIGINT) or SIGTERM during a command that writes a file used to
// leave its temporary file behind: hidden, full-size (the writer reserves the
// whole container up front) and never removed by a later convert of
// another name. Now the command removes it, says "interrupted" and exits
// 128 + the signal; files left by writers that could not clean up (SIGKILL)
// are swept by the next writer into the folder, whichever command it is.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Names in `dir` that look like a writer's temporary file.
std::vector<std::string> TempFiles(const std::string& dir) {
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).find(".zcpack-tmp-") != std::string::npos) {
        found.push_back(e->d_name);
      }
    }
    ::closedir(d);
  }
  return found;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Starts `args`, waits until its temporary file appears in `dir`, sends
// `signal` and returns what the command did. Fails the test when the
// command ended before it was signalled.
CliResult InterruptWhileWriting(const std::vector<std::string>& args, const std::string& dir,
                                int signal, void (*setup)() = nullptr) {
  const RunningZcpack running = StartZcpack(args, setup);
  for (int i = 0; i < 300000 && TempFiles(dir).empty(); ++i) ::usleep(100);
  EXPECT_THAT(TempFiles(dir), ::testing::Not(IsEmpty())) << "no temporary file appeared";
  EXPECT_EQ(::kill(running.pid, signal), 0);
  return FinishZcpack(running);
}

class InterruptTest : public ::testing::Test {
 protected:
  // A stories110m-shaped checkpoint (256 MiB of f16): converting it on one
  // thread takes long enough to be interrupted while it writes.
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("interrupt"));
    model_ = new std::string(*dir_ + "/s110");
    const CliResult r = RunZcpack({"synth", "--shape", "stories110m", "-o", *model_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
    delete model_;
  }
  void SetUp() override { out_ = MakeTempDir("interrupt-out"); }
  void TearDown() override { RemoveTree(out_); }

  static std::string* dir_;
  static std::string* model_;
  std::string out_;
};
std::string* InterruptTest::dir_ = nullptr;
std::string* InterruptTest::model_ = nullptr;

TEST_F(InterruptTest, ConvertRemovesItsTempFileOnSigintAndSigterm) {
  for (const auto& [signal, name] : {std::pair{SIGINT, "SIGINT"}, std::pair{SIGTERM, "SIGTERM"}}) {
    const std::string output = out_ + "/ck.zcpack";
    const CliResult r = InterruptWhileWriting(
        {"convert", *model_, "-o", output, "--threads", "1", "--quiet"}, out_, signal);
    EXPECT_EQ(r.exit_code, 128 + signal) << name << ": " << r.err;
    EXPECT_EQ(r.err, std::string("zcpack convert: interrupted (") + name +
                         "); removed 1 unfinished output file\n");
    EXPECT_THAT(TempFiles(out_), IsEmpty()) << name;
    EXPECT_FALSE(Exists(output)) << name;
  }
}

// With --json, the interrupted command's one object on stdout is the error
// (docs/JSON.md): code "interrupted", the exit code, the input.
TEST_F(InterruptTest, ConvertWithJsonPrintsTheInterruptAsAnError) {
  const std::string output = out_ + "/ck.zcpack";
  const CliResult r = InterruptWhileWriting(
      {"convert", *model_, "-o", output, "--threads", "1", "--json"}, out_, SIGINT);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["command"], "convert");
  EXPECT_EQ(j["error"]["code"], "interrupted");
  EXPECT_EQ(j["error"]["exit_code"], 130);
  EXPECT_EQ(j["error"]["status"], "CANCELLED");
  EXPECT_EQ(j["error"]["file"], *model_);
  EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr("interrupted (SIGINT)"));
  EXPECT_THAT(r.err, HasSubstr("zcpack convert: interrupted (SIGINT)"));
}

TEST_F(InterruptTest, SynthRemovesItsTempFileOnSigterm) {
  const std::string folder = out_ + "/m";
  const CliResult r = InterruptWhileWriting(
      {"synth", "--shape", "stories110m", "--threads", "1", "-o", folder}, folder, SIGTERM);
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_EQ(r.err, "zcpack synth: interrupted (SIGTERM); removed 1 unfinished output file\n");
  EXPECT_THAT(TempFiles(folder), IsEmpty());
  EXPECT_FALSE(Exists(folder + "/model.safetensors"));
}

// A shell starts a background job of a script with SIGINT ignored (and
// `nohup` ignores SIGHUP): the command must not start catching it.
TEST_F(InterruptTest, ASignalIgnoredAtStartStaysIgnored) {
  const std::string output = out_ + "/ck.zcpack";
  const CliResult r = InterruptWhileWriting(
      {"convert", *model_, "-o", output, "--threads", "1", "--quiet"}, out_, SIGINT,
      [] { ::signal(SIGINT, SIG_IGN); });
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(output));
  EXPECT_THAT(TempFiles(out_), IsEmpty());
}

// The id of a process that has exited and been reaped.
int GonePid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return static_cast<int>(pid);
}

// What SIGKILL leaves (no process can clean up after it) is swept by the
// next writer into the folder, synth as well as convert, with a note.
TEST_F(InterruptTest, SynthSweepsATempFileLeftByAGoneWriter) {
  const std::string folder = out_ + "/m";
  ASSERT_EQ(::mkdir(folder.c_str(), 0755), 0);
  const std::string stale = ".model.safetensors.zcpack-tmp-" + std::to_string(GonePid()) + "-Ab12Cd";
  std::ofstream(folder + "/" + stale) << "left by a killed writer";
  const CliResult r = RunZcpack({"synth", "--shape", "tiny", "-o", folder});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("note: removed " + folder + "/" + stale +
                               ", a temporary file left by a writer that is gone\n"));
  EXPECT_THAT(TempFiles(folder), IsEmpty());
}

}  // namespace
}  // namespace zcpack::testing
