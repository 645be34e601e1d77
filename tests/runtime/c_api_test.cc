// The C API keeps its promise: a status and a message, never an abort, for
// requests too large, arithmetic that would overflow, bad sampling options
// and a file truncated while mapped.
#include "zcpack/zcpack.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new zcpack::testing::ScopedTempDir();
    path_ = new std::string(zcpack::testing::ConvertTinyModel(*dir_, "tiny"));
    unbounded_path_ = new std::string(
        zcpack::testing::ConvertTinyModel(*dir_, "unbounded", /*record_context_length=*/false));
  }
  static void TearDownTestSuite() {
    delete unbounded_path_;
    delete path_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_EQ(zcpack_open(path_->c_str(), &model_), ZCPACK_OK) << zcpack_last_error();
  }
  void TearDown() override { zcpack_close(model_); }

  zcpack_status Generate(const zcpack_generate_options& options, std::vector<int32_t>* out) {
    const int32_t prompt[] = {1, 2};
    out->assign(static_cast<size_t>(std::max(options.max_tokens, 0)), -1);
    size_t count = 0;
    const zcpack_status status = zcpack_generate(model_, prompt, 2, &options, out->data(), &count);
    out->resize(count);
    return status;
  }

  static zcpack::testing::ScopedTempDir* dir_;
  static std::string* path_;
  static std::string* unbounded_path_;
  zcpack_model* model_ = nullptr;
};
zcpack::testing::ScopedTempDir* CApiTest::dir_ = nullptr;
std::string* CApiTest::path_ = nullptr;
std::string* CApiTest::unbounded_path_ = nullptr;

TEST_F(CApiTest, GeneratesGreedily) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 5;
  std::vector<int32_t> out;
  ASSERT_EQ(Generate(options, &out), ZCPACK_OK) << zcpack_last_error();
  EXPECT_EQ(out.size(), 5u);
  EXPECT_EQ(zcpack_check_mapping(model_), ZCPACK_OK);
}

// prompt_len + max_tokens was computed in int: INT32_MAX tokens after a
// prompt wrapped to "context of -2147483647 positions".
TEST_F(CApiTest, PromptPlusMaxTokensBeyondInt32IsAnErrorWithoutWrapping) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = std::numeric_limits<int32_t>::max();
  const int32_t prompt[] = {1, 2};
  int32_t out[1];
  size_t count = 7;
  EXPECT_EQ(zcpack_generate(model_, prompt, 2, &options, out, &count), ZCPACK_INVALID_ARGUMENT);
  EXPECT_EQ(count, 0u);
  EXPECT_THAT(zcpack_last_error(), HasSubstr("2147483647 a session can hold"));
  EXPECT_THAT(zcpack_last_error(), Not(HasSubstr("-214748364")));
}

// An unbounded KV cache threw std::bad_alloc through the C API (abort).
TEST_F(CApiTest, ContextBeyondTheModelOrTheMemoryIsAnErrorNotAnAbort) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 1'000'000'000;
  const int32_t prompt[] = {1};
  int32_t out[1];
  size_t count = 0;
  EXPECT_EQ(zcpack_generate(model_, prompt, 1, &options, out, &count), ZCPACK_INVALID_ARGUMENT);
  EXPECT_THAT(zcpack_last_error(), HasSubstr("longer than the model's 256"));

  zcpack_model* unbounded = nullptr;
  ASSERT_EQ(zcpack_open(unbounded_path_->c_str(), &unbounded), ZCPACK_OK) << zcpack_last_error();
  EXPECT_EQ(zcpack_generate(unbounded, prompt, 1, &options, out, &count), ZCPACK_IO_ERROR);
  EXPECT_THAT(zcpack_last_error(), HasSubstr("bytes of memory available"));
  zcpack_close(unbounded);
}

TEST_F(CApiTest, NonFiniteOrNegativeTemperatureIsRefusedAndATinyOneIsGreedy) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 6;
  std::vector<int32_t> greedy, out;
  ASSERT_EQ(Generate(options, &greedy), ZCPACK_OK) << zcpack_last_error();
  for (float t : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                  -0.5f}) {
    options.temperature = t;
    EXPECT_EQ(Generate(options, &out), ZCPACK_INVALID_ARGUMENT) << t;
    EXPECT_THAT(zcpack_last_error(), HasSubstr("temperature")) << t;
  }
  options.temperature = 1e-45f;
  ASSERT_EQ(Generate(options, &out), ZCPACK_OK) << zcpack_last_error();
  EXPECT_EQ(out, greedy);
}

// Opens `path`, generates, truncates the file, generates again; exits 0
// when the second call reported the truncation (in a death-test child).
void GenerateAfterTruncation(const std::string& path) {
  zcpack_model* model = nullptr;
  if (zcpack_open(path.c_str(), &model) != ZCPACK_OK) std::_Exit(2);
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 4;
  options.threads = 2;
  const int32_t prompt[] = {1, 2, 3};
  int32_t out[4];
  size_t count = 0;
  if (zcpack_generate(model, prompt, 3, &options, out, &count) != ZCPACK_OK) std::_Exit(3);
  if (::truncate(path.c_str(), 0) != 0) std::_Exit(4);
  const zcpack_status status = zcpack_generate(model, prompt, 3, &options, out, &count);
  std::fprintf(stderr, "%d %s\n", static_cast<int>(status), zcpack_last_error());
  const bool reported =
      status == ZCPACK_IO_ERROR && count == 0 && zcpack_check_mapping(model) == ZCPACK_IO_ERROR;
  zcpack_close(model);
  std::_Exit(reported ? 0 : 1);
}

// The file truncated under an open model: zcpack_generate() reports it
// instead of the process dying of SIGBUS. In a death-test child, so that a
// crash fails this test only.
TEST_F(CApiTest, FileTruncatedWhileMappedIsAnIoErrorNotACrash) {
  const std::string copy = dir_->File("truncated.zcpack");
  std::filesystem::copy_file(*path_, copy, std::filesystem::copy_options::overwrite_existing);
  EXPECT_EXIT(GenerateAfterTruncation(copy), ::testing::ExitedWithCode(0),
              "6 .*truncated.zcpack: truncated or unreadable while mapped");
}

}  // namespace
