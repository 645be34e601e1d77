// Model::Open(): zero-copy, no tensor read at open, memory-policy hints that
// degrade gracefully, and the session's input checks.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/synth.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"

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

}  // namespace
}  // namespace zcpack::runtime
