// `zcpack plan` end to end: its figures against the peaks `zcpack bench`
// measures on the same container, its verdicts against a budget, its usage
// errors. The model is the stories15m shape: small enough to convert and
// bench in seconds, large enough that the weights, not the process, make
// most of the copying loaders' peaks. No timing is asserted.
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

// Tokens the bench generates; with its 10-token prompt, the context.
constexpr int kTokens = 16;
constexpr int kPromptTokens = 10;

class PlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("plan"));
    ASSERT_EQ(RunZcpack({"synth", "--shape", "stories15m", "-o", *dir_ + "/src"}).exit_code, 0);
    ASSERT_EQ(RunZcpack({"convert", *dir_ + "/src", "-o", Model(), "--quiet"}).exit_code, 0);
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
  }
  static std::string Model() { return *dir_ + "/model.zcpack"; }

  static json Plan(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"plan", Model(), "--json"};
    args.insert(args.end(), flags.begin(), flags.end());
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }

  static std::string* dir_;
};
std::string* PlanTest::dir_ = nullptr;

// The acceptance check of the plan: for every loader, the planned peaks
// (anonymous, and anonymous + file-backed) are within 10% of the peaks the
// bench measures when it runs that loader with the same context, batch
// (its prompt) and threads.
TEST_F(PlanTest, PeaksAgreeWithTheBenchWithinTenPercent) {
  const CliResult bench =
      RunZcpack({"bench", Model(), "--warm", "--runs", "1", "--tokens", std::to_string(kTokens),
                 "--threads", "2", "--budget", "off", "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const json measured = json::parse(bench.out);
  const json plan = Plan({"--context", std::to_string(kPromptTokens + kTokens), "--batch",
                          std::to_string(kPromptTokens), "--threads", "2"});
  ASSERT_EQ(plan["contexts"].size(), 1u);
  std::map<std::string, json> planned;
  for (const json& l : plan["contexts"][0]["loaders"]) planned[l["loader"]] = l;
  int compared = 0;
  for (const json& row : measured["rows"]) {
    const std::string loader = row["loader"];
    ASSERT_TRUE(planned.count(loader)) << loader;
    ASSERT_TRUE(row.contains("median")) << loader << ": " << row.dump();
    for (const char* key : {"peak_anon_bytes", "peak_total_bytes"}) {
      const double m = row["median"][key].get<double>();
      const double p = planned[loader][key].get<double>();
      EXPECT_NEAR(p / m, 1.0, 0.10) << loader << " " << key << ": planned " << p << ", measured " << m;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 5);  // classic, pread, direct, mmap, zcpack
}

TEST_F(PlanTest, KvCacheIsTwoHalfPrecisionCachesPerLayer) {
  const json plan = Plan({"--context", "100", "--context", "200"});
  const json& m = plan["model"];
  const uint64_t kv_dim = m["num_kv_heads"].get<uint64_t>() * m["head_dim"].get<uint64_t>();
  ASSERT_EQ(plan["contexts"].size(), 2u);
  for (const json& row : plan["contexts"]) {
    const uint64_t context = row["context"];
    EXPECT_EQ(row["session"]["kv_cache_bytes"].get<uint64_t>(),
              2 * m["num_layers"].get<uint64_t>() * context * kv_dim * 2);
  }
}

TEST_F(PlanTest, DefaultContextsStopAtTheModelsMaximum) {
  const json plan = Plan({});
  // stories15m records 256 positions: 512, 2048 and 8192 are past it.
  ASSERT_EQ(plan["model"]["max_position_embeddings"].get<int>(), 256);
  ASSERT_EQ(plan["contexts"].size(), 1u);
  EXPECT_EQ(plan["contexts"][0]["context"].get<int>(), 256);
  EXPECT_EQ(plan["contexts"][0]["batch"].get<int>(), 256);  // the whole context
}

TEST_F(PlanTest, ABudgetBetweenTheLoadersPeaksSeparatesThem) {
  // Below the classic loader's peak, above the copies of pread: classic
  // does not fit, pread does, and the mapped loaders fit whole.
  const json probe = Plan({"--context", "64"});
  std::map<std::string, json> loaders;
  for (const json& l : probe["contexts"][0]["loaders"]) loaders[l["loader"]] = l;
  const uint64_t classic = loaders["classic"]["peak_anon_bytes"];
  const uint64_t pread = loaders["pread"]["peak_total_bytes"];
  ASSERT_LT(pread, classic);
  const uint64_t budget = (classic + pread) / 2;
  const json plan = Plan({"--context", "64", "--budget", std::to_string(budget)});
  EXPECT_EQ(plan["limit_bytes"].get<uint64_t>(), budget);
  for (const json& l : plan["contexts"][0]["loaders"]) {
    const std::string name = l["loader"];
    EXPECT_EQ(l["fits"], name == "classic" ? "no" : "yes") << name;
  }
  // A budget below the weights but above the anonymous memory: the mapped
  // loaders still run, re-reading weights from disk.
  const uint64_t zcpack_anon = loaders["zcpack"]["peak_anon_bytes"];
  const json tight = Plan({"--context", "64", "--budget", std::to_string(zcpack_anon + (1 << 20))});
  for (const json& l : tight["contexts"][0]["loaders"]) {
    const std::string name = l["loader"];
    const bool mapped = name == "zcpack" || name == "mmap";
    EXPECT_EQ(l["fits"], mapped ? "streams" : "no") << name;
  }
}

TEST_F(PlanTest, DeviceTableScalesWithTheDevice) {
  const json plan = Plan({"--context", "64"});
  ASSERT_EQ(plan["devices"].size(), 5u);
  const double bpw = plan["weights"]["bits_per_weight"];
  ASSERT_GT(bpw, 4.0);
  for (const json& d : plan["devices"]) {
    const double device = d["device_bytes"];
    const double once = d["max_parameters"]["zcpack"];
    // The weights of that many parameters fill the device, less the process.
    EXPECT_LE(once * bpw / 8, device);
    EXPECT_GT(once * bpw / 8, 0.99 * device);
    EXPECT_NEAR(d["max_parameters"]["classic"].get<double>(), once / 2, 1.0);
  }
}

TEST_F(PlanTest, TextFitsEightyColumns) {
  const CliResult r = RunZcpack({"plan", Model(), "--context", "64", "--context", "256"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("classic"));
  EXPECT_THAT(r.out, HasSubstr("128 GiB"));
  size_t start = 0;
  while (start < r.out.size()) {
    const size_t end = r.out.find('\n', start);
    const std::string line = r.out.substr(start, end - start);
    EXPECT_LE(line.size(), 80u) << line;
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

TEST_F(PlanTest, UsageErrors) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--context", "0"}, {"--context", "many"}, {"--budget", "lots"},
        {"--batch", "-1"}, {"--budget", "0"}}) {
    std::vector<std::string> args = {"plan", Model()};
    args.insert(args.end(), flags.begin(), flags.end());
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << " " << flags[1] << ": " << r.err;
  }
  EXPECT_EQ(RunZcpack({"plan", *dir_ + "/missing.zcpack"}).exit_code, 3);
  const CliResult help = RunZcpack({"plan", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--context N"));
}

}  // namespace
}  // namespace zcpack::testing
