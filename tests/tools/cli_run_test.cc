// `zcpack run` as a user runs it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

class RunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("run"));
    ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", *dir_ + "/tiny"}).exit_code, 0);
    ASSERT_EQ(RunZcpack({"convert", *dir_ + "/tiny", "-o", *dir_ + "/tiny.zcpack"}).exit_code, 0);
    // The tiny shape with a context of 2^20 positions, long enough to keep
    // decoding while a test acts, and with none recorded at all.
    ConvertWithContext("long", 1 << 20);
    ConvertWithContext("unbounded", std::nullopt);
  }
  static void ConvertWithContext(const std::string& name, std::optional<int> context) {
    const std::string source = *dir_ + "/" + name;
    ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", source}).exit_code, 0);
    nlohmann::json config = nlohmann::json::parse(std::ifstream(source + "/config.json"));
    if (context) {
      config["max_position_embeddings"] = *context;
    } else {
      config.erase("max_position_embeddings");
    }
    std::ofstream(source + "/config.json") << config.dump();
    ASSERT_EQ(RunZcpack({"convert", source, "-o", source + ".zcpack"}).exit_code, 0);
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
  }
  static std::string Model() { return *dir_ + "/tiny.zcpack"; }
  static std::string* dir_;
};
std::string* RunTest::dir_ = nullptr;

TEST_F(RunTest, GeneratesAndReportsTimings) {
  const CliResult r = RunZcpack({"run", Model(), "--tokens", "1,2,3", "-n", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("generated: "));
  EXPECT_THAT(r.out, HasSubstr("ms, first token"));
  EXPECT_THAT(r.out, HasSubstr("tokens/s"));
}

TEST_F(RunTest, JsonIsDeterministicAcrossThreadCounts) {
  const CliResult one = RunZcpack({"run", Model(), "--tokens", "1,2", "-n", "12", "--threads", "1", "--json"});
  const CliResult two = RunZcpack({"run", Model(), "--tokens", "1,2", "-n", "12", "--threads", "2", "--json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto a = nlohmann::json::parse(one.out), b = nlohmann::json::parse(two.out);
  EXPECT_EQ(a["generated"].size(), 12u);
  EXPECT_EQ(a["generated"], b["generated"]);
  EXPECT_GT(a["timings"]["open_ms"].get<double>(), 0.0);
}

TEST_F(RunTest, SamplingWithASeedIsReproducible) {
  const std::vector<std::string> args = {"run", Model(), "--tokens", "1", "-n", "10", "--temperature",
                                         "0.9", "--seed", "42", "--json"};
  const CliResult a = RunZcpack(args), b = RunZcpack(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["generated"], nlohmann::json::parse(b.out)["generated"]);
}

TEST_F(RunTest, BadTokensAndMissingFile) {
  const CliResult bad = RunZcpack({"run", Model(), "--tokens", "1,abc"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("'abc' is not a token id"));
  const CliResult range = RunZcpack({"run", Model(), "--tokens", "1,99999"});
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_THAT(range.err, HasSubstr("outside the vocabulary"));
  EXPECT_EQ(RunZcpack({"run", *dir_ + "/absent.zcpack", "--tokens", "1"}).exit_code, 3);
}

TEST_F(RunTest, MemoryPolicyFlags) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--advice", "sequential"}, {"--advice", "random"},
        {"--populate"}, {"--prefetch-layers", "0"}, {"--verify"}}) {
    std::vector<std::string> args = {"run", Model(), "--tokens", "1", "-n", "2"};
    args.insert(args.end(), flags.begin(), flags.end());
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 0) << flags[0] << ": " << r.err;
  }
  EXPECT_EQ(RunZcpack({"run", Model(), "--tokens", "1", "--advice", "sideways"}).exit_code, 2);
}

// --memory-budget: one that holds the file changes nothing (no ring, the
// same tokens); one too small for the anonymous part is a resource error
// (exit 3) that gives the figures. The streamed path itself is compared bit
// for bit in tests/runtime/memory_budget_test.cc (the tiny model is smaller
// than any budget the margin allows a whole process).
TEST_F(RunTest, MemoryBudget) {
  const CliResult plain = RunZcpack({"run", Model(), "--tokens", "1,2", "-n", "6", "--json"});
  const CliResult budget = RunZcpack(
      {"run", Model(), "--tokens", "1,2", "-n", "6", "--memory-budget", "4GiB", "--json"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(budget.exit_code, 0) << budget.err;
  const auto a = nlohmann::json::parse(plain.out), b = nlohmann::json::parse(budget.out);
  EXPECT_EQ(a["generated"], b["generated"]);
  EXPECT_TRUE(a["memory_budget"].is_null());
  EXPECT_EQ(b["memory_budget"]["budget_bytes"], uint64_t{4} << 30);
  EXPECT_FALSE(b["memory_budget"]["streams"].get<bool>());
  EXPECT_EQ(b["memory_budget"]["ring_bytes"], 0u);
  EXPECT_EQ(b["memory_budget"]["streamed_bytes"], 0u);

  const CliResult small = RunZcpack({"run", Model(), "--tokens", "1", "--memory-budget", "20M"});
  EXPECT_EQ(small.exit_code, 3) << small.err;
  EXPECT_THAT(small.err, HasSubstr("a memory budget of 20971520 bytes is too small"));
  EXPECT_THAT(small.err, HasSubstr("bytes of anonymous memory"));
}

// Every mistake on the command line is exit code 2 with the usage line, as
// in verify and bench (these were 1, "the input is unsound").
TEST_F(RunTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"run"},
      {"run", Model()},
      {"run", Model(), "--tokens", ""},
      {"run", Model(), "--tokens", "1,abc"},
      {"run", Model(), "--tokens", "1,99999"},
      {"run", Model(), "--tokens", "-1"},
      {"run", Model(), "--tokens", "1", "-n", "-1"},
      {"run", Model(), "--tokens", "1", "-n", "many"},
      {"run", Model(), "--tokens", "1", "--context", "-5"},
      {"run", Model(), "--tokens", "1", "--loader", "bogus"},
      {"run", Model(), "--tokens", "1", "--advice", "sideways"},
      {"run", Model(), "--tokens", "1", "--memory-budget", "0"},
      {"run", Model(), "--tokens", "1", "--memory-budget", "12parsecs"},
      {"run", Model(), "--tokens", "1", "--memory-budget", "1GiB", "--loader", "pread"},
      {"run", Model(), "--tokens", "1", "--threads", "1.5"},
      {"run", Model(), "--tokens", "1", "--frobnicate"},
      {"run", Model(), "--tokens"},
  };
  for (const auto& args : cases) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Usage: zcpack run")) << ::testing::PrintToString(args);
  }
}

// A path that is not UTF-8 used to abort --json (uncaught nlohmann
// exception, SIGABRT) after generating; the bad byte is now the text \xff.
TEST_F(RunTest, JsonEscapesAPathThatIsNotUtf8) {
  const std::string link = *dir_ + "/b\xff.zcpack";
  ASSERT_EQ(::symlink(Model().c_str(), link.c_str()), 0);
  const CliResult r = RunZcpack({"run", link, "--tokens", "1,2", "-n", "2", "--json"});
  ::unlink(link.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["input"], *dir_ + "/b\\xff.zcpack");
  EXPECT_EQ(j["generated"].size(), 2u);
}

// Waits until `pid` runs more than one thread: `zcpack run` has opened the
// model (its prefetcher is running) and checked its options.
bool WaitForModelOpen(int pid) {
  for (int i = 0; i < 3000; ++i) {
    std::error_code ec;
    const auto tasks = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec);
    if (ec) return false;
    if (std::distance(tasks, std::filesystem::directory_iterator()) > 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The model truncated while `run` decodes out of its mapping: one line that
// names the file and exit code 3, not a silent death by SIGBUS.
TEST_F(RunTest, FileTruncatedWhileMappedIsAnIoError) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{}, std::vector<std::string>{"--populate"}}) {
    const std::string copy = *dir_ + "/truncated.zcpack";
    std::filesystem::copy_file(*dir_ + "/long.zcpack", copy,
                               std::filesystem::copy_options::overwrite_existing);
    std::vector<std::string> args = {"run", copy, "--tokens", "1,2,3", "-n", "50000", "--threads", "2"};
    args.insert(args.end(), flags.begin(), flags.end());
    const RunningZcpack running = StartZcpack(args);
    ASSERT_TRUE(WaitForModelOpen(running.pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_EQ(::truncate(copy.c_str(), 0), 0);
    const CliResult r = FinishZcpack(running, /*timeout_seconds=*/120);
    const std::string what = flags.empty() ? "plain" : flags[0];
    EXPECT_EQ(r.exit_code, 3) << what << ": " << r.err;
    EXPECT_EQ(r.err, "zcpack run: " + copy + ": truncated or unreadable while mapped\n") << what;
  }
}

// -n was added to the prompt length in int: 2^31 - 1 wrapped to "context of
// -2147483648 positions".
TEST_F(RunTest, PromptPlusNBeyondIntIsAUsageErrorWithoutWrapping) {
  const CliResult r = RunZcpack({"run", Model(), "--tokens", "1", "-n", "2147483647"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("zcpack run: -n 2147483647: a prompt of 1 tokens and 2147483647 tokens "
                               "to generate need 2147483648 positions, more than the 2147483647 a "
                               "session can hold\n"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("-2147483648")));
}

// The KV cache was sized from -n alone: std::bad_alloc, abort. Past the
// model's trained context (max_position_embeddings) a run goes on, as
// llama.cpp's -c does, with one warning; past the memory available it is a
// resource error.
TEST_F(RunTest, ContextBeyondTheModelWarnsOnceAndBeyondTheMemoryIsAResourceError) {
  const CliResult longer = RunZcpack({"run", Model(), "--tokens", "1", "-n", "300"});
  ASSERT_EQ(longer.exit_code, 0) << longer.err;
  EXPECT_EQ(longer.err, "zcpack run: warning: -n 300: " + Model() +
                            ": a context of 301 positions is longer than the model's 256 "
                            "(max_position_embeddings); generating anyway, but the output past "
                            "position 256 may be meaningless\n");
  EXPECT_THAT(longer.out, HasSubstr("stopped: max_tokens after 300 tokens\n"));
  const CliResult json =
      RunZcpack({"run", Model(), "--tokens", "1", "--context", "300", "-n", "2", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(std::count(json.err.begin(), json.err.end(), '\n'), 1) << json.err;
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["context"], 300);
  ASSERT_EQ(report["warnings"].size(), 1u);
  EXPECT_THAT(report["warnings"][0].get<std::string>(), HasSubstr("--context 300: "));
  // Within the trained context: no warning at all.
  const CliResult within = RunZcpack({"run", Model(), "--tokens", "1", "-n", "200", "--json"});
  ASSERT_EQ(within.exit_code, 0) << within.err;
  EXPECT_EQ(within.err, "");
  EXPECT_TRUE(nlohmann::json::parse(within.out)["warnings"].empty());
  const CliResult huge = RunZcpack({"run", Model(), "--tokens", "1", "-n", "1000000000"});
  EXPECT_EQ(huge.exit_code, 3) << huge.err;
  EXPECT_THAT(huge.err, ::testing::MatchesRegex(
                            "zcpack run: .*tiny.zcpack: a context of 1000000001 positions "
                            "needs [0-9]+ bytes of KV cache and scratch, more than the [0-9]+ "
                            "bytes of memory available\n"));
  const CliResult unbounded =
      RunZcpack({"run", *dir_ + "/unbounded.zcpack", "--tokens", "1", "-n", "1000000000"});
  EXPECT_EQ(unbounded.exit_code, 3) << unbounded.err;
}

// The JSON report says how the tokens were chosen and why generation
// stopped, for --tokens as for --prompt.
TEST_F(RunTest, JsonRecordsTheSamplingSettingsAndTheStopReason) {
  const CliResult r = RunZcpack({"run", Model(), "--tokens", "1,2", "-n", "3", "--temperature",
                                 "0.7", "--top-k", "5", "--top-p", "0.5", "--seed", "9", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_EQ(j["max_tokens"], 3);
  EXPECT_EQ(j["context"], 5);
  EXPECT_EQ(j["sampling"]["mode"], "sample");
  EXPECT_FLOAT_EQ(j["sampling"]["temperature"].get<float>(), 0.7f);
  EXPECT_EQ(j["sampling"]["top_k"], 5);
  EXPECT_FLOAT_EQ(j["sampling"]["top_p"].get<float>(), 0.5f);
  EXPECT_EQ(j["sampling"]["seed"], 9);
  const CliResult greedy = RunZcpack({"run", Model(), "--tokens", "1", "-n", "2", "--json"});
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  EXPECT_EQ(nlohmann::json::parse(greedy.out)["sampling"]["mode"], "greedy");
}

// NaN and negative temperatures gave garbage tokens; a denormal one NaN
// weights. Refused, and greedy, respectively.
TEST_F(RunTest, TemperatureMustBeFiniteAndATinyOneIsGreedy) {
  for (const std::string t : {"nan", "-1", "inf"}) {
    const CliResult r = RunZcpack({"run", Model(), "--tokens", "1", "--temperature", t});
    EXPECT_EQ(r.exit_code, 2) << t << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("zcpack run: --temperature " + t +
                                 " is not a finite number >= 0 (0 is greedy)\n"));
  }
  const CliResult greedy = RunZcpack({"run", Model(), "--tokens", "1,2", "-n", "8", "--json"});
  const CliResult tiny = RunZcpack(
      {"run", Model(), "--tokens", "1,2", "-n", "8", "--temperature", "1e-45", "--json"});
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  ASSERT_EQ(tiny.exit_code, 0) << tiny.err;
  EXPECT_EQ(nlohmann::json::parse(tiny.out)["generated"], nlohmann::json::parse(greedy.out)["generated"]);
}

// More threads than CPUs only queue for a core (and, spinning, took the
// cores from the threads with work: 30 to 100 s for 4 tokens): capped, with
// one note.
TEST_F(RunTest, ThreadsBeyondTheCpusAreCappedWithANote) {
  const CliResult r = RunZcpack({"run", Model(), "--tokens", "1", "-n", "4", "--threads", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("note: 1000 threads requested, more than the "));
  const CliResult j =
      RunZcpack({"run", Model(), "--tokens", "1", "-n", "4", "--threads", "1000", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto report = nlohmann::json::parse(j.out);
  EXPECT_GE(report["threads"].get<int>(), 1);
  EXPECT_LT(report["threads"].get<int>(), 1000);
}

}  // namespace
}  // namespace zcpack::testing
