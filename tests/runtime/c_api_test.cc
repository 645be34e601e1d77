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
#include "tests/runtime/text_model.h"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/utf8.h"

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

// The converter stores the projections in row groups: zcpack_tensor.data is
// not row-major for them, zcpack_tensor_layout() says so, and
// zcpack_copy_row() gives each row in ggml's order for every layout.
TEST_F(CApiTest, TensorLayoutAndRowsInGgmlOrder) {
  struct Case {
    const char* name;
    zcpack_layout layout;
  };
  for (const Case& c : {Case{"model.layers.0.self_attn.q_proj.weight", ZCPACK_LAYOUT_ROW_GROUPS_16},
                        Case{"lm_head.weight", ZCPACK_LAYOUT_ROW_GROUPS_16},
                        Case{"model.embed_tokens.weight", ZCPACK_LAYOUT_ROW_MAJOR},
                        Case{"model.norm.weight", ZCPACK_LAYOUT_ROW_MAJOR}}) {
    zcpack_layout layout;
    ASSERT_EQ(zcpack_tensor_layout(model_, c.name, &layout), ZCPACK_OK) << zcpack_last_error();
    EXPECT_EQ(layout, c.layout) << c.name;
    zcpack_tensor t;
    ASSERT_EQ(zcpack_find_tensor(model_, c.name, &t), ZCPACK_OK);
    const uint64_t rows = t.rank == 1 ? 1 : t.shape[0];
    const uint64_t row_bytes = t.nbytes / rows;
    const auto* data = static_cast<const uint8_t*>(t.data);
    std::vector<uint8_t> row_major(data, data + t.nbytes);
    if (layout == ZCPACK_LAYOUT_ROW_GROUPS_16) {
      zcpack::format::FromRowGroups(static_cast<zcpack::format::DType>(t.dtype), rows, row_bytes,
                                    data, row_major.data());
      EXPECT_NE(row_major, std::vector<uint8_t>(data, data + t.nbytes)) << c.name;
    }
    std::vector<uint8_t> row(row_bytes);
    for (uint64_t r : {uint64_t{0}, uint64_t{17}, rows - 1}) {
      if (r >= rows) continue;
      ASSERT_EQ(zcpack_copy_row(model_, c.name, r, row.data(), row.size()), ZCPACK_OK)
          << zcpack_last_error();
      EXPECT_TRUE(std::equal(row.begin(), row.end(), row_major.begin() + r * row_bytes))
          << c.name << " row " << r;
    }
    EXPECT_EQ(zcpack_copy_row(model_, c.name, rows, row.data(), row.size()), ZCPACK_OUT_OF_RANGE);
    EXPECT_EQ(zcpack_copy_row(model_, c.name, 0, row.data(), row.size() - 1),
              ZCPACK_INVALID_ARGUMENT);
    EXPECT_THAT(zcpack_last_error(), HasSubstr(c.name));
  }
  zcpack_layout layout;
  EXPECT_EQ(zcpack_tensor_layout(model_, "no.such.tensor", &layout), ZCPACK_NOT_FOUND);
  EXPECT_EQ(zcpack_tensor_layout(model_, nullptr, &layout), ZCPACK_INVALID_ARGUMENT);
  uint8_t byte;
  EXPECT_EQ(zcpack_copy_row(model_, "no.such.tensor", 0, &byte, 1), ZCPACK_NOT_FOUND);
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

// Text through the C API: tokenize, detokenize, generate from text.
class CApiTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new zcpack::testing::ScopedTempDir();
    text_ = new std::string(zcpack::testing::TextModel(*dir_, "text"));
    plain_ = new std::string(zcpack::testing::ConvertTinyModel(*dir_, "plain"));
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete text_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_EQ(zcpack_open(text_->c_str(), &model_), ZCPACK_OK) << zcpack_last_error();
  }
  void TearDown() override { zcpack_close(model_); }

  std::vector<int32_t> Tokenize(const std::string& text, int add_special, int parse_special) {
    size_t count = 0;
    EXPECT_EQ(zcpack_tokenize(model_, text.data(), text.size(), add_special, parse_special,
                              nullptr, 0, &count),
              text.empty() && !add_special ? ZCPACK_OK : ZCPACK_OUT_OF_RANGE);
    std::vector<int32_t> ids(count);
    EXPECT_EQ(zcpack_tokenize(model_, text.data(), text.size(), add_special, parse_special,
                              ids.data(), ids.size(), &count),
              ZCPACK_OK)
        << zcpack_last_error();
    EXPECT_EQ(count, ids.size());
    return ids;
  }

  static zcpack::testing::ScopedTempDir* dir_;
  static std::string* text_;
  static std::string* plain_;
  zcpack_model* model_ = nullptr;
};
zcpack::testing::ScopedTempDir* CApiTextTest::dir_ = nullptr;
std::string* CApiTextTest::text_ = nullptr;
std::string* CApiTextTest::plain_ = nullptr;

TEST_F(CApiTextTest, TokenizeTellsTheSizeAndFillsTheBuffer) {
  const std::vector<int32_t> ids = Tokenize("a time", 1, 0);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], zcpack::testing::kBosId);
  EXPECT_EQ(Tokenize("a time", 0, 0), std::vector<int32_t>(ids.begin() + 1, ids.end()));
  // Too small a buffer: the size, no write, OUT_OF_RANGE naming both.
  std::vector<int32_t> small(ids.size() - 1, -7);
  size_t count = 0;
  EXPECT_EQ(zcpack_tokenize(model_, "a time", 6, 1, 0, small.data(), small.size(), &count),
            ZCPACK_OUT_OF_RANGE);
  EXPECT_EQ(count, ids.size());
  EXPECT_THAT(small, ::testing::Each(-7));
  EXPECT_THAT(zcpack_last_error(), HasSubstr("buffer"));
}

TEST_F(CApiTextTest, ParseSpecialMatchesControlTokens) {
  const std::vector<int32_t> parsed = Tokenize("<|im_start|>", 0, 1);
  EXPECT_EQ(parsed, std::vector<int32_t>{zcpack::testing::kImStartId});
  const std::vector<int32_t> literal = Tokenize("<|im_start|>", 0, 0);
  EXPECT_THAT(literal, Not(::testing::Contains(zcpack::testing::kImStartId)));
}

TEST_F(CApiTextTest, DetokenizeRoundTripsAndTellsTheSize) {
  const std::string text = "Once upon a time \xe2\x82\xac";
  const std::vector<int32_t> ids = Tokenize(text, 0, 0);
  size_t length = 0;
  EXPECT_EQ(zcpack_detokenize(model_, ids.data(), ids.size(), 0, nullptr, 0, &length),
            ZCPACK_OUT_OF_RANGE);
  EXPECT_EQ(length, text.size());
  // Room for the text but not the NUL is still too small.
  std::string out(length, '?');
  EXPECT_EQ(zcpack_detokenize(model_, ids.data(), ids.size(), 0, out.data(), out.size(), &length),
            ZCPACK_OUT_OF_RANGE);
  out.assign(length + 1, '?');
  ASSERT_EQ(zcpack_detokenize(model_, ids.data(), ids.size(), 0, out.data(), out.size(), &length),
            ZCPACK_OK)
      << zcpack_last_error();
  EXPECT_EQ(out[length], '\0');
  EXPECT_EQ(out.substr(0, length), text);
  // special: the control tokens' text too.
  const int32_t bos = zcpack::testing::kBosId;
  ASSERT_EQ(zcpack_detokenize(model_, &bos, 1, 1, out.data(), out.size(), &length), ZCPACK_OK);
  EXPECT_EQ(std::string(out.data(), length), "<s>");
}

struct Collected {
  std::vector<int32_t> ids;
  std::string text;
  int stop_after = -1;  // stop after this many calls (-1: never)
};

int Collect(int32_t id, const char* piece, size_t piece_len, void* user_data) {
  auto* c = static_cast<Collected*>(user_data);
  c->ids.push_back(id);
  c->text.append(piece, piece_len);
  return c->stop_after >= 0 && static_cast<int>(c->ids.size()) >= c->stop_after;
}

TEST_F(CApiTextTest, GenerateTextStreamsTheSameIdsAsGenerate) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 6;
  options.threads = 1;
  const std::string prompt = "Once upon a time";
  Collected c;
  zcpack_stop_reason reason = ZCPACK_STOP_CALLBACK;
  ASSERT_EQ(zcpack_generate_text(model_, prompt.data(), prompt.size(), 0, &options, Collect, &c,
                                 &reason),
            ZCPACK_OK)
      << zcpack_last_error();
  const std::vector<int32_t> ids = Tokenize(prompt, 1, 0);
  std::vector<int32_t> expected(6);
  size_t count = 0;
  ASSERT_EQ(zcpack_generate(model_, ids.data(), ids.size(), &options, expected.data(), &count),
            ZCPACK_OK);
  expected.resize(count);
  if (reason == ZCPACK_STOP_END_OF_GENERATION) {
    ASSERT_FALSE(c.ids.empty());
    EXPECT_EQ(c.ids.back(), zcpack::testing::kEosId);
  } else {
    EXPECT_EQ(reason, ZCPACK_STOP_MAX_TOKENS);
    EXPECT_EQ(c.ids, expected);
  }
  // The pieces are whole UTF-8 whatever the ids decode to.
  EXPECT_TRUE(zcpack::format::IsValidUtf8(c.text));
}

TEST_F(CApiTextTest, CallbackStopsAndNullCallbackIsAllowed) {
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 6;
  options.threads = 1;
  Collected c;
  c.stop_after = 2;
  zcpack_stop_reason reason = ZCPACK_STOP_MAX_TOKENS;
  ASSERT_EQ(zcpack_generate_text(model_, "a", 1, 0, &options, Collect, &c, &reason), ZCPACK_OK)
      << zcpack_last_error();
  if (reason != ZCPACK_STOP_END_OF_GENERATION) {
    EXPECT_EQ(reason, ZCPACK_STOP_CALLBACK);
    EXPECT_EQ(c.ids.size(), 2u);
  }
  EXPECT_EQ(zcpack_generate_text(model_, "a", 1, 0, &options, nullptr, nullptr, nullptr),
            ZCPACK_OK)
      << zcpack_last_error();
}

TEST_F(CApiTextTest, BadArgumentsAreRefused) {
  zcpack_generate_options options = zcpack_default_generate_options();
  size_t count = 0;
  EXPECT_EQ(zcpack_tokenize(nullptr, "a", 1, 1, 0, nullptr, 0, &count), ZCPACK_INVALID_ARGUMENT);
  EXPECT_EQ(zcpack_tokenize(model_, nullptr, 1, 1, 0, nullptr, 0, &count),
            ZCPACK_INVALID_ARGUMENT);
  EXPECT_EQ(zcpack_tokenize(model_, "a", 1, 1, 0, nullptr, 4, &count), ZCPACK_INVALID_ARGUMENT);
  EXPECT_EQ(zcpack_detokenize(model_, nullptr, 2, 0, nullptr, 0, &count),
            ZCPACK_INVALID_ARGUMENT);
  EXPECT_EQ(zcpack_generate_text(model_, nullptr, 3, 0, &options, nullptr, nullptr, nullptr),
            ZCPACK_INVALID_ARGUMENT);
  options.max_tokens = -1;
  EXPECT_EQ(zcpack_generate_text(model_, "a", 1, 0, &options, nullptr, nullptr, nullptr),
            ZCPACK_INVALID_ARGUMENT);
  options.max_tokens = 2;
  options.temperature = -1.0f;
  EXPECT_EQ(zcpack_generate_text(model_, "a", 1, 0, &options, nullptr, nullptr, nullptr),
            ZCPACK_INVALID_ARGUMENT);
  EXPECT_THAT(zcpack_last_error(), HasSubstr("temperature"));
}

TEST_F(CApiTextTest, NoTokenizerIsNotFound) {
  zcpack_model* plain = nullptr;
  ASSERT_EQ(zcpack_open(plain_->c_str(), &plain), ZCPACK_OK);
  size_t count = 0;
  EXPECT_EQ(zcpack_tokenize(plain, "a", 1, 1, 0, nullptr, 0, &count), ZCPACK_NOT_FOUND);
  EXPECT_THAT(zcpack_last_error(), HasSubstr("carries no tokenizer"));
  zcpack_generate_options options = zcpack_default_generate_options();
  EXPECT_EQ(zcpack_generate_text(plain, "a", 1, 0, &options, nullptr, nullptr, nullptr),
            ZCPACK_NOT_FOUND);
  zcpack_close(plain);
}

}  // namespace
