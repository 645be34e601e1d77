// `zcpack convert` on an already-quantized GGUF, end to end: the default
// keeps the blocks, the container runs and verifies against the GGUF byte for
// byte, an explicit --quant requantizes with one warning, and what cannot be
// kept is refused in one line with exit code 1.
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/format/dtype.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

class RepackCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("repack"); }

  // A llama GGUF of `dtype` matrices (with `ggml_types` overrides) written
  // to `name`.
  std::string WriteGguf(const std::string& name,
                        const std::map<std::string, uint32_t>& ggml_types = {},
                        format::DType dtype = format::DTYPE_Q4_0) {
    bytes_ = TinyLlamaGguf(QuantizedLlamaModelInfo(), dtype, 3, {}, ggml_types);
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, bytes_).ok());
    return path;
  }

  // bytes_ with one bit of byte `byte` of row `row` of `tensor` flipped,
  // written to `name`; "" (and a test failure) when the tensor is missing.
  std::string WriteWithFlippedBit(const std::string& name, const std::string& tensor,
                                  uint64_t row, uint64_t byte) {
    auto parsed = converter::ParseGguf(bytes_, name);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (!parsed.ok()) return "";
    const auto it = std::find_if(parsed->tensors.begin(), parsed->tensors.end(),
                                 [&](const auto& t) { return t.name == tensor; });
    EXPECT_NE(it, parsed->tensors.end()) << tensor;
    if (it == parsed->tensors.end()) return "";
    const uint64_t row_bytes = it->nbytes / it->shape[0];
    std::vector<uint8_t> changed = bytes_;
    changed[it->offset + row * row_bytes + byte] ^= 0x10;
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, changed).ok());
    return path;
  }

  static bool Exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::string dir_;
  std::vector<uint8_t> bytes_;
};

TEST_F(RepackCliTest, QuantizedGgufConvertsByDefaultRunsAndVerifies) {
  const std::string gguf = WriteGguf("model.gguf");
  const std::string out = dir_ + "/model.zcpack";
  CliResult r = RunZcpack({"convert", gguf, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("kept byte for byte"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("lowest SNR")));

  r = RunZcpack({"run", out, "--tokens", "1,2", "-n", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("generated:"));

  r = RunZcpack({"verify", out, "--against", gguf});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("unconverted (byte for byte)"));
}

// The row-major-only block types: kept, run, and verified byte for byte; a
// changed block byte is found.
TEST_F(RepackCliTest, Q4_1Q5_0AndQ5_1GgufsConvertRunAndVerify) {
  for (format::DType dtype : {format::DTYPE_Q4_1, format::DTYPE_Q5_0, format::DTYPE_Q5_1}) {
    const std::string name(format::DTypeName(dtype));
    const std::string gguf = WriteGguf(name + ".gguf", {}, dtype);
    const std::string out = dir_ + "/" + name + ".zcpack";
    CliResult r = RunZcpack({"convert", gguf, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("kept byte for byte")) << name;

    r = RunZcpack({"inspect", out, "--json"});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("\"" + name + "\"")) << name;

    r = RunZcpack({"run", out, "--tokens", "1,2", "-n", "2"});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("generated:")) << name;

    r = RunZcpack({"verify", out, "--against", gguf});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("unconverted (byte for byte)")) << name;

    // A code byte (or qh) of row 39.
    const std::string changed =
        WriteWithFlippedBit("changed-" + name + ".gguf", "blk.1.ffn_up.weight", 39, 9);
    ASSERT_FALSE(changed.empty());
    r = RunZcpack({"verify", out, "--against", changed});
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("row 39")) << name;
  }
}

// A Q4_K_M-like mix: Q6_K for attn_v, ffn_down and the output head (and the
// embedding, as some mixes store it), Q5_K for two more matrices, the rest
// Q4_0. Their blocks are random bytes with small finite scales, so the run
// reads real weights of every kind.
TEST_F(RepackCliTest, Q5_KAndQ6_KTensorsAreKeptRunAndVerify) {
  const std::map<std::string, uint32_t> types = {
      {"token_embd.weight", converter::kGgmlTypeQ6_K},
      {"blk.0.attn_v.weight", converter::kGgmlTypeQ6_K},
      {"blk.1.ffn_down.weight", converter::kGgmlTypeQ6_K},
      {"output.weight", converter::kGgmlTypeQ6_K},
      {"blk.0.attn_q.weight", converter::kGgmlTypeQ5_K},
      {"blk.1.ffn_up.weight", converter::kGgmlTypeQ5_K}};
  WriteGguf("zeros.gguf", types);
  auto parsed = converter::ParseGguf(bytes_, "zeros.gguf");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (const converter::GgufTensorInfo& t : parsed->tensors) {
    if (!types.contains(t.name)) continue;
    const bool q6 = t.ggml_type == converter::kGgmlTypeQ6_K;
    EXPECT_EQ(t.dtype, q6 ? format::DTYPE_Q6_K : format::DTYPE_Q5_K) << t.name;
    const uint64_t block_bytes = q6 ? 210 : 176;
    for (uint64_t b = 0; b < t.nbytes / block_bytes; ++b) {
      uint8_t* block = bytes_.data() + t.offset + b * block_bytes;
      for (uint64_t i = 0; i < block_bytes; ++i) block[i] = static_cast<uint8_t>(next() >> 24);
      // fp16 scales in [2^-9, 2^-8): 0x1800..0x1bff.
      const uint16_t d = static_cast<uint16_t>(0x1800 | (next() >> 22));
      const uint64_t at = q6 ? 208 : 0;
      block[at] = static_cast<uint8_t>(d);
      block[at + 1] = static_cast<uint8_t>(d >> 8);
      if (!q6) {
        block[2] = static_cast<uint8_t>(d);
        block[3] = static_cast<uint8_t>(d >> 8);
      }
    }
  }
  const std::string gguf = dir_ + "/mix.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, bytes_).ok());
  const std::string out = dir_ + "/mix.zcpack";
  CliResult r = RunZcpack({"convert", gguf, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("kept byte for byte"));

  r = RunZcpack({"inspect", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("q6_k"));
  EXPECT_THAT(r.out, HasSubstr("q5_k"));

  r = RunZcpack({"verify", out, "--against", gguf});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("unconverted (byte for byte)"));

  r = RunZcpack({"run", out, "--tokens", "1,2,3", "-n", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("generated:"));
}

TEST_F(RepackCliTest, JsonMarksKeptTensorsAndGivesThemNoErrorFigures) {
  const std::string gguf = WriteGguf("model.gguf");
  const CliResult r = RunZcpack({"convert", gguf, "-o", dir_ + "/model.zcpack", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("kept_source_blocks": true)"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("snr_db")));
}

TEST_F(RepackCliTest, VerifyAgainstFindsOneChangedBlockByte) {
  const std::string gguf = WriteGguf("model.gguf");
  const std::string out = dir_ + "/model.zcpack";
  ASSERT_EQ(RunZcpack({"convert", gguf, "-o", out, "--quiet"}).exit_code, 0);
  // A byte of the 40th row (in the row groups' tail-free part) of a grouped
  // matrix: verify must de-interleave to find it.
  const std::string changed = WriteWithFlippedBit("changed.gguf", "blk.1.ffn_up.weight", 39, 7);
  ASSERT_FALSE(changed.empty());
  const CliResult r = RunZcpack({"verify", out, "--against", changed});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("blk.1.ffn_up.weight"));
  EXPECT_THAT(r.out, HasSubstr("row 39"));
}

TEST_F(RepackCliTest, TypeTheRuntimeCannotRunIsRefusedInOneLine) {
  const std::string gguf = WriteGguf("model.gguf", {{"output.weight", 11}});  // Q3_K
  const std::string out = dir_ + "/model.zcpack";
  const CliResult r = RunZcpack({"convert", gguf, "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "zcpack convert: " + gguf +
                       ": 1 tensor has a type zcpack cannot run yet: output.weight (Q3_K)\n");
  EXPECT_FALSE(Exists(out));
}

// An explicit --quant of another type requantizes, with one warning on
// stderr (whatever the output mode) that gives the largest error added.
TEST_F(RepackCliTest, ExplicitQuantRequantizesWithOneWarningLine) {
  const std::string gguf = WriteGguf("model.gguf");
  const std::string out = dir_ + "/model.zcpack";
  for (const std::vector<std::string>& mode :
       {std::vector<std::string>{}, {"--quiet"}, {"--json"}}) {
    std::vector<std::string> args = {"convert", gguf, "-o", out, "--quant", "q8_0", "--force"};
    args.insert(args.end(), mode.begin(), mode.end());
    const CliResult r = RunZcpack(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("zcpack convert: warning: requantized "));
    EXPECT_THAT(r.err, HasSubstr("(q4_0 to q8_0)"));
    EXPECT_THAT(r.err, HasSubstr("of the tensor's RMS (SNR "));
    if (!mode.empty() && mode[0] == "--json") {
      EXPECT_THAT(r.out, HasSubstr(R"("warnings")"));
      EXPECT_THAT(r.out, HasSubstr(R"("requantized )"));
    }
  }
  CliResult r = RunZcpack({"run", out, "--tokens", "1,2", "-n", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunZcpack({"inspect", out, "--json"});
  EXPECT_THAT(r.out, HasSubstr(R"("quant": "q8_0")"));
}

TEST_F(RepackCliTest, QuantKeepIsAcceptedAndRecorded) {
  const std::string gguf = WriteGguf("model.gguf");
  const std::string out = dir_ + "/model.zcpack";
  ASSERT_EQ(RunZcpack({"convert", gguf, "-o", out, "--quant", "keep", "--quiet"}).exit_code, 0);
  const CliResult r = RunZcpack({"inspect", out, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("quant": "keep")"));
}

}  // namespace
}  // namespace zcpack::testing
