// `zcpack bench` on a tiny model: the benchmark's own logic (every loader
// computes the same first-token logits, cold really evicts, warm really
// caches, the timeline and the budget row), its usage errors, and the
// system probes it is built on. No timing is asserted.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"
#include "tools/cli/bench_system.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class BenchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("bench"));
    ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", *dir_ + "/tiny"}).exit_code, 0);
    ASSERT_EQ(RunZcpack({"convert", *dir_ + "/tiny", "-o", Model()}).exit_code, 0);
    const CliResult r = RunZcpack({"bench", Model(), "--runs", "2", "--tokens", "3", "--budget",
                                   "off", "--timeline", *dir_ + "/timeline.csv", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    report_ = new nlohmann::json(nlohmann::json::parse(r.out));
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
    delete report_;
  }
  static std::string Model() { return *dir_ + "/tiny.zcpack"; }

  // Resident pages of `path` / all its pages, by mincore(2) over a fresh
  // mapping: the test's own check, independent of bench::ResidentFraction().
  static double Resident(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    const off_t size = ::lseek(fd, 0, SEEK_END);
    void* base = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
    EXPECT_NE(base, MAP_FAILED);
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> vec(static_cast<size_t>((size + page - 1) / page));
    EXPECT_EQ(::mincore(base, static_cast<size_t>(size), vec.data()), 0);
    ::munmap(base, static_cast<size_t>(size));
    ::close(fd);
    size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    return static_cast<double>(n) / static_cast<double>(vec.size());
  }

  static std::string* dir_;
  static nlohmann::json* report_;
};
std::string* BenchTest::dir_ = nullptr;
nlohmann::json* BenchTest::report_ = nullptr;

TEST_F(BenchTest, HelpListsBenchButNotTheInternalChild) {
  const CliResult main_help = RunZcpack({"--help"});
  EXPECT_THAT(main_help.out, HasSubstr("bench FILE [--loaders LIST]"));
  EXPECT_THAT(main_help.out, Not(HasSubstr("bench-child")));
  const CliResult help = RunZcpack({"bench", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--budget BYTES"));
  EXPECT_THAT(help.out, HasSubstr("posix_fadvise(DONTNEED)"));
}

// A run that fails says why: the child's own last line, not just its exit
// code (here more tokens than the tiny model's 256 positions).
TEST_F(BenchTest, AFailedRunGivesTheChildsReason) {
  const CliResult r = RunZcpack({"bench", Model(), "--loaders", "zcpack", "--warm", "--runs", "1",
                                 "--tokens", "300", "--budget", "off"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("failed (exit 1): zcpack bench-child: "));
  EXPECT_THAT(r.err, HasSubstr("longer than the model's 256"));
}

TEST_F(BenchTest, EveryLoaderGivesIdenticalFirstTokenLogits) {
  std::set<std::string> loaders, hashes;
  std::set<std::pair<std::string, std::string>> rows;
  for (const auto& row : (*report_)["rows"]) {
    rows.insert({row["state"].get<std::string>(), row["loader"].get<std::string>()});
    ASSERT_EQ(row["runs"].size(), 2u) << row.dump();
    for (const auto& run : row["runs"]) {
      ASSERT_TRUE(run["ok"].get<bool>()) << run.dump();
      loaders.insert(row["loader"].get<std::string>());
      hashes.insert(run["logits_xxh3"].get<std::string>());
      // The first generated token is the argmax of those logits (greedy).
      EXPECT_EQ(run["generated"][0], run["argmax"]);
      EXPECT_EQ(run["generated"].size(), 3u);
      EXPECT_EQ(run["nonfinite_logits"], 0);
    }
  }
  EXPECT_EQ(loaders, (std::set<std::string>{"classic", "pread", "direct", "mmap", "zcpack"}));
  EXPECT_EQ(rows.size(), 10u);  // 5 loaders x warm, cold
  EXPECT_EQ(hashes.size(), 1u);
  EXPECT_TRUE((*report_)["logits"]["identical"].get<bool>());
}

TEST_F(BenchTest, ColdRunsStartEvictedAndWarmRunsCached) {
  for (const auto& row : (*report_)["rows"]) {
    for (const auto& run : row["runs"]) {
      const double resident = run["resident_before"].get<double>();
      if (row["state"] == "cold") {
        if (resident > 0.99) GTEST_SKIP() << "eviction has no effect on this file system";
        EXPECT_LT(resident, 0.05) << row["loader"];
      } else {
        EXPECT_GT(resident, 0.99) << row["loader"];
      }
    }
  }
  ASSERT_TRUE(report_->contains("cold_read"));
  EXPECT_GT((*report_)["cold_read"]["bytes_per_s"].get<double>(), 0);
}

TEST_F(BenchTest, EvictionEmptiesThePageCache) {
  ASSERT_TRUE(cli::bench::ReadWholeFile(Model()).ok());
  EXPECT_GT(Resident(Model()), 0.99);
  ASSERT_TRUE(cli::bench::EvictFromPageCache(Model()).ok());
  const double after = Resident(Model());
  if (after > 0.99) GTEST_SKIP() << "eviction has no effect on this file system";
  EXPECT_LT(after, 0.05);
  auto reported = cli::bench::ResidentFraction(Model());
  ASSERT_TRUE(reported.ok()) << reported.status();
  EXPECT_LT(*reported, 0.05);
  // ResidentFraction() itself reads nothing in.
  EXPECT_LT(Resident(Model()), 0.05);
}

TEST_F(BenchTest, CopyingLoadersOwnTheirWeightsAndMappedOnesDoNot) {
  for (const auto& row : (*report_)["rows"]) {
    const bool copies = row["loader"] == "classic" || row["loader"] == "pread" ||
                        row["loader"] == "direct";
    for (const auto& run : row["runs"]) {
      EXPECT_EQ(run["owned_bytes"].get<uint64_t>() > 0, copies) << row["loader"];
      EXPECT_GT(run["sample_count"].get<int>(), 0);
      EXPECT_GT(run["peak_total_bytes"].get<uint64_t>(), run["peak_anon_bytes"].get<uint64_t>());
    }
  }
}

TEST_F(BenchTest, TimelineCsvCoversEveryLoaderAndPhase) {
  std::ifstream in(*dir_ + "/timeline.csv");
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "state,loader,t_ms,rss_anon_kib,rss_file_kib,vm_rss_kib,phase");
  std::set<std::string> loaders, phases;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    ASSERT_EQ(f.size(), 7u) << line;
    loaders.insert(f[1]);
    phases.insert(f[6]);
  }
  EXPECT_EQ(loaders.size(), 5u);
  for (const std::string& phase : phases) {
    EXPECT_TRUE((std::set<std::string>{"exec", "load", "first-token", "decode", "exit"}).count(phase))
        << phase;
  }
}

TEST_F(BenchTest, BudgetRowRunsInACgroupOrSaysWhyNot) {
  const CliResult r = RunZcpack({"bench", Model(), "--cold", "--runs", "1", "--tokens", "2",
                                 "--loaders", "zcpack,classic", "--budget", "256MiB", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_TRUE(report.contains("budget"));
  if (report["budget"].contains("skipped")) {
    EXPECT_THAT(report["budget"]["skipped"].get<std::string>(), HasSubstr("cgroup"));
    GTEST_SKIP() << report["budget"]["skipped"];
  }
  EXPECT_EQ(report["budget"]["limit_bytes"], uint64_t{256} << 20);
  int budget_rows = 0;
  for (const auto& row : report["rows"]) {
    if (row["state"] != "budget") continue;
    ++budget_rows;
    // The tiny model fits in 256 MiB with either loader.
    EXPECT_EQ(row["runs"][0]["outcome"], "completed") << row.dump();
    EXPECT_GT(row["runs"][0]["cgroup"]["peak_bytes"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(budget_rows, 2);
}

TEST_F(BenchTest, UsageErrors) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--runs", "0"}, {"--loaders", "classic,bogus"},
        {"--loaders", "zcpack,zcpack"}, {"--cold", "--warm"}, {"--tokens", "many"},
        {"--plot", "chart.pdf"}, {"--budget", "12parsecs"}, {"--output", "xml"},
        {"--output", "csv", "--json"}, {"--memory-budget", "12parsecs"},
        {"--memory-budget", "0"}, {"--memory-budget", "1MiB"},
        {"--memory-budget", "1GiB", "--budget", "2GiB"},
        {"--memory-budget", "1GiB", "--loaders", "classic"}}) {
    std::vector<std::string> args = {"bench", Model()};
    args.insert(args.end(), flags.begin(), flags.end());
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << ": " << r.err;
  }
  EXPECT_EQ(RunZcpack({"bench", *dir_ + "/absent.zcpack", "--runs", "1"}).exit_code, 3);
}

// Issue 14, item 7: a report for users. A short warm bench of one loader,
// as each of these tests runs it.
std::vector<std::string> QuickBench(const std::string& model, std::vector<std::string> extra) {
  std::vector<std::string> args = {"bench", model, "--warm", "--runs", "1", "--tokens", "2",
                                   "--loaders", "zcpack,mmap", "--budget", "off"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST_F(BenchTest, TargetsOnlyWithTheTargetsFlag) {
  const CliResult plain = RunZcpack(QuickBench(Model(), {}));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, Not(HasSubstr("[MISSED]")));
  EXPECT_THAT(plain.out, Not(HasSubstr("[met]")));
  EXPECT_THAT(plain.out, Not(HasSubstr("### targets")));
  const CliResult asked = RunZcpack(QuickBench(Model(), {"--targets"}));
  ASSERT_EQ(asked.exit_code, 0) << asked.err;
  EXPECT_THAT(asked.out, HasSubstr("### targets"));
  EXPECT_THAT(asked.out, HasSubstr("zcpack time to usable, warm"));
  EXPECT_FALSE(nlohmann::json::parse(RunZcpack(QuickBench(Model(), {"--json"})).out).contains("targets"));
}

// Prose lines (not the tables, not the first line's path) fit the width
// $COLUMNS gives when stdout is not a terminal.
TEST_F(BenchTest, ProseWrapsAtTheTerminalWidth) {
  const CliResult r = RunZcpack(QuickBench(Model(), {}), [] { ::setenv("COLUMNS", "60", 1); });
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int continued = 0;
  for (const absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StartsWith(line, "|") || absl::StartsWith(line, "zcpack bench: ")) continue;
    EXPECT_LE(line.size(), 60u) << line;
    continued += absl::StartsWith(line, "      ");
  }
  EXPECT_GT(continued, 0) << r.out;  // the method paragraph alone takes several lines
  const CliResult wide = RunZcpack(QuickBench(Model(), {}), [] { ::setenv("COLUMNS", "120", 1); });
  size_t longest = 0;
  for (const absl::string_view line : absl::StrSplit(wide.out, '\n')) {
    if (!absl::StartsWith(line, "|")) longest = std::max(longest, line.size());
  }
  EXPECT_GT(longest, 60u);
}

TEST_F(BenchTest, CsvHasAHeaderAndOneLinePerRow) {
  const CliResult r = RunZcpack(QuickBench(Model(), {"--output", "csv"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r.out;
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  EXPECT_EQ(header[1], "state");
  EXPECT_EQ(header[2], "loader");
  const auto ttft = std::find(header.begin(), header.end(), "ttft_ms_median");
  ASSERT_NE(ttft, header.end());
  std::set<std::string> loaders;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> fields = absl::StrSplit(lines[i], ',');
    ASSERT_EQ(fields.size(), header.size()) << lines[i];
    EXPECT_EQ(fields[1], "warm");
    loaders.insert(fields[2]);
    EXPECT_GT(std::stod(fields[ttft - header.begin()]), 0.0) << lines[i];
  }
  EXPECT_EQ(loaders, (std::set<std::string>{"zcpack", "mmap"}));
}

TEST_F(BenchTest, JsonLinesHaveOneObjectPerRow) {
  const CliResult r = RunZcpack(QuickBench(Model(), {"--output", "jsonl"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["command"], "bench");
    EXPECT_EQ(j["run_count"], 1);
    EXPECT_GT(j["median"]["ttft_ms"].get<double>(), 0.0);
  }
}

// --memory-budget adds the zcpack loader streaming under the budget to the
// budget row; the tiny model fits, so it runs as without (the streamed path
// is compared bit for bit in tests/runtime/memory_budget_test.cc) and its
// logits equal the others'.
TEST_F(BenchTest, MemoryBudgetAddsTheStreamingRun) {
  const CliResult r = RunZcpack({"bench", Model(), "--warm", "--runs", "1", "--tokens", "2",
                                 "--loaders", "zcpack", "--memory-budget", "256MiB", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_TRUE(report.contains("budget"));
  if (report["budget"].contains("skipped")) GTEST_SKIP() << report["budget"]["skipped"];
  EXPECT_EQ(report["budget"]["limit_bytes"], uint64_t{256} << 20);
  EXPECT_TRUE(report.contains("cold_read"));  // the bandwidth of the bound
  std::set<std::string> loaders;
  for (const auto& row : report["rows"]) {
    if (row["state"] != "budget") continue;
    loaders.insert(row["loader"].get<std::string>());
    EXPECT_EQ(row["runs"][0]["outcome"], "completed") << row.dump();
    if (row["loader"] == "zcpack --memory-budget") {
      const auto& m = row["runs"][0]["memory_budget"];
      EXPECT_EQ(m["budget_bytes"], uint64_t{256} << 20);
      EXPECT_FALSE(m["streams"].get<bool>());
    } else {
      EXPECT_FALSE(row["runs"][0].contains("memory_budget"));
    }
  }
  EXPECT_EQ(loaders, (std::set<std::string>{"zcpack", "zcpack --memory-budget"}));
  // Nothing streamed, so no bound to compare with.
  EXPECT_THAT(report["budget"]["streaming"]["note"].get<std::string>(), HasSubstr("nothing streamed"));
  EXPECT_FALSE(report["budget"]["streaming"].contains("bound_tokens_per_s"));
  EXPECT_TRUE(report["logits"]["identical"].get<bool>());
}

TEST(BenchSystemTest, ParsesMemoryBudgets) {
  EXPECT_EQ(*cli::bench::ParseMemoryBudget(""), 0u);  // not given
  EXPECT_EQ(*cli::bench::ParseMemoryBudget("600M"), uint64_t{600} << 20);
  EXPECT_EQ(*cli::bench::ParseMemoryBudget("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(*cli::bench::ParseMemoryBudget("2.5g"), uint64_t{5} << 29);
  for (const char* bad : {"0", "0GiB", "lots", "-1G"}) {
    const auto v = cli::bench::ParseMemoryBudget(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_THAT(v.status().message(), HasSubstr("--memory-budget")) << bad;
  }
}

TEST(BenchSystemTest, ParsesProcStatus) {
  const cli::bench::ProcMemory m = cli::bench::ParseProcStatus(
      "Name:\tzcpack\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nRssAnon:\t    2048 kB\n"
      "RssFile:\t  100352 kB\nRssShmem:\t       0 kB\nThreads:\t3\n");
  EXPECT_TRUE(m.valid);
  EXPECT_EQ(m.vm_hwm_kib, 204800u);
  EXPECT_EQ(m.vm_rss_kib, 102400u);
  EXPECT_EQ(m.rss_anon_kib, 2048u);
  EXPECT_EQ(m.rss_file_kib, 100352u);
  // A zombie's status has no memory lines.
  EXPECT_FALSE(cli::bench::ParseProcStatus("Name:\tzcpack\nState:\tZ (zombie)\n").valid);
}

TEST(BenchSystemTest, ParsesByteSizes) {
  const std::vector<std::pair<std::string, uint64_t>> good = {
      {"4096", 4096},          {"20GiB", uint64_t{20} << 30}, {"20G", uint64_t{20} << 30},
      {"1.5g", uint64_t{3} << 29}, {"512MiB", uint64_t{512} << 20}, {"64k", 65536},
      {"3 MB", uint64_t{3} << 20}};
  for (const auto& [text, bytes] : good) {
    auto v = cli::bench::ParseByteSize(text);
    ASSERT_TRUE(v.ok()) << text << ": " << v.status();
    EXPECT_EQ(*v, bytes) << text;
  }
  for (const char* bad : {"", "GiB", "-1G", "12parsecs", "1e3", "99999999999T"}) {
    EXPECT_FALSE(cli::bench::ParseByteSize(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace zcpack::testing
