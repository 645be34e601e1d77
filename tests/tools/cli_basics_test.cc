// The zcpack program's common behaviour (help, usage errors, exit codes) and
// the commands that need no converter: synth and inspect.
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"
#include "zcpack/format/container_writer.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("clitest"); }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_;
};

// A two-tensor container written through the format library.
std::string WriteSmallContainer(const std::string& path) {
  std::vector<format::TensorPlan> plans(2);
  plans[0] = {"token_embd.weight", format::ROLE_TOKEN_EMBEDDING, -1, format::DTYPE_Q4_0, {8, 64},
              format::DTYPE_F16};
  plans[1] = {"blk.0.attn_norm.weight", format::ROLE_ATTN_NORM, 0, format::DTYPE_F32, {64},
              format::DTYPE_F32};
  auto writer = format::ContainerWriter::Create(path, plans, {});
  EXPECT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < 2; ++i) {
    std::vector<uint8_t> bytes((*writer)->planned(i).nbytes(), static_cast<uint8_t>(i + 1));
    EXPECT_TRUE((*writer)->WriteTensor(i, bytes).ok());
  }
  format::Manifest manifest;
  manifest.mutable_model()->set_architecture("llama");
  EXPECT_TRUE((*writer)->Finish(manifest).ok());
  return path;
}

TEST_F(CliTest, NoArgumentsIsUsageError) {
  const CliResult r = RunZcpack({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("Usage: zcpack COMMAND"));
}

TEST_F(CliTest, HelpListsCommandsAndExitCodes) {
  const CliResult r = RunZcpack({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("inspect FILE"));
  EXPECT_THAT(r.out, HasSubstr("Exit codes:"));
}

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* command : {"inspect", "synth"}) {
    const CliResult r = RunZcpack({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, HasSubstr(std::string("Usage: zcpack ") + command));
  }
}

TEST_F(CliTest, UnknownCommandIsUsageError) {
  const CliResult r = RunZcpack({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST_F(CliTest, FlagOfAnotherCommandIsRejected) {
  const CliResult r = RunZcpack({"inspect", "x", "--shape", "tiny"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag '--shape'"));
}

TEST_F(CliTest, BadFlagValueIsUsageError) {
  const CliResult r = RunZcpack({"synth", "--out", dir_ + "/m", "--seed", "many"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--seed"));
}

TEST_F(CliTest, InspectMissingFileIsIoError) {
  const CliResult r = RunZcpack({"inspect", dir_ + "/absent.zcpack"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("absent.zcpack"));
}

TEST_F(CliTest, InspectTextFileIsRejectedAsNotAContainer) {
  const std::string path = dir_ + "/notes.txt";
  std::ofstream(path) << "hello, this is not a container\n";
  const CliResult r = RunZcpack({"inspect", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a zcpack container"));
}

TEST_F(CliTest, InspectJsonHasTheFieldsLaterCommandsRelyOn) {
  const std::string path = WriteSmallContainer(dir_ + "/small.zcpack");
  const CliResult r = RunZcpack({"inspect", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["alignment"], 16384);
  ASSERT_EQ(j["tensors"].size(), 2u);
  const auto& t0 = j["tensors"][0];
  EXPECT_EQ(t0["name"], "token_embd.weight");
  EXPECT_EQ(t0["dtype"], "q4_0");
  EXPECT_EQ(t0["shape"], nlohmann::json::array({8, 64}));
  EXPECT_EQ(t0["offset"], 16384);
  EXPECT_EQ(t0["bytes"], 8 * 2 * 18);
  EXPECT_EQ(t0["layer"], -1);
  EXPECT_EQ(j["tensors"][1]["layer"], 0);
  EXPECT_EQ(j["totals"]["tensor_count"], 2);
}

TEST_F(CliTest, InspectTextShowsTableAndTotals) {
  const std::string path = WriteSmallContainer(dir_ + "/small.zcpack");
  const CliResult r = RunZcpack({"inspect", path, "--checksums"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("alignment 16384"));
  EXPECT_THAT(r.out, HasSubstr("blk.0.attn_norm.weight"));
  EXPECT_THAT(r.out, HasSubstr("totals"));
  EXPECT_THAT(r.out, HasSubstr("checksums   all 2 tensors match"));
}

TEST_F(CliTest, InspectChecksumsCatchesFlippedDataByte) {
  const std::string path = WriteSmallContainer(dir_ + "/small.zcpack");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(16384 + 5);
    f.put(static_cast<char>(0x7f));
  }
  EXPECT_EQ(RunZcpack({"inspect", path}).exit_code, 0);  // cheap checks only
  const CliResult r = RunZcpack({"inspect", path, "--checksums"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("token_embd.weight"));
  EXPECT_THAT(r.err, HasSubstr("checksum mismatch"));
}

TEST_F(CliTest, SynthWritesConfigAndSafetensors) {
  const CliResult r = RunZcpack({"synth", "--shape", "tiny", "-o", dir_ + "/tiny", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["shape"], "tiny");
  struct stat st;
  EXPECT_EQ(::stat((dir_ + "/tiny/config.json").c_str(), &st), 0);
  ASSERT_EQ(::stat((dir_ + "/tiny/model.safetensors").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size) > j["weight_bytes"].get<uint64_t>(), true);
}

TEST_F(CliTest, SynthIsDeterministicAcrossThreadCounts) {
  ASSERT_EQ(RunZcpack({"synth", "-o", dir_ + "/a", "--threads", "1"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"synth", "-o", dir_ + "/b", "--threads", "2"}).exit_code, 0);
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(dir_ + "/a/model.safetensors"), read(dir_ + "/b/model.safetensors"));
  ASSERT_EQ(RunZcpack({"synth", "-o", dir_ + "/c", "--seed", "2"}).exit_code, 0);
  EXPECT_NE(read(dir_ + "/a/model.safetensors"), read(dir_ + "/c/model.safetensors"));
}

TEST_F(CliTest, SynthRefusesToOverwriteWithoutForce) {
  ASSERT_EQ(RunZcpack({"synth", "-o", dir_ + "/m"}).exit_code, 0);
  const CliResult again = RunZcpack({"synth", "-o", dir_ + "/m"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("--force"));
  EXPECT_EQ(RunZcpack({"synth", "-o", dir_ + "/m", "--force"}).exit_code, 0);
}

TEST_F(CliTest, SynthUnknownShapeNamesTheKnownOnes) {
  const CliResult r = RunZcpack({"synth", "--shape", "gpt5", "-o", dir_ + "/m"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("stories110m"));
}

// A FIFO given as input used to block open(2) forever, in every command that
// reads a file. Each must refuse it at once, as not a regular file.
TEST_F(CliTest, FifoInputIsRefusedNotWaitedOn) {
  const std::string fifo = dir_ + "/model.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::vector<std::vector<std::string>> commands = {
      {"inspect", fifo},
      {"verify", fifo},
      {"run", fifo, "--tokens", "1"},
      {"convert", fifo, "-o", dir_ + "/out.zcpack"},
  };
  for (const auto& args : commands) {
    const CliResult r = FinishZcpack(StartZcpack(args), /*timeout_seconds=*/30);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err, "zcpack " + args[0] + ": " + fifo +
                         ": not a regular file (a FIFO); zcpack reads regular files only\n");
  }
  struct stat st;
  EXPECT_NE(::stat((dir_ + "/out.zcpack").c_str(), &st), 0);
}

// --threads 100000 used to abort synth and 5000 used 24 GB: each thread holds
// 6 MiB of buffers. Out of range is a usage error in every command.
TEST_F(CliTest, ThreadsOutOfRangeIsUsageError) {
  const std::string out = dir_ + "/m";
  const std::vector<std::vector<std::string>> commands = {
      {"synth", "-o", out, "--threads", "100000"},
      {"synth", "-o", out, "--threads", "5000"},
      {"synth", "-o", out, "--threads", "-1"},
      {"convert", out, "-o", dir_ + "/m.zcpack", "--threads", "100000"},
      {"verify", dir_ + "/m.zcpack", "--threads", "-3"},
      {"run", dir_ + "/m.zcpack", "--tokens", "1", "--threads", "2000"},
  };
  for (const auto& args : commands) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args.back() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("zcpack " + args[0] + ": --threads " + args.back() +
                                 " is out of range: give 1 to 1024, or 0 for one per CPU"));
  }
  struct stat st;
  EXPECT_NE(::stat(out.c_str(), &st), 0);
}

// Every mistake on the command line is exit code 2 with the usage line, as
// in verify and bench, and nothing is written.
TEST_F(CliTest, SynthUsageErrorsExitTwoAndWriteNothing) {
  const std::string out = dir_ + "/m";
  const std::vector<std::vector<std::string>> cases = {
      {"synth"},
      {"synth", "--shape", "gpt5", "-o", out},
      {"synth", "--dtype", "q9", "-o", out},
      {"synth", "--dtype", "q4_0", "-o", out},
      {"synth", "--seed", "many", "-o", out},
      {"synth", "--threads", "", "-o", out},
      {"synth", "--frobnicate", "-o", out},
      {"synth", "-o", out, "stray-argument"},
  };
  for (const auto& args : cases) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Usage: zcpack synth")) << ::testing::PrintToString(args);
  }
  struct stat st;
  EXPECT_NE(::stat(out.c_str(), &st), 0) << "a usage error created " << out;
}

TEST_F(CliTest, InspectUsageErrorsExitTwo) {
  const std::string file = WriteSmallContainer(dir_ + "/small.zcpack");
  const std::vector<std::vector<std::string>> cases = {
      {"inspect"},
      {"inspect", file, file},
      {"inspect", file, "--json=maybe"},
      {"inspect", file, "--frobnicate"},
  };
  for (const auto& args : cases) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Usage: zcpack inspect")) << ::testing::PrintToString(args);
  }
}

// Linux paths are bytes. A path that is not UTF-8 used to abort --json with
// an uncaught nlohmann exception (SIGABRT); the bad byte is now written as
// the text \xff and the report is valid JSON.
TEST_F(CliTest, InspectJsonEscapesAPathThatIsNotUtf8) {
  const std::string file = WriteSmallContainer(dir_ + "/b\xff.zcpack");
  const CliResult r = RunZcpack({"inspect", file, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["input"], dir_ + "/b\\xff.zcpack");
}

TEST_F(CliTest, SynthJsonEscapesAFolderThatIsNotUtf8) {
  const std::string out = dir_ + "/m\xfe";
  const CliResult r = RunZcpack({"synth", "-o", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_FALSE(j["files"].empty());
  for (const auto& f : j["files"]) {
    EXPECT_THAT(f.get<std::string>(), HasSubstr("/m\\xfe/")) << f;
  }
  struct stat st;
  EXPECT_EQ(::stat((out + "/config.json").c_str(), &st), 0);
}

// inspect summed each tensor's alignment tail (237.5 KiB) and verify scanned
// every zero-filled range, the rest of the header's page included (253.4
// KiB), for the same file. One definition now (format::PaddingGaps()): every
// byte that is not header, tensor, tokenizer blob or manifest.
TEST_F(CliTest, InspectAndVerifyAgreeOnThePadding) {
  ASSERT_EQ(RunZcpack({"synth", "-o", dir_ + "/m"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"convert", dir_ + "/m", "-o", dir_ + "/m.zcpack"}).exit_code, 0);
  const CliResult inspect = RunZcpack({"inspect", dir_ + "/m.zcpack", "--json"});
  const CliResult verify = RunZcpack({"verify", dir_ + "/m.zcpack", "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  const auto i = nlohmann::json::parse(inspect.out), v = nlohmann::json::parse(verify.out);
  const uint64_t padding = i["totals"]["padding_bytes"].get<uint64_t>();
  EXPECT_EQ(padding, v["padding_bytes"].get<uint64_t>());
  // The rest of the header's page is padding too: more than a page less the
  // 128-byte header.
  EXPECT_GE(padding, 16384u - 128u);
  // Header, padding and manifest (no tokenizer here) are all of the file
  // that is not tensor data.
  EXPECT_EQ(i["file_bytes"].get<uint64_t>() - i["totals"]["tensor_bytes"].get<uint64_t>() - padding,
            128u + i["manifest"]["stored_bytes"].get<uint64_t>());
}

// The table was 113 columns before any name. It fits 100 now; a name too
// long for its column goes on a line of its own, the figures on the next.
TEST_F(CliTest, InspectTextFitsOneHundredColumns) {
  // stories15m: offsets and shapes wide enough that the longest Hugging
  // Face names do not fit beside them.
  ASSERT_EQ(RunZcpack({"synth", "--shape", "stories15m", "-o", dir_ + "/m"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"convert", dir_ + "/m", "-o", dir_ + "/m.zcpack"}).exit_code, 0);
  const CliResult r = RunZcpack({"inspect", dir_ + "/m.zcpack"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  int wrapped = 0;
  for (size_t k = 0; k < all.size(); ++k) {
    const std::string& line = all[k];
    if (line.find(dir_) != std::string::npos) continue;  // the path, as long as it is
    EXPECT_LE(line.size(), 100u) << line;
    // A wrapped row: the index and the name alone, its figures on the next
    // line, indented past the names.
    if (std::regex_match(line, std::regex(" *[0-9]+ [a-z_.0-9]+"))) {
      ++wrapped;
      ASSERT_LT(k + 1, all.size());
      EXPECT_TRUE(std::regex_match(all[k + 1], std::regex(" {20,}[0-9]+ +[0-9]+ [a-z0-9_]+ .*")))
          << all[k + 1];
    }
  }
  // model.layers.N.post_attention_layernorm.weight, one per layer.
  EXPECT_EQ(wrapped, 6);
  EXPECT_THAT(r.out, HasSubstr("model.layers.5.post_attention_layernorm.weight\n"));
  EXPECT_THAT(r.out, HasSubstr("layout      "));
}

}  // namespace
}  // namespace zcpack::testing
