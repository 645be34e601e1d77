// End-to-end tests of `zcpack verify`, run as a user or a build pipeline
// would run it: help, sound and corrupted containers, the broken-container
// table, byte flips in every tensor, --against, usage and I/O errors.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/container_reader.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// The reader-limit flags that reproduce `limits`.
std::vector<std::string> LimitFlags(const format::ReaderLimits& limits) {
  return {"--max-tensors", absl::StrCat(limits.max_tensors),
          "--max-rank", absl::StrCat(limits.max_rank),
          "--max-name-bytes", absl::StrCat(limits.max_name_bytes),
          "--max-manifest-bytes", absl::StrCat(limits.max_manifest_bytes),
          "--max-manifest-raw-bytes", absl::StrCat(limits.max_manifest_raw_bytes)};
}

std::vector<std::string> Checks(const json& report) {
  std::vector<std::string> checks;
  for (const auto& p : report["problems"]) checks.push_back(p["check"]);
  return checks;
}

// A tiny synthetic model (seeds 1 and 2) and the q4_0 container of seed 1,
// made once through the CLI.
class VerifyCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("verify"));
    for (const char* seed : {"1", "2"}) {
      const CliResult r = RunZcpack({"synth", "--shape", "tiny", "--seed", seed, "-o",
                                     *dir_ + "/tiny-" + seed});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const CliResult r = RunZcpack({"convert", *dir_ + "/tiny-1", "-o", Container(), "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
  }

  static std::string Container() { return *dir_ + "/tiny.zcpack"; }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  static std::string* dir_;
};

std::string* VerifyCliTest::dir_ = nullptr;

TEST_F(VerifyCliTest, HelpExplainsLevelsFlagsAndExitCodes) {
  const CliResult r = RunZcpack({"verify", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* needle : {"Usage: zcpack verify FILE", "structure", "full", "--against SOURCE",
                             "--max-rmse", "--min-snr", "--json", "Exit codes:",
                             "1 means problems were found", "--run"}) {
    EXPECT_THAT(r.out, HasSubstr(needle));
  }
  EXPECT_THAT(RunZcpack({"--help"}).out, HasSubstr("verify FILE"));
}

TEST_F(VerifyCliTest, SoundContainerExitsZero) {
  for (const char* level : {"structure", "full"}) {
    const CliResult r = RunZcpack({"verify", Container(), "--level", level});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("SOUND"));
    EXPECT_EQ(r.err, "");
  }
}

TEST_F(VerifyCliTest, CorruptedContainerExitsOneWithReportAndOneStderrLine) {
  std::vector<uint8_t> bytes = *ReadFileBytes(Container());
  const json table = json::parse(RunZcpack({"inspect", Container(), "--json"}).out);
  const json& t = table["tensors"][5];
  bytes[t["offset"].get<uint64_t>() + 3] ^= 0x40;
  const std::string path = Path("corrupt.zcpack");
  ASSERT_TRUE(WriteFileBytes(path, bytes).ok());
  const CliResult r = RunZcpack({"verify", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL  integrity"));
  EXPECT_THAT(r.out, HasSubstr(t["name"].get<std::string>()));
  EXPECT_THAT(r.out, HasSubstr("UNSOUND: 1 problem"));
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_THAT(r.err, HasSubstr("checksum"));
  // The structure level does not read tensor data.
  EXPECT_EQ(RunZcpack({"verify", path, "--level", "structure"}).exit_code, 0);
}

// The repro: `zcpack verify $'b\xff.zcpack' --json` aborted with an
// uncaught nlohmann exception (SIGABRT). Paths, and the details that quote
// them, are now escaped (\xff as text): valid JSON and the documented code,
// sound or not, and with --against a source path that is not UTF-8 either.
TEST_F(VerifyCliTest, JsonEscapesPathsThatAreNotUtf8) {
  const std::string sound = Path("b\xff.zcpack");
  std::filesystem::copy_file(Container(), sound);
  CliResult r = RunZcpack({"verify", sound, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report = json::parse(r.out);
  EXPECT_EQ(report["input"], Path("b\\xff.zcpack"));

  const std::string source = Path("source\xfe");
  std::filesystem::create_directory_symlink(Path("tiny-1"), source);
  r = RunZcpack({"verify", sound, "--json", "--against", source});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  report = json::parse(r.out);
  EXPECT_EQ(report["against"]["source"], Path("source\\xfe"));

  std::vector<uint8_t> bytes = *ReadFileBytes(Container());
  bytes.resize(bytes.size() / 2);
  const std::string truncated = Path("t\xff.zcpack");
  ASSERT_TRUE(WriteFileBytes(truncated, bytes).ok());
  r = RunZcpack({"verify", truncated, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  report = json::parse(r.out);
  EXPECT_EQ(report["input"], Path("t\\xff.zcpack"));
  EXPECT_FALSE(report["sound"].get<bool>());
}

TEST_F(VerifyCliTest, EveryBrokenContainerExitsOneNamingItsCheck) {
  for (const BrokenContainerCase& c : MakeBrokenContainers()) {
    const std::string path = Path("broken-" + c.name + ".zcpack");
    ASSERT_TRUE(WriteFileBytes(path, c.bytes).ok());
    std::vector<std::string> args = {"verify", path, "--json"};
    for (const std::string& flag : LimitFlags(c.limits)) args.push_back(flag);
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.err;
    EXPECT_EQ(Lines(r.err), 1u) << c.name << ": " << r.err;
    const json report = json::parse(r.out);
    EXPECT_FALSE(report["sound"].get<bool>());
    ASSERT_FALSE(report["problems"].empty()) << c.name;
    EXPECT_EQ(report["problems"][0]["check"], c.check) << c.name << ": " << r.out;
    EXPECT_THAT(r.err, HasSubstr(c.check)) << c.name;
  }
}

TEST_F(VerifyCliTest, ByteFlipInEachTensorIsFoundByName) {
  const std::vector<uint8_t> original = *ReadFileBytes(Container());
  const json table = json::parse(RunZcpack({"inspect", Container(), "--json"}).out);
  ASSERT_EQ(table["tensors"].size(), 21u);
  const std::string path = Path("flipped.zcpack");
  for (const json& t : table["tensors"]) {
    std::vector<uint8_t> bytes = original;
    const uint64_t offset = t["offset"];
    bytes[offset + t["bytes"].get<uint64_t>() / 2] ^= 0x01;
    ASSERT_TRUE(WriteFileBytes(path, bytes).ok());
    const CliResult r = RunZcpack({"verify", path, "--json"});
    EXPECT_EQ(r.exit_code, 1) << t["name"];
    const json report = json::parse(r.out);
    ASSERT_EQ(report["problems"].size(), 1u) << r.out;
    EXPECT_EQ(report["problems"][0]["check"], "checksum");
    EXPECT_EQ(report["problems"][0]["tensor"], t["name"]);
    EXPECT_EQ(report["problems"][0]["offset"], offset);
  }
}

TEST_F(VerifyCliTest, RunGeneratesWithTheRuntime) {
  const CliResult r = RunZcpack({"verify", Container(), "--run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool found = false;
  const json report = json::parse(r.out);
  for (const json& c : report["checks"]) {
    if (c["name"] == "smoke_run") {
      found = true;
      EXPECT_EQ(c["result"], "pass");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(VerifyCliTest, JsonReportListsEveryCheckWithResultAndDetail) {
  const CliResult r = RunZcpack({"verify", Container(), "--json", "--level", "structure"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  EXPECT_TRUE(report["sound"].get<bool>());
  EXPECT_EQ(report["level"], "structure");
  EXPECT_GE(report["checks"].size(), 40u);
  for (const json& c : report["checks"]) {
    const std::string name = c["name"];
    EXPECT_TRUE(c.contains("detail")) << name;
    const std::string expected =
        c["group"] == "integrity" || c["group"] == "source" || c["group"] == "inference"
            ? "skipped"
            : "pass";
    EXPECT_EQ(c["result"], expected) << name;
  }
}

TEST_F(VerifyCliTest, AgainstOwnSourcePassesAndAnotherSeedFails) {
  CliResult r = RunZcpack({"verify", Container(), "--against", Path("tiny-1")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("lowest SNR"));
  r = RunZcpack({"verify", Container(), "--against", Path("tiny-2"), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  const json report = json::parse(r.out);
  EXPECT_EQ(report["problem_count"], 21);
  EXPECT_THAT(Checks(report), ::testing::Contains("quant_error"));
  EXPECT_EQ(report["against"]["tensors"].size(), 21u);
}

// Writes a copy of the seed-1 source into `name`, dropping `drop` and
// declaring `reshape` with its dimensions swapped.
std::string EditedSource(const std::string& from, const std::string& to, const std::string& drop,
                         const std::string& reshape) {
  std::filesystem::create_directories(to);
  std::ofstream(to + "/config.json") << std::ifstream(from + "/config.json").rdbuf();
  auto source = converter::OpenSourceModel(from);
  EXPECT_TRUE(source.ok()) << source.status();
  SafetensorsTestWriter writer;
  for (const converter::SourceTensor& t : (*source)->tensors) {
    if (t.name == drop) continue;
    std::vector<uint64_t> shape = t.shape;
    if (t.name == reshape) std::reverse(shape.begin(), shape.end());
    writer.AddTensor(t.name, SafetensorsDTypeName(t.dtype), shape,
                     std::vector<uint8_t>(t.data.begin(), t.data.end()));
  }
  EXPECT_TRUE(WriteFileBytes(to + "/model.safetensors", writer.Build()).ok());
  return to;
}

TEST_F(VerifyCliTest, AgainstSourceWithMissingOrReshapedTensorFails) {
  const std::string missing = "model.layers.1.self_attn.k_proj.weight";
  const std::string reshaped = "model.layers.0.mlp.down_proj.weight";  // [256, 512]
  struct Case {
    std::string source;
    std::string check;
    std::string tensor;
  };
  const std::vector<Case> cases = {
      {EditedSource(Path("tiny-1"), Path("missing"), missing, ""), "source_tensors", missing},
      {EditedSource(Path("tiny-1"), Path("reshaped"), "", reshaped), "source_shape", reshaped},
  };
  for (const Case& c : cases) {
    const CliResult r = RunZcpack({"verify", Container(), "--against", c.source, "--json"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const json report = json::parse(r.out);
    EXPECT_THAT(Checks(report), ::testing::ElementsAre(c.check)) << r.out;
    EXPECT_EQ(report["problems"][0]["tensor"], c.tensor);
    EXPECT_THAT(r.err, HasSubstr(c.tensor));
  }
}

// Writes a copy of the converted container at `to` with its manifest edited
// (and every size and checksum recomputed).
void RewriteManifest(const std::string& from, const std::string& to,
                     const std::function<void(format::Manifest&)>& edit) {
  const auto bytes = ReadFileBytes(from);
  ASSERT_TRUE(bytes.ok());
  const auto c = format::Container::OpenBuffer(*bytes, from);
  ASSERT_TRUE(c.ok()) << c.status();
  HandMadeContainer parts;
  parts.header.alignment_log2 = (*c)->header().alignment_log2;
  parts.header.required_features = (*c)->header().required_features;
  ASSERT_EQ((*c)->header().data_offset, (*c)->alignment());
  const format::ByteRange data = (*c)->data_range();
  parts.data.assign(bytes->begin() + static_cast<ptrdiff_t>(data.offset),
                    bytes->begin() + static_cast<ptrdiff_t>(data.offset + data.size));
  parts.manifest = (*c)->manifest();
  parts.compress_manifest = true;
  edit(parts.manifest);
  ASSERT_TRUE(WriteFileBytes(to, Assemble(parts)).ok());
}

// Issue 11, items 16 and 7: what `run` refuses at load, `verify` reports, in
// the same words, and `inspect` (the format reader only) still shows.
TEST_F(VerifyCliTest, ModelsTheRuntimeRefusesAreUnsound) {
  struct Case {
    std::string name;
    std::function<void(format::Manifest&)> edit;
    std::string check;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"rope-unset", [](format::Manifest& m) {
         m.mutable_model()->set_rope_layout(format::ROPE_LAYOUT_UNSPECIFIED);
       }, "rope", "does not record its RoPE row layout"},
      {"huge-layer-count", [](format::Manifest& m) {
         m.mutable_model()->set_num_layers(uint32_t{1} << 20);
       }, "model_tensors", "declares 1048576 layers, more than the 21 tensors of its table"},
  };
  for (const Case& c : cases) {
    const std::string path = Path(c.name + ".zcpack");
    RewriteManifest(Container(), path, c.edit);
    CliResult r = RunZcpack({"verify", path, "--level", "structure"});
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.out << r.err;
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("first: ", c.check))) << c.name;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.name;
    r = RunZcpack({"run", path, "--tokens", "1,2", "-n", "1"});
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(path)) << c.name;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.name;
    EXPECT_EQ(RunZcpack({"inspect", path}).exit_code, 0) << c.name;
  }
}

// Issue 11, item 8: a manifest of a few KB that decodes to 64 MiB (within
// the 1 GiB limit) was called SOUND; it is refused before it is decoded.
TEST_F(VerifyCliTest, ManifestDecompressionBombIsUnsoundAndRefused) {
  const std::string path = Path("bomb.zcpack");
  ASSERT_TRUE(WriteFileBytes(path, Assemble(ManifestBomb(size_t{64} << 20))).ok());
  CliResult r = RunZcpack({"verify", path});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_THAT(r.err, HasSubstr("first: manifest_limit"));
  EXPECT_THAT(r.err, HasSubstr("refused before decoding"));
  r = RunZcpack({"inspect", path});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(path + ": manifest decodes to 67"));
}

TEST_F(VerifyCliTest, MissingFilesExitThree) {
  CliResult r = RunZcpack({"verify", Path("absent.zcpack")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("absent.zcpack"));
  EXPECT_EQ(Lines(r.err), 1u);
  r = RunZcpack({"verify", Container(), "--against", Path("no-such-model")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("no-such-model"));
}

// Whether `pid` has `path` mapped (a line of /proc/PID/maps ends with it).
bool HasMapped(int pid, const std::string& path) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) {
      return true;
    }
  }
  return false;
}

// verify --against maps the source. A source truncated while it was compared
// killed the process with SIGBUS; the mapping guard turns the fault into
// zeros, and verify into exit 3 naming the file, as convert does. The source
// is truncated as soon as verify has mapped it; if verify finishes first
// there is nothing to see and the test is skipped.
TEST_F(VerifyCliTest, SourceTruncatedWhileComparedExitsThreeNamingTheFile) {
  const std::string source = Path("stories");
  CliResult r = RunZcpack({"synth", "--shape", "stories15m", "-o", source});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string container = Path("stories.zcpack");
  r = RunZcpack({"convert", source, "-o", container, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string weights =
      std::filesystem::canonical(source + "/model.safetensors").string();
  const RunningZcpack running =
      StartZcpack({"verify", container, "--against", source, "--threads", "1"});
  bool truncated = false;
  for (int i = 0; i < 200000 && !truncated; ++i) {
    if (HasMapped(running.pid, weights)) {
      ASSERT_EQ(::truncate(weights.c_str(), 0), 0);
      truncated = true;
    }
  }
  r = FinishZcpack(running, 120);
  if (r.exit_code == 0) GTEST_SKIP() << "verify finished before the source was truncated";
  ASSERT_TRUE(truncated);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // Truncated while the header was parsed, the source's open fails and
  // verify prefixes "--against SOURCE: "; later, the comparison fails.
  EXPECT_THAT(r.err, ::testing::StartsWith("zcpack verify: "));
  EXPECT_THAT(r.err, ::testing::EndsWith(source + "/model.safetensors: truncated or unreadable "
                                         "while mapped\n"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(VerifyCliTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"verify"},
      {"verify", Container(), "--level", "quick"},
      {"verify", Container(), "--max-rmse", "0.5"},
      {"verify", Container(), "--min-snr", "5"},
      {"verify", Container(), "--against", Path("tiny-1"), "--max-rmse", "-1"},
      {"verify", Container(), "--against", Path("tiny-1"), "--min-snr", "nan"},
      {"verify", Container(), "--against", ""},
      {"verify", Container(), "--run=maybe"},
      {"verify", Container(), "--max-tensors", "lots"},
  };
  for (const auto& args : cases) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Usage: zcpack verify")) << absl::StrJoin(args, " ");
  }
}

}  // namespace
}  // namespace zcpack::testing
