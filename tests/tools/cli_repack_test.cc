// `zcpack convert` on an already-quantized GGUF, end to end: the default
// keeps the blocks, the container runs and verifies against the GGUF byte for
// byte, and what cannot be kept is refused in one line with exit code 1.
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"
#include "zcpack/converter/gguf.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;

class RepackCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("repack"); }

  // A Q4_0 llama GGUF (with `ggml_types` overrides) written to `name`.
  std::string WriteGguf(const std::string& name,
                        const std::map<std::string, uint32_t>& ggml_types = {}) {
    bytes_ = TinyLlamaGguf(QuantizedLlamaModelInfo(), format::DTYPE_Q4_0, 3, {}, ggml_types);
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, bytes_).ok());
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
  auto parsed = converter::ParseGguf(bytes_, gguf);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto it = std::find_if(parsed->tensors.begin(), parsed->tensors.end(),
                               [](const auto& t) { return t.name == "blk.1.ffn_up.weight"; });
  ASSERT_NE(it, parsed->tensors.end());
  // A byte of the 40th row (in the row groups' tail-free part) of a grouped
  // matrix: verify must de-interleave to find it.
  const uint64_t row_bytes = it->nbytes / it->shape[0];
  bytes_[it->offset + 39 * row_bytes + 7] ^= 0x10;
  const std::string changed = dir_ + "/changed.gguf";
  ASSERT_TRUE(WriteFileBytes(changed, bytes_).ok());
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

TEST_F(RepackCliTest, RequantizingIsRefusedInOneLine) {
  const std::string gguf = WriteGguf("model.gguf");
  const std::string out = dir_ + "/model.zcpack";
  const CliResult r = RunZcpack({"convert", gguf, "-o", out, "--quant", "q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("blk.0.attn_q.weight (q4_0 to q8_0)"));
  EXPECT_THAT(r.err, HasSubstr("use --quant keep"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(Exists(out));
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
