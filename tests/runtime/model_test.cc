// Model::Open(): zero-copy, no tensor read at open, memory-policy hints that
// degrade gracefully, and the session's input checks.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime/text_model.h"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/synth.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime {
namespace {

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir();
    path_ = new std::string(testing::ConvertTinyModel(*dir_, "tiny"));
    unbounded_path_ = new std::string(
        testing::ConvertTinyModel(*dir_, "unbounded", /*record_context_length=*/false));
  }
  static void TearDownTestSuite() {
    delete unbounded_path_;
    delete path_;
    delete dir_;
  }

  // A copy of the tiny model that a test may damage.
  static std::string CopyOfModel(const std::string& name) {
    const std::string copy = dir_->File(name);
    std::filesystem::copy_file(*path_, copy, std::filesystem::copy_options::overwrite_existing);
    return copy;
  }

  static void Evict(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
  }

  // Resident pages of [offset, offset + size) of the model's mapping.
  static size_t Resident(const Model& model, uint64_t offset, uint64_t size) {
    const long page = ::sysconf(_SC_PAGESIZE);
    const uint8_t* base = model.container().file_bytes().data();
    std::vector<unsigned char> vec((size + page - 1) / page);
    EXPECT_EQ(::mincore(const_cast<uint8_t*>(base + offset), size, vec.data()), 0);
    size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    return n;
  }

  static testing::ScopedTempDir* dir_;
  static std::string* path_;
  static std::string* unbounded_path_;
};
testing::ScopedTempDir* ModelTest::dir_ = nullptr;
std::string* ModelTest::path_ = nullptr;
std::string* ModelTest::unbounded_path_ = nullptr;

TEST_F(ModelTest, OpenReadsNoTensorData) {
  Evict(*path_);
  auto model = Model::Open(*path_);  // the default policy, prefetch included
  ASSERT_TRUE(model.ok()) << model.status();
  const format::ByteRange data = (*model)->container().data_range();
  const size_t resident = Resident(**model, data.offset, data.size);
  if (resident == data.size / ::sysconf(_SC_PAGESIZE)) GTEST_SKIP() << "eviction had no effect here";
  EXPECT_EQ(resident, 0u);
  EXPECT_EQ((*model)->prefetched_units(), 0u);
}

TEST_F(ModelTest, FirstStepPrefetchesAheadAndRuns) {
  Evict(*path_);
  auto model = Model::Open(*path_);
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(**model, {.max_context = 16, .threads = 1});
  const int32_t token = 1;
  ASSERT_TRUE((*session)->Evaluate(std::span<const int32_t>(&token, 1)).ok());
  const format::ByteRange data = (*model)->container().data_range();
  EXPECT_GT(Resident(**model, data.offset, data.size), 0u);
}

TEST_F(ModelTest, PopulateMakesEveryPageResident) {
  Evict(*path_);
  OpenOptions options;
  options.memory.populate = true;
  auto model = Model::Open(*path_, options);
  ASSERT_TRUE(model.ok());
  const format::ByteRange data = (*model)->container().data_range();
  EXPECT_EQ(Resident(**model, data.offset, data.size), data.size / ::sysconf(_SC_PAGESIZE));
}

TEST_F(ModelTest, RefusedMlockIsANoteNotAnError) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    // In a child: drop the limit (and the capability to exceed it as root is
    // not dropped, so accept either outcome, but never a failure to open).
    rlimit tiny{4096, 4096};
    ::setrlimit(RLIMIT_MEMLOCK, &tiny);
    OpenOptions options;
    options.memory.lock = true;
    auto model = Model::Open(*path_, options);
    ::_exit(model.ok() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(ModelTest, AdviceHintsAreAccepted) {
  for (Advice advice : {Advice::kNone, Advice::kSequential, Advice::kRandom, Advice::kWillNeed}) {
    OpenOptions options;
    options.memory.advice = advice;
    auto model = Model::Open(*path_, options);
    ASSERT_TRUE(model.ok()) << AdviceName(advice);
    EXPECT_THAT((*model)->notes(), ::testing::IsEmpty());
  }
  EXPECT_EQ(ParseAdvice("sideways").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ModelTest, ViewsPointIntoTheMapping) {
  auto model = Model::Open(*path_);
  ASSERT_TRUE(model.ok());
  const auto bytes = (*model)->container().file_bytes();
  const uint8_t* wq = (*model)->layer(1).wq.data;
  EXPECT_GE(wq, bytes.data());
  EXPECT_LT(wq, bytes.data() + bytes.size());
  EXPECT_EQ((wq - bytes.data()) % (*model)->container().alignment(), 0);
}

TEST_F(ModelTest, SessionRejectsBadTokensAndFullContext) {
  auto model = Model::Open(*path_);
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(**model, {.max_context = 4, .threads = 1});
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_EQ((*session)->Evaluate(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*session)->position(), 0);
  EXPECT_EQ((*session)->Evaluate({}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_EQ((*session)->Evaluate(five).status().code(), absl::StatusCode::kOutOfRange);
  const std::vector<int32_t> four = {1, 2, 3, 4};
  EXPECT_TRUE((*session)->Evaluate(four).ok());
  EXPECT_EQ((*session)->position(), 4);
}

// A file truncated while mapped: the next step's reads of the mapping fault
// (SIGBUS). The step must fail with Aborted naming the file, not kill the
// process. Run in a death-test child, so that a crash fails this test only.
void EvaluateAfterTruncation(const std::string& path, const OpenOptions& open, int threads) {
  auto model = Model::Open(path, open);
  if (!model.ok()) {
    std::fprintf(stderr, "open: %s\n", model.status().ToString().c_str());
    std::_Exit(2);
  }
  auto session = Session::Create(**model, {.max_context = 16, .threads = threads});
  const int32_t token = 1;
  if (!session.ok() || !(*session)->Evaluate(std::span<const int32_t>(&token, 1)).ok()) std::_Exit(3);
  if (::truncate(path.c_str(), 0) != 0) std::_Exit(4);
  const absl::StatusOr<std::span<const float>> logits =
      (*session)->Evaluate(std::span<const int32_t>(&token, 1));
  std::fprintf(stderr, "%s\n", logits.status().ToString().c_str());
  const bool aborted = logits.status().code() == absl::StatusCode::kAborted &&
                       (*model)->CheckMapping().code() == absl::StatusCode::kAborted &&
                       (*session)->position() == 1;
  std::_Exit(aborted ? 0 : 1);
}

TEST_F(ModelTest, TruncatedWhileMappedIsAnErrorNotACrash) {
  const std::string copy = CopyOfModel("truncated.zcpack");
  EXPECT_EXIT(EvaluateAfterTruncation(copy, {}, 1), ::testing::ExitedWithCode(0),
              "ABORTED: .*truncated.zcpack: truncated or unreadable while mapped");
}

TEST_F(ModelTest, TruncatedWhileMappedFailsOnPoolWorkersAndAfterPopulate) {
  const std::string copy = CopyOfModel("truncated_populated.zcpack");
  OpenOptions populate;
  populate.memory.populate = true;
  EXPECT_EXIT(EvaluateAfterTruncation(copy, populate, 2), ::testing::ExitedWithCode(0),
              "truncated or unreadable while mapped");
}

TEST_F(ModelTest, ContextLongerThanTheModelsIsRefused) {
  auto model = Model::Open(*path_);  // max_position_embeddings 256
  ASSERT_TRUE(model.ok());
  EXPECT_TRUE(Session::Create(**model, {.max_context = 256, .threads = 1}).ok());
  const auto longer = Session::Create(**model, {.max_context = 257, .threads = 1});
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(longer.status().message(), ::testing::HasSubstr("longer than the model's 256"));
}

// Asked for explicitly, a longer context runs (as llama.cpp's -c does), still
// bounded by memory.
TEST_F(ModelTest, LongerContextRunsWhenAllowed) {
  auto model = Model::Open(*path_);  // max_position_embeddings 256
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(
      **model, {.max_context = 300, .allow_longer_context = true, .threads = 1});
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<int32_t> tokens(270, 1);
  EXPECT_TRUE((*session)->Evaluate(tokens).ok());
  EXPECT_EQ((*session)->position(), 270);
  const auto huge = Session::Create(
      **model, {.max_context = 2'000'000'000, .allow_longer_context = true, .threads = 1});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
}

// Without a context length in the manifest, the memory available bounds the
// KV cache: a clear error instead of std::bad_alloc.
TEST_F(ModelTest, KvCacheBeyondTheMemoryIsAResourceError) {
  auto model = Model::Open(*unbounded_path_);
  ASSERT_TRUE(model.ok());
  ASSERT_EQ((*model)->info().max_position_embeddings(), 0u);
  const auto huge = Session::Create(**model, {.max_context = 1'000'000'000, .threads = 1});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(huge.status().message(), ::testing::HasSubstr("bytes of memory available"));
  EXPECT_TRUE(Session::Create(**model, {.max_context = 4096, .threads = 1}).ok());
}

TEST(ContextForGenerationTest, SumsWithoutOverflow) {
  EXPECT_EQ(ContextForGeneration(3, 16).value(), 19);
  EXPECT_EQ(ContextForGeneration(0, std::numeric_limits<int>::max()).value(),
            std::numeric_limits<int>::max());
  const auto over = ContextForGeneration(1, std::numeric_limits<int>::max());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), ::testing::Not(::testing::HasSubstr("-2147483648")));
  EXPECT_EQ(ContextForGeneration(uint64_t{1} << 40, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContextForGeneration(1, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ModelTest, SessionCapsThreadsAtTheAvailableCpus) {
  auto model = Model::Open(*path_);
  ASSERT_TRUE(model.ok());
  const int cpus = ThreadPool::AvailableCpus();
  auto session = Session::Create(**model, {.max_context = 8, .threads = cpus + 1});
  ASSERT_TRUE(session.ok());
  EXPECT_EQ((*session)->threads(), cpus);
  EXPECT_THAT((*session)->notes(),
              ::testing::ElementsAre(::testing::HasSubstr(absl::StrCat(cpus + 1, " threads requested"))));
  auto fits = Session::Create(**model, {.max_context = 8, .threads = cpus});
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ((*fits)->threads(), cpus);
  EXPECT_THAT((*fits)->notes(), ::testing::IsEmpty());
}

TEST(ModelOpenTest, MissingFileAndNotAContainer) {
  EXPECT_EQ(Model::Open("/nonexistent/x.zcpack").status().code(), absl::StatusCode::kNotFound);
  testing::ScopedTempDir dir;
  ASSERT_TRUE(testing::WriteFileBytes(dir.File("x"), std::vector<uint8_t>(300, 'a')).ok());
  EXPECT_EQ(Model::Open(dir.File("x")).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zcpack::runtime

namespace zcpack::runtime {
namespace {

TEST(LoaderTest, EveryLoaderGivesIdenticalLogits) {
  testing::ScopedTempDir dir;
  converter::SynthOptions synth;
  synth.shape = "tiny";
  synth.out_dir = dir.File("tiny");
  ASSERT_TRUE(converter::Synthesize(synth).ok());
  converter::ConvertOptions convert;
  convert.source = synth.out_dir;
  convert.output = dir.File("tiny.zcpack");
  ASSERT_TRUE(converter::Convert(convert).ok());
  std::vector<float> reference;
  for (Loader loader : {Loader::kZcpack, Loader::kMmapNaive, Loader::kClassic, Loader::kPread,
                        Loader::kDirect}) {
    OpenOptions options;
    options.loader = loader;
    auto model = Model::Open(convert.output, options);
    ASSERT_TRUE(model.ok()) << LoaderName(loader) << ": " << model.status();
    const bool copies = loader != Loader::kZcpack && loader != Loader::kMmapNaive;
    EXPECT_EQ((*model)->owned_bytes() > 0, copies) << LoaderName(loader);
    auto session = Session::Create(**model, {.max_context = 8, .threads = 1});
    const std::vector<int32_t> prompt = {1, 7, 11};
    auto logits = (*session)->Evaluate(prompt);
    ASSERT_TRUE(logits.ok());
    if (reference.empty()) reference.assign(logits->begin(), logits->end());
    EXPECT_TRUE(std::equal(reference.begin(), reference.end(), logits->begin()))
        << LoaderName(loader);
  }
  EXPECT_EQ(ParseLoader("classic").value(), Loader::kClassic);
  EXPECT_EQ(ParseLoader("floppy").status().code(), absl::StatusCode::kInvalidArgument);
}

// Text in and text out: the lazy tokenizer and GenerateText().
class TextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir();
    plain_ = new std::string(testing::ConvertTinyModel(*dir_, "plain"));
    text_ = new std::string(testing::TextModel(*dir_, "text"));
    // What greedy generation gives after kPrompt, whatever the vocabulary.
    auto model = Model::Open(*plain_);
    ASSERT_TRUE(model.ok()) << model.status();
    auto session = Session::Create(**model, {.max_context = 16, .threads = 1});
    ASSERT_TRUE(session.ok());
    auto ids = Generate(**session, kPrompt, 8, SamplingOptions());
    ASSERT_TRUE(ids.ok()) << ids.status();
    greedy_ = new std::vector<int32_t>(*ids);
  }
  static void TearDownTestSuite() {
    delete greedy_;
    delete text_;
    delete plain_;
    delete dir_;
  }
  static std::unique_ptr<Model> Open(const std::string& path) {
    auto model = Model::Open(path);
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? *std::move(model) : nullptr;
  }
  // The first `n` greedy tokens, when they are distinct and none of the
  // special ids (so that a vocabulary can give each its own text, and none
  // ends generation by itself: <|im_end|> is EOT); the test
  // is skipped otherwise (the weights decide; they are fixed by the seed).
  static bool DistinctGreedy(size_t n) {
    std::set<int32_t> seen(greedy_->begin(), greedy_->begin() + static_cast<ptrdiff_t>(n));
    return seen.size() == n && !seen.count(testing::kUnkId) && !seen.count(testing::kBosId) &&
           !seen.count(testing::kEosId) && !seen.count(testing::kImStartId) &&
           !seen.count(testing::kImEndId);
  }

  static constexpr int32_t kPrompt[] = {1, 300, 301, 302};
  static testing::ScopedTempDir* dir_;
  static std::string* plain_;
  static std::string* text_;
  static std::vector<int32_t>* greedy_;
};
testing::ScopedTempDir* TextTest::dir_ = nullptr;
std::string* TextTest::plain_ = nullptr;
std::string* TextTest::text_ = nullptr;
std::vector<int32_t>* TextTest::greedy_ = nullptr;

TEST_F(TextTest, ContainerWithoutTokenizerIsNotFound) {
  auto model = Open(*plain_);
  ASSERT_NE(model, nullptr);
  const absl::Status s = model->tokenizer().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), ::testing::HasSubstr(*plain_));
  EXPECT_THAT(s.message(), ::testing::HasSubstr("carries no tokenizer"));
}

TEST_F(TextTest, OpenDoesNotDecodeACorruptTokenizerAndTokenizerFailsNamingIt) {
  format::TokenizerBlob broken = testing::GgufMetadataBlob(testing::TextVocabulary());
  std::string& data = *broken.mutable_zstd_data();
  for (size_t i = data.size() / 2; i < data.size(); ++i) data[i] = static_cast<char>(~data[i]);
  const std::string path = dir_->File("corrupt.zcpack");
  testing::WithTokenizers(*plain_, path, {broken});
  auto model = Open(path);  // Open() never looks at the blob
  ASSERT_NE(model, nullptr);
  const absl::Status first = model->tokenizer().status();
  EXPECT_EQ(first.code(), absl::StatusCode::kDataLoss) << first;
  EXPECT_THAT(first.message(), ::testing::HasSubstr("gguf-metadata"));
  EXPECT_THAT(first.message(), ::testing::HasSubstr(path));
  // The error is remembered.
  EXPECT_EQ(model->tokenizer().status(), first);
}

TEST_F(TextTest, UnreadableVocabularyFailsAtFirstUseNotAtOpen) {
  nlohmann::json keys = testing::TextVocabulary();
  keys["tokenizer.ggml.scores"] = std::vector<float>{1.0f};  // one score for 512 tokens
  const std::string path = dir_->File("short-scores.zcpack");
  testing::WithTokenizers(*plain_, path, {testing::GgufMetadataBlob(keys)});
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  const absl::Status s = model->tokenizer().status();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::HasSubstr("tiny.gguf"));
}

TEST_F(TextTest, UnknownBlobKindsAreNotFoundNamingThem) {
  format::TokenizerBlob other = testing::GgufMetadataBlob(testing::TextVocabulary());
  other.set_kind("vocab.txt");
  const std::string path = dir_->File("other-kind.zcpack");
  testing::WithTokenizers(*plain_, path, {other});
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  const absl::Status s = model->tokenizer().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("vocab.txt"));
}

TEST_F(TextTest, TokenizerIsDecodedOnceAndShared) {
  auto model = Open(*text_);
  ASSERT_NE(model, nullptr);
  std::vector<const Tokenizer*> seen(4, nullptr);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < seen.size(); ++t) {
    threads.emplace_back([&, t] { seen[t] = model->tokenizer().value_or(nullptr); });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_NE(seen[0], nullptr);
  for (const Tokenizer* t : seen) EXPECT_EQ(t, seen[0]);
  EXPECT_EQ(seen[0]->size(), testing::kTinyVocab);
}

TEST_F(TextTest, VocabularyIdsWinAndModelInfoFillsWhatItLacks) {
  // The model info (synth) says bos 1, eos 2. The vocabulary names bos 300
  // and no eos.
  nlohmann::json keys = testing::TextVocabulary();
  keys["tokenizer.ggml.bos_token_id"] = 300;
  keys.erase("tokenizer.ggml.eos_token_id");
  const std::string path = dir_->File("ids.zcpack");
  testing::WithTokenizers(*plain_, path, {testing::GgufMetadataBlob(keys)});
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  auto tokenizer = model->tokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocabulary().bos_id, 300);
  EXPECT_EQ((*tokenizer)->vocabulary().eos_id, 2);
}

TEST_F(TextTest, TextRoundTripsThroughTheCarriedTokenizer) {
  auto model = Open(*text_);
  ASSERT_NE(model, nullptr);
  auto tokenizer = model->tokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = "Once upon a time, caf\xc3\xa9 \xe2\x82\xac!";
  const std::vector<int32_t> with_bos = (*tokenizer)->Tokenize(text, {.add_special = true});
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), testing::kBosId);
  // Without BOS, SPM's leading space is removed again (llama_detokenize()).
  const std::vector<int32_t> ids = (*tokenizer)->Tokenize(text);
  EXPECT_EQ(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()), ids);
  EXPECT_EQ((*tokenizer)->Detokenize(ids), text);
}

TEST_F(TextTest, GenerateTextGivesTheSameIdsAsGenerate) {
  auto model = Open(*text_);
  ASSERT_NE(model, nullptr);
  const Tokenizer* tokenizer = *model->tokenizer();
  auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
  ASSERT_TRUE(session.ok());
  std::vector<int32_t> ids;
  std::string streamed;
  auto result = GenerateText(**session, *tokenizer, kPrompt, 8, SamplingOptions(),
                             [&](int32_t id, absl::string_view piece) {
                               ids.push_back(id);
                               absl::StrAppend(&streamed, piece);
                               return true;
                             });
  ASSERT_TRUE(result.ok()) << result.status();
  // The same ids up to the first end-of-generation one (<|im_end|> and </s>
  // both are), where GenerateText() stops.
  std::vector<int32_t> expected;
  for (int32_t id : *greedy_) {
    expected.push_back(id);
    if (tokenizer->IsEndOfGeneration(id)) break;
  }
  EXPECT_EQ(result->generated_tokens, expected);
  EXPECT_EQ(result->stop_reason, tokenizer->IsEndOfGeneration(expected.back())
                                     ? StopReason::kEndOfGeneration
                                     : StopReason::kMaxTokens);
  EXPECT_EQ(ids, result->generated_tokens);
  EXPECT_EQ(streamed, result->text);
  EXPECT_EQ(result->prompt_tokens, std::vector<int32_t>(std::begin(kPrompt), std::end(kPrompt)));
  EXPECT_EQ(result->stats.generated_tokens, static_cast<int>(result->generated_tokens.size()));
}

TEST_F(TextTest, StopsAtEndOfGenerationAndReportsIt) {
  // A vocabulary whose EOS is the third greedy token.
  if (!DistinctGreedy(3)) GTEST_SKIP() << "the first greedy tokens repeat";
  const std::string path = testing::TextModel(*dir_, "eos", "", {}, (*greedy_)[2]);
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  const Tokenizer* tokenizer = *model->tokenizer();
  auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
  ASSERT_TRUE(session.ok());
  std::vector<int32_t> called;
  auto result = GenerateText(**session, *tokenizer, kPrompt, 8, SamplingOptions(),
                             [&](int32_t id, absl::string_view) {
                               called.push_back(id);
                               return true;
                             });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stop_reason, StopReason::kEndOfGeneration);
  EXPECT_EQ(result->generated_tokens, std::vector<int32_t>(greedy_->begin(), greedy_->begin() + 3));
  EXPECT_EQ(called, result->generated_tokens);  // the end-of-generation id too
  EXPECT_EQ(StopReasonName(result->stop_reason), "end_of_generation");
}

TEST_F(TextTest, CallbackStopsGeneration) {
  auto model = Open(*text_);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
  ASSERT_TRUE(session.ok());
  int calls = 0;
  auto result = GenerateText(**session, **model->tokenizer(), kPrompt, 8, SamplingOptions(),
                             [&](int32_t, absl::string_view) { return ++calls < 2; });
  ASSERT_TRUE(result.ok()) << result.status();
  if (result->stop_reason == StopReason::kEndOfGeneration) GTEST_SKIP() << "EOS came first";
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(result->generated_tokens.size(), 2u);
  EXPECT_EQ(result->stop_reason, StopReason::kCallback);
}

TEST_F(TextTest, ACharacterSplitAcrossTokensArrivesWhole) {
  // The first three greedy tokens decode to the three bytes of U+20AC, the
  // fourth to "ok".
  if (!DistinctGreedy(4)) GTEST_SKIP() << "the first greedy tokens repeat";
  const auto& g = *greedy_;
  const std::string path = testing::TextModel(
      *dir_, "euro", "", {{g[0], "<0xE2>"}, {g[1], "<0x82>"}, {g[2], "<0xAC>"}, {g[3], "ok"}});
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  const Tokenizer* tokenizer = *model->tokenizer();
  std::vector<std::string> pieces;
  const auto collect = [&](int32_t, absl::string_view piece) {
    pieces.emplace_back(piece);
    return true;
  };
  {
    auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
    auto result = GenerateText(**session, *tokenizer, kPrompt, 4, SamplingOptions(), collect);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(pieces, (std::vector<std::string>{"", "", "\xe2\x82\xac", "ok"}));
    EXPECT_EQ(result->text, "\xe2\x82\xac" "ok");
  }
  // Ending inside the character (the max count): what is held back is
  // flushed with the last token as U+FFFD, one per byte.
  pieces.clear();
  auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
  auto result = GenerateText(**session, *tokenizer, kPrompt, 2, SamplingOptions(), collect);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "\xef\xbf\xbd\xef\xbf\xbd"}));
  EXPECT_EQ(result->stop_reason, StopReason::kMaxTokens);
}

TEST_F(TextTest, AByteThatStartsNoCharacterBecomesAReplacementCharacter) {
  if (!DistinctGreedy(2)) GTEST_SKIP() << "the first greedy tokens repeat";
  const auto& g = *greedy_;
  const std::string path =
      testing::TextModel(*dir_, "stray", "", {{g[0], "<0x80>"}, {g[1], "<0xFF>"}});
  auto model = Open(path);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, {.max_context = 16, .threads = 1});
  std::vector<std::string> pieces;
  auto result = GenerateText(**session, **model->tokenizer(), kPrompt, 2, SamplingOptions(),
                             [&](int32_t, absl::string_view piece) {
                               pieces.emplace_back(piece);
                               return true;
                             });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(pieces, (std::vector<std::string>{"\xef\xbf\xbd", "\xef\xbf\xbd"}));
}

TEST_F(TextTest, TextPromptIsTokenizedWithTheOptionsGiven) {
  auto model = Open(*text_);
  ASSERT_NE(model, nullptr);
  const Tokenizer* tokenizer = *model->tokenizer();
  auto session = Session::Create(*model, {.max_context = 64, .threads = 1});
  ASSERT_TRUE(session.ok());
  auto result = GenerateText(**session, *tokenizer, "<|im_start|>a",
                             TokenizeOptions{.add_special = true, .parse_special = true}, 1,
                             SamplingOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_GE(result->prompt_tokens.size(), 2u);
  EXPECT_EQ(result->prompt_tokens[0], testing::kBosId);
  EXPECT_EQ(result->prompt_tokens[1], testing::kImStartId);
  (*session)->Reset();
  auto empty = GenerateText(**session, *tokenizer, "", TokenizeOptions{}, 1, SamplingOptions());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zcpack::runtime
