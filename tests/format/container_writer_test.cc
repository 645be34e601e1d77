// ContainerWriter: plan validation and atomic output.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"

namespace zcpack::format {
namespace {

using testing::MakeRandomTensors;
using testing::ScopedTempDir;
using testing::TensorFixture;

std::vector<TensorPlan> PlansOf(const std::vector<TensorFixture>& tensors) {
  std::vector<TensorPlan> plans;
  for (const auto& t : tensors) plans.push_back(t.plan);
  return plans;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

TEST(FormatWriterAtomicity, TemporaryFileLivesBesideTheDestinationUntilFinish) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(41, 3);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), WriterOptions());
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::vector<std::string> during = dir.List();
  ASSERT_EQ(during.size(), 1u);
  EXPECT_NE(during[0], "m.zcp");
  EXPECT_FALSE(Exists(dir.File("m.zcp")));
  for (size_t i = 0; i < tensors.size(); ++i) ASSERT_TRUE((*writer)->WriteTensor(i, tensors[i].bytes).ok());
  ASSERT_TRUE((*writer)->Finish(Manifest()).ok());
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.zcp"});
}

TEST(FormatWriterAtomicity, UnwrittenTensorFailsFinishAndLeavesNothing) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(42, 4);
  {
    auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), WriterOptions());
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (size_t i = 0; i + 1 < tensors.size(); ++i) {
      ASSERT_TRUE((*writer)->WriteTensor(i, tensors[i].bytes).ok());
    }
    const absl::Status finished = (*writer)->Finish(Manifest());
    EXPECT_EQ(finished.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(finished.message().find("'t3'"), absl::string_view::npos) << finished;
    EXPECT_FALSE(Exists(dir.File("m.zcp")));
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(FormatWriterAtomicity, DestroyedBeforeFinishLeavesNothing) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(43, 4);
  {
    auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), WriterOptions());
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (size_t i = 0; i < tensors.size(); ++i) {
      ASSERT_TRUE((*writer)->WriteTensor(i, tensors[i].bytes).ok());
    }
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(FormatWriterAtomicity, FailedWriteLeavesAnExistingDestinationUntouched) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteFileBytes(path, {'o', 'l', 'd'}).ok());
  const auto tensors = MakeRandomTensors(44, 2);
  WriterOptions options;
  options.overwrite = true;
  {
    auto writer = ContainerWriter::Create(path, PlansOf(tensors), options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->WriteTensor(0, tensors[0].bytes).ok());
    EXPECT_FALSE((*writer)->Finish(Manifest()).ok());
  }
  EXPECT_EQ(*testing::ReadFileBytes(path), (std::vector<uint8_t>{'o', 'l', 'd'}));
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.zcp"});
}

TEST(FormatWriterAtomicity, ExistingDestinationIsAlreadyExistsWithoutOverwrite) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteFileBytes(path, {'o', 'l', 'd'}).ok());
  const auto tensors = MakeRandomTensors(45, 2);
  auto writer = ContainerWriter::Create(path, PlansOf(tensors), WriterOptions());
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*testing::ReadFileBytes(path), (std::vector<uint8_t>{'o', 'l', 'd'}));
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.zcp"});
}

TEST(FormatWriterAtomicity, DestinationCreatedDuringTheWriteIsNotReplaced) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  const auto tensors = MakeRandomTensors(46, 2);
  {
    auto writer = ContainerWriter::Create(path, PlansOf(tensors), WriterOptions());
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (size_t i = 0; i < tensors.size(); ++i) {
      ASSERT_TRUE((*writer)->WriteTensor(i, tensors[i].bytes).ok());
    }
    ASSERT_TRUE(testing::WriteFileBytes(path, {'n', 'e', 'w'}).ok());
    EXPECT_EQ((*writer)->Finish(Manifest()).code(), absl::StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(*testing::ReadFileBytes(path), (std::vector<uint8_t>{'n', 'e', 'w'}));
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.zcp"});
}

TEST(FormatWriterAtomicity, OverwriteReplacesTheDestination) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteFileBytes(path, {'o', 'l', 'd'}).ok());
  WriterOptions options;
  options.overwrite = true;
  ASSERT_TRUE(testing::WriteSmallContainer(path, 47, options).ok());
  EXPECT_TRUE(Container::Open(path).ok());
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.zcp"});
}

TEST(FormatWriterPlan, RejectsAlignmentsOutsidePowersOfTwoIn4KiBTo2MiB) {
  ScopedTempDir dir(::testing::TempDir());
  for (uint64_t alignment : {uint64_t{0}, uint64_t{2048}, uint64_t{3 << 12}, uint64_t{4 << 20},
                             uint64_t{1} << 63}) {
    WriterOptions options;
    options.alignment = alignment;
    EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), {}, options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << alignment;
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(FormatWriterPlan, RejectsDuplicateAndEmptyNames) {
  ScopedTempDir dir(::testing::TempDir());
  auto tensors = MakeRandomTensors(48, 3);
  auto plans = PlansOf(tensors);
  plans[2].name = plans[0].name;
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), plans, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  plans[2].name.clear();
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), plans, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(dir.List().empty());
}

TEST(FormatWriterPlan, RejectsShapesInvalidForTheDtype) {
  ScopedTempDir dir(::testing::TempDir());
  TensorPlan plan;
  plan.name = "w";
  plan.dtype = DTYPE_Q4_0;
  plan.shape = {4, 48};
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), {plan}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  plan.dtype = DTYPE_UNSPECIFIED;
  plan.shape = {4, 64};
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), {plan}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  plan.dtype = DTYPE_F32;
  plan.shape = {uint64_t{1} << 40, uint64_t{1} << 40};
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), {plan}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FormatWriterPlan, RejectsLayersOutOfReadingOrder) {
  ScopedTempDir dir(::testing::TempDir());
  auto plans = PlansOf(MakeRandomTensors(49, 4));
  plans[1].layer = 1;
  plans[2].layer = 0;
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), plans, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FormatWriterPlan, RejectsTensorsOutsideTheLayersBetweenLayers) {
  ScopedTempDir dir(::testing::TempDir());
  auto plans = PlansOf(MakeRandomTensors(56, 5));  // layers -1, 0, 0, 0, -1
  plans[2].layer = -1;
  plans[3].layer = 1;
  EXPECT_EQ(ContainerWriter::Create(dir.File("m.zcp"), plans, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FormatWriterPlan, OffsetsFollowTheGivenOrderAtAlignedPlaces) {
  ScopedTempDir dir(::testing::TempDir());
  WriterOptions options;
  options.alignment = 8192;
  const auto tensors = MakeRandomTensors(50, 7, 20000);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  uint64_t expected = options.alignment;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ((*writer)->planned(i).offset(), expected) << i;
    EXPECT_EQ((*writer)->planned(i).nbytes(), tensors[i].bytes.size()) << i;
    expected += (tensors[i].bytes.size() + 8191) / 8192 * 8192;
  }
  EXPECT_EQ((*writer)->data_end(), expected);
}

TEST(FormatWriterTensors, WrongSizeIsRejected) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(51, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), {});
  ASSERT_TRUE(writer.ok());
  auto shorter = tensors[0].bytes;
  shorter.pop_back();
  EXPECT_EQ((*writer)->WriteTensor(0, shorter).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*writer)->WriteTensor(0, tensors[0].bytes).ok());
}

TEST(FormatWriterTensors, SecondWriteOfATensorIsRejected) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(52, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), {});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteTensor(0, tensors[0].bytes).ok());
  EXPECT_EQ((*writer)->WriteTensor(0, tensors[0].bytes).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatWriterTensors, OutOfRangeIndexIsRejected) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(53, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), {});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->WriteTensor(1, tensors[0].bytes).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*writer)->BeginTensor(1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatWriterTensors, FinishTwiceFails) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(54, 1);
  auto writer = ContainerWriter::Create(dir.File("m.zcp"), PlansOf(tensors), {});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteTensor(0, tensors[0].bytes).ok());
  ASSERT_TRUE((*writer)->Finish(Manifest()).ok());
  EXPECT_EQ((*writer)->Finish(Manifest()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FormatWriterTensors, ManifestTensorListIsReplacedByTheWriters) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = MakeRandomTensors(55, 2);
  Manifest manifest = testing::SmallManifest();
  manifest.add_tensors()->set_name("bogus");
  ASSERT_TRUE(testing::WriteContainer(dir.File("m.zcp"), tensors, {}, manifest).ok());
  auto opened = Container::Open(dir.File("m.zcp"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ((*opened)->num_tensors(), 2u);
  EXPECT_FALSE((*opened)->FindTensor("bogus").has_value());
}

}  // namespace
}  // namespace zcpack::format
