// Writer -> reader round trips: every dtype, every alignment, streaming sinks,
// and byte-identical output whatever the thread schedule.
#include <algorithm>
#include <atomic>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "xxhash.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack::format {
namespace {

using testing::MakeRandomTensors;
using testing::ScopedTempDir;
using testing::TensorFixture;

void ExpectSameTensors(const Container& c, const std::vector<TensorFixture>& tensors) {
  ASSERT_EQ(c.num_tensors(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorPlan& plan = tensors[i].plan;
    const TensorEntry& e = c.tensor(i);
    EXPECT_EQ(e.name(), plan.name);
    EXPECT_EQ(e.dtype(), plan.dtype) << plan.name;
    EXPECT_EQ(e.role(), plan.role) << plan.name;
    EXPECT_EQ(e.layer(), plan.layer) << plan.name;
    EXPECT_EQ(e.source_dtype(), plan.source_dtype) << plan.name;
    EXPECT_EQ(std::vector<uint64_t>(e.shape().begin(), e.shape().end()), plan.shape) << plan.name;
    const auto data = c.TensorData(i);
    ASSERT_EQ(data.size(), tensors[i].bytes.size()) << plan.name;
    EXPECT_TRUE(std::equal(data.begin(), data.end(), tensors[i].bytes.begin())) << plan.name;
    EXPECT_EQ(c.FindTensor(plan.name), i);
  }
}

uint64_t FileHash(const std::string& path) {
  const auto bytes = testing::ReadFileBytes(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? XXH3_64bits(bytes->data(), bytes->size()) : 0;
}

struct AlignmentCase {
  uint64_t alignment;
  bool compress;
};
void PrintTo(const AlignmentCase& c, std::ostream* os) {
  *os << c.alignment << (c.compress ? " zstd" : " raw");
}

class FormatRoundTrip : public ::testing::TestWithParam<AlignmentCase> {};

TEST_P(FormatRoundTrip, EveryDtypeReadsBackByteIdenticalAndAligned) {
  const auto [alignment, compress] = GetParam();
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("model.zcp");
  const std::vector<TensorFixture> tensors =
      MakeRandomTensors(/*seed=*/alignment + compress, /*count=*/12, /*max_elements=*/8192);
  WriterOptions options;
  options.alignment = alignment;
  options.compress_manifest = compress;
  ASSERT_TRUE(testing::WriteContainer(path, tensors, options).ok());

  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Container& c = **opened;
  EXPECT_EQ(c.alignment(), alignment);
  EXPECT_EQ(c.header().data_offset, alignment);
  EXPECT_EQ(c.header().required_features, compress ? kFeatureZstdManifest : 0);
  EXPECT_EQ(c.manifest().model().architecture(), "llama");
  EXPECT_EQ(c.manifest().provenance().converter_version(), "zcpack-tests");
  ExpectSameTensors(c, tensors);
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    EXPECT_EQ(c.tensor(i).offset() % alignment, 0u) << c.tensor(i).name();
    const ByteRange extent = c.TensorExtent(i);
    EXPECT_EQ(extent.offset, c.tensor(i).offset());
    EXPECT_EQ(extent.size % alignment, 0u);
    EXPECT_GE(extent.size, c.tensor(i).nbytes());
    EXPECT_LT(extent.size - c.tensor(i).nbytes(), alignment);
  }
  EXPECT_TRUE(c.VerifyChecksums().ok());
}

std::vector<AlignmentCase> AllAlignments() {
  std::vector<AlignmentCase> cases;
  for (uint32_t log2 = kMinAlignmentLog2; log2 <= kMaxAlignmentLog2; ++log2) {
    for (bool compress : {false, true}) cases.push_back({uint64_t{1} << log2, compress});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Alignments, FormatRoundTrip, ::testing::ValuesIn(AllAlignments()),
                         [](const ::testing::TestParamInfo<AlignmentCase>& param_info) {
                           return absl::StrCat(param_info.param.alignment,
                                               param_info.param.compress ? "_zstd" : "_raw");
                         });

TEST(FormatRoundTripDefaults, DefaultAlignmentIs16KiB) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("model.zcp");
  auto tensors = testing::WriteSmallContainer(path, 5);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->alignment(), 16384u);
  for (size_t i = 0; i < (*opened)->num_tensors(); ++i) {
    EXPECT_EQ((*opened)->tensor(i).offset() % 16384, 0u);
  }
  ExpectSameTensors(**opened, *tensors);
}

// A q8_0 tensor keeps its dtype, its size (34 bytes per 32 weights) and the
// values its blocks encode.
TEST(FormatRoundTripDefaults, Q8_0TensorReadsBackWithItsValues) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("q8.zcp");
  TensorFixture t;
  t.plan.name = "output.weight";
  t.plan.role = ROLE_OUTPUT;
  t.plan.dtype = DTYPE_Q8_0;
  t.plan.source_dtype = DTYPE_F16;
  t.plan.shape = {2, 64};
  // Four blocks, scales 0.5, -2, 0.25 and 1 (binary16 0x3800, 0xc000, 0x3400,
  // 0x3c00); codes j - 16 + 8b (block b), so -128 and 127 both occur.
  const uint16_t scales[4] = {0x3800, 0xc000, 0x3400, 0x3c00};
  const float scale_values[4] = {0.5f, -2.0f, 0.25f, 1.0f};
  for (int b = 0; b < 4; ++b) {
    t.bytes.push_back(static_cast<uint8_t>(scales[b]));
    t.bytes.push_back(static_cast<uint8_t>(scales[b] >> 8));
    for (int j = 0; j < 32; ++j) {
      const int code = b == 0 && j == 0 ? -128 : b == 3 && j == 31 ? 127 : j - 16 + 8 * b;
      t.bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(code)));
    }
  }
  ASSERT_EQ(t.bytes.size(), 4 * kQ8_0BlockBytes);
  ASSERT_TRUE(testing::WriteContainer(path, {t}, WriterOptions()).ok());

  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ExpectSameTensors(**opened, {t});
  EXPECT_EQ((*opened)->tensor(0).nbytes(), 4 * kQ8_0BlockBytes);
  EXPECT_TRUE((*opened)->VerifyChecksums().ok());
  const auto data = (*opened)->TensorData(0);
  std::vector<float> values(128);
  ASSERT_TRUE(ConvertToFloat(DTYPE_Q8_0, data.data(), values.size(), values.data()).ok());
  for (int i = 0; i < 128; ++i) {
    const int b = i / 32;
    const int code = static_cast<int8_t>(t.bytes[34 * b + 2 + i % 32]);
    EXPECT_EQ(values[i], static_cast<float>(code) * scale_values[b]) << i;
  }
  EXPECT_EQ(values[0], -64.0f);
  EXPECT_EQ(values[127], 127.0f);
}

TEST(FormatRoundTripDefaults, ZeroTensorsRoundTrip) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("empty.zcp");
  ASSERT_TRUE(testing::WriteContainer(path, {}, WriterOptions()).ok());
  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->num_tensors(), 0u);
  EXPECT_EQ((*opened)->num_layers(), 0);
  EXPECT_EQ((*opened)->data_range().size, 0u);
}

// Tensors streamed in pieces of random sizes give the same file as tensors
// written whole.
TEST(FormatTensorSink, StreamingInPiecesMatchesWholeWrites) {
  ScopedTempDir dir(::testing::TempDir());
  const std::vector<TensorFixture> tensors = MakeRandomTensors(21, 10, 16384);
  WriterOptions options;
  options.alignment = 4096;
  ASSERT_TRUE(testing::WriteContainer(dir.File("whole.zcp"), tensors, options).ok());

  std::vector<TensorPlan> plans;
  for (const auto& t : tensors) plans.push_back(t.plan);
  auto writer = ContainerWriter::Create(dir.File("pieces.zcp"), plans, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::mt19937_64 rng(22);
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto sink = (*writer)->BeginTensor(i);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::span<const uint8_t> rest(tensors[i].bytes);
    while (!rest.empty()) {
      const size_t n = std::min<size_t>(rest.size(), rng() % 700);  // empty pieces too
      ASSERT_TRUE(sink->Append(rest.first(n)).ok());
      rest = rest.subspan(n);
    }
    ASSERT_TRUE(sink->Commit().ok());
  }
  ASSERT_TRUE((*writer)->Finish(testing::SmallManifest()).ok());
  EXPECT_EQ(FileHash(dir.File("pieces.zcp")), FileHash(dir.File("whole.zcp")));

  auto opened = Container::Open(dir.File("pieces.zcp"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  ExpectSameTensors(**opened, tensors);
  EXPECT_TRUE((*opened)->VerifyChecksums().ok());
}

TEST(FormatTensorSink, RejectsBytesBeyondTheTensor) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(23, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), {tensors[0].plan}, WriterOptions());
  ASSERT_TRUE(writer.ok());
  auto sink = (*writer)->BeginTensor(0);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(sink->Append(tensors[0].bytes).ok());
  const uint8_t extra = 0;
  EXPECT_EQ(sink->Append({&extra, 1}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatTensorSink, CommitBeforeTheLastByteFails) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(24, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), {tensors[0].plan}, WriterOptions());
  ASSERT_TRUE(writer.ok());
  auto sink = (*writer)->BeginTensor(0);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(sink->Append(std::span(tensors[0].bytes).first(tensors[0].bytes.size() - 1)).ok());
  EXPECT_EQ(sink->Commit().code(), absl::StatusCode::kInvalidArgument);
}

// A sink dropped without Commit() releases its tensor: Finish() refuses until
// the tensor is written again.
TEST(FormatTensorSink, AbandonedSinkLeavesTheTensorUnwritten) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(25, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), {tensors[0].plan}, WriterOptions());
  ASSERT_TRUE(writer.ok());
  {
    auto sink = (*writer)->BeginTensor(0);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE(sink->Append(std::span(tensors[0].bytes).first(1)).ok());
  }
  EXPECT_EQ((*writer)->Finish(Manifest()).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*writer)->WriteTensor(0, tensors[0].bytes).ok());
  EXPECT_TRUE((*writer)->Finish(Manifest()).ok());
}

TEST(FormatTensorSink, SecondBeginOfATensorFails) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(26, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), {tensors[0].plan}, WriterOptions());
  ASSERT_TRUE(writer.ok());
  auto first = (*writer)->BeginTensor(0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*writer)->BeginTensor(0).status().code(), absl::StatusCode::kInvalidArgument);
}

// Writes `tensors` with `threads` threads that take indices from a shuffled
// list, half of them whole and half streamed in pieces.
absl::Status WriteConcurrently(const std::string& path, const std::vector<TensorFixture>& tensors,
                               int threads, uint64_t shuffle_seed) {
  std::vector<TensorPlan> plans;
  for (const auto& t : tensors) plans.push_back(t.plan);
  WriterOptions options;
  options.alignment = 4096;
  auto writer = ContainerWriter::Create(path, plans, options);
  if (!writer.ok()) return writer.status();
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(shuffle_seed));
  std::atomic<size_t> next{0};
  std::vector<absl::Status> results(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t k = next.fetch_add(1); k < order.size(); k = next.fetch_add(1)) {
        const size_t i = order[k];
        absl::Status s;
        if (i % 2 == 0) {
          s = (*writer)->WriteTensor(i, tensors[i].bytes);
        } else {
          auto sink = (*writer)->BeginTensor(i);
          s = sink.status();
          const std::span<const uint8_t> all(tensors[i].bytes);
          for (size_t at = 0; s.ok() && at < all.size(); at += 333) {
            s = sink->Append(all.subspan(at, std::min<size_t>(333, all.size() - at)));
          }
          if (s.ok()) s = sink->Commit();
        }
        if (!s.ok()) results[t] = s;
      }
    });
  }
  for (auto& th : pool) th.join();
  for (const auto& s : results) {
    if (!s.ok()) return s;
  }
  return (*writer)->Finish(testing::SmallManifest());
}

TEST(FormatDeterminism, ThreadScheduleDoesNotChangeTheBytes) {
  ScopedTempDir dir(::testing::TempDir());
  const std::vector<TensorFixture> tensors = MakeRandomTensors(31, 40, 16384);
  ASSERT_TRUE(testing::WriteContainer(dir.File("serial.zcp"), tensors,
                                      [] {
                                        WriterOptions o;
                                        o.alignment = 4096;
                                        return o;
                                      }())
                  .ok());
  const uint64_t expected = FileHash(dir.File("serial.zcp"));
  for (int run = 0; run < 4; ++run) {
    const std::string path = dir.File(absl::StrCat("threaded", run, ".zcp"));
    ASSERT_TRUE(WriteConcurrently(path, tensors, 2 + 2 * run, 100 + run).ok());
    EXPECT_EQ(FileHash(path), expected) << "run " << run;
  }
}

}  // namespace
}  // namespace zcpack::format
