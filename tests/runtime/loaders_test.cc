// The copying loaders read the file the container opened and checked, not
// whatever the path names by the time they run.
#include "runtime/src/loaders.h"

#include <cstdio>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"

namespace zcpack::runtime::internal {
namespace {

void ExpectSameBytes(const format::Container& c, const std::vector<TensorBuffer>& buffers,
                     const std::string& loader) {
  ASSERT_EQ(buffers.size(), c.num_tensors()) << loader;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const std::span<const uint8_t> mapped = c.TensorData(i);
    ASSERT_EQ(buffers[i].data.size(), mapped.size()) << loader << " tensor " << i;
    EXPECT_TRUE(std::equal(mapped.begin(), mapped.end(), buffers[i].data.begin()))
        << loader << " read other bytes for tensor " << c.tensor(i).name();
  }
}

TEST(CopyingLoaders, ReadTheOpenedFileAfterAnotherIsRenamedOverItsPath) {
  testing::ScopedTempDir dir;
  const std::string path = dir.File("model.zcpack");
  ASSERT_TRUE(testing::WriteSmallContainer(path, /*seed=*/3).ok());
  // The same container with every data byte inverted: same size and layout,
  // so a loader that reopens the path reads it at the same offsets.
  absl::StatusOr<std::vector<uint8_t>> bytes = testing::ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  auto container = format::Container::Open(path);
  ASSERT_TRUE(container.ok()) << container.status();
  const format::ByteRange data = (*container)->data_range();
  for (uint64_t i = data.offset; i < data.offset + data.size; ++i) (*bytes)[i] ^= 0xff;
  const std::string other = dir.File("other.zcpack");
  ASSERT_TRUE(testing::WriteFileBytes(other, *bytes).ok());
  ASSERT_EQ(std::rename(other.c_str(), path.c_str()), 0);

  auto classic = LoadClassic(**container);
  ASSERT_TRUE(classic.ok()) << classic.status();
  ExpectSameBytes(**container, *classic, "classic");
  auto pread = LoadPread(**container, /*direct=*/false);
  ASSERT_TRUE(pread.ok()) << pread.status();
  ExpectSameBytes(**container, *pread, "pread");
  auto direct = LoadPread(**container, /*direct=*/true);
  if (!direct.ok() && direct.status().code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << direct.status();  // the file system refuses O_DIRECT
  }
  ASSERT_TRUE(direct.ok()) << direct.status();
  ExpectSameBytes(**container, *direct, "direct");
}

TEST(CopyingLoaders, AnInMemoryContainerIsRefused) {
  testing::ScopedTempDir dir;
  const std::string path = dir.File("model.zcpack");
  ASSERT_TRUE(testing::WriteSmallContainer(path, /*seed=*/4).ok());
  absl::StatusOr<std::vector<uint8_t>> bytes = testing::ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  auto container = format::Container::OpenBuffer(*bytes, "buffer");
  ASSERT_TRUE(container.ok()) << container.status();
  EXPECT_EQ(LoadClassic(**container).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LoadPread(**container, false).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace zcpack::runtime::internal
