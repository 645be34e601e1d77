// Container reader: every way a file can be damaged, each answered with its
// documented status code; what Open() touches; checksums; layer ranges.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::testing {
// Names the case in test listings instead of dumping its bytes.
void PrintTo(const BrokenContainerCase& c, std::ostream* os) { *os << c.name; }
}  // namespace zcpack::testing

namespace zcpack::format {
namespace {

using absl::StatusCode;
using testing::BrokenContainerCase;
using testing::ScopedTempDir;
using testing::TensorFixture;

// A small container (4 KiB alignment, two tensors of every dtype) as bytes.
std::vector<uint8_t> SmallContainerBytes(const ScopedTempDir& dir, bool compress) {
  WriterOptions options;
  options.alignment = 4096;
  options.compress_manifest = compress;
  const std::string path = dir.File(compress ? "small_zstd.zcp" : "small_raw.zcp");
  EXPECT_TRUE(testing::WriteSmallContainer(path, 61, options).ok());
  auto bytes = testing::ReadFileBytes(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *std::move(bytes) : std::vector<uint8_t>();
}

StatusCode OpenBufferCode(std::span<const uint8_t> bytes, const ReaderLimits& limits = {}) {
  ReaderOptions options;
  options.limits = limits;
  return Container::OpenBuffer(bytes, "buffer.zcp", options).status().code();
}

// Positioned-read view of where the manifest sits, from a valid container.
struct Regions {
  uint64_t manifest_offset;
  uint64_t file_size;
};
Regions RegionsOf(const std::vector<uint8_t>& bytes) {
  auto c = Container::OpenBuffer(bytes, "valid.zcp");
  EXPECT_TRUE(c.ok()) << c.status();
  return {(*c)->header().manifest_offset, (*c)->file_size()};
}

class FormatReaderTruncation : public ::testing::TestWithParam<bool> {};

TEST_P(FormatReaderTruncation, EveryPrefixIsDataLoss) {
  ScopedTempDir dir(::testing::TempDir());
  const std::vector<uint8_t> bytes = SmallContainerBytes(dir, GetParam());
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(OpenBufferCode(bytes), StatusCode::kOk);
  for (size_t length = 0; length < bytes.size(); ++length) {
    // A heap copy of exactly `length` bytes, so that AddressSanitizer builds
    // catch any read past the end.
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(length));
    ASSERT_EQ(OpenBufferCode(prefix), StatusCode::kDataLoss) << "length " << length;
  }
}

TEST_P(FormatReaderTruncation, TruncatedFilesAreDataLoss) {
  ScopedTempDir dir(::testing::TempDir());
  const std::vector<uint8_t> bytes = SmallContainerBytes(dir, GetParam());
  const std::string path = dir.File("cut.zcp");
  for (size_t length : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{127}, size_t{128},
                        size_t{4096}, bytes.size() / 2, bytes.size() - 1}) {
    ASSERT_TRUE(testing::WriteFileBytes(
                    path, std::vector<uint8_t>(bytes.begin(),
                                               bytes.begin() + static_cast<ptrdiff_t>(length)))
                    .ok());
    const auto opened = Container::Open(path);
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss) << "length " << length;
    EXPECT_NE(opened.status().message().find(path), absl::string_view::npos) << opened.status();
  }
}

INSTANTIATE_TEST_SUITE_P(Manifest, FormatReaderTruncation, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return std::string(param_info.param ? "zstd" : "raw");
                         });

// Only bytes that cannot begin a container are "not a container".
TEST(FormatReaderNotAContainer, BytesThatAreNotAMagicPrefixAreInvalidArgument) {
  for (size_t length = 1; length <= 200; ++length) {
    std::vector<uint8_t> bytes(length, 'x');
    EXPECT_EQ(OpenBufferCode(bytes), StatusCode::kInvalidArgument) << length;
    // The magic with its last present byte wrong.
    bytes.assign(length, 0);
    std::copy(std::begin(kMagic), std::begin(kMagic) + std::min(length, kMagicSize), bytes.begin());
    bytes[std::min(length, kMagicSize) - 1] ^= 0x20;
    EXPECT_EQ(OpenBufferCode(bytes), StatusCode::kInvalidArgument) << length;
  }
}

TEST(FormatReaderNotAContainer, TextFileIsInvalidArgument) {
  const std::string text = "{\"this\": \"is a JSON file, not a container\", \"padding\": " +
                           std::string(200, '0') + "}\n";
  EXPECT_EQ(OpenBufferCode({reinterpret_cast<const uint8_t*>(text.data()), text.size()}),
            StatusCode::kInvalidArgument);
}

TEST(FormatReaderNotAContainer, MissingFileIsNotFoundNamingThePath) {
  ScopedTempDir dir(::testing::TempDir());
  const auto opened = Container::Open(dir.File("absent.zcp"));
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound);
  EXPECT_NE(opened.status().message().find("absent.zcp"), absl::string_view::npos);
}

TEST(FormatReaderNotAContainer, FolderIsFailedPrecondition) {
  ScopedTempDir dir(::testing::TempDir());
  EXPECT_EQ(Container::Open(dir.path()).status().code(), StatusCode::kFailedPrecondition);
}

class FormatBrokenContainers : public ::testing::TestWithParam<BrokenContainerCase> {};

TEST_P(FormatBrokenContainers, OpenBufferReturnsTheExpectedCode) {
  const BrokenContainerCase& c = GetParam();
  ReaderOptions options;
  options.limits = c.limits;
  const auto opened = Container::OpenBuffer(c.bytes, "broken.zcp", options);
  EXPECT_EQ(opened.status().code(), c.expected) << opened.status();
  EXPECT_NE(opened.status().message().find(c.message_fragment), absl::string_view::npos)
      << "check '" << c.check << "' did not fire: " << opened.status();
  EXPECT_NE(opened.status().message().find("broken.zcp"), absl::string_view::npos)
      << opened.status();
}

TEST_P(FormatBrokenContainers, OpenOfTheFileAgreesWithOpenBuffer) {
  const BrokenContainerCase& c = GetParam();
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File(c.name + ".zcp");
  ASSERT_TRUE(testing::WriteFileBytes(path, c.bytes).ok());
  ReaderOptions options;
  options.limits = c.limits;
  const auto opened = Container::Open(path, options);
  EXPECT_EQ(opened.status().code(), c.expected) << opened.status();
  EXPECT_NE(opened.status().message().find(c.message_fragment), absl::string_view::npos)
      << opened.status();
}

INSTANTIATE_TEST_SUITE_P(Table, FormatBrokenContainers,
                         ::testing::ValuesIn(testing::MakeBrokenContainers()),
                         [](const ::testing::TestParamInfo<BrokenContainerCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(FormatBrokenTable, CoversEveryRequiredCheckWithUniqueNames) {
  const auto cases = testing::MakeBrokenContainers();
  EXPECT_GE(cases.size(), 16u);
  std::set<std::string> names, checks;
  for (const auto& c : cases) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
    checks.insert(c.check);
  }
  for (const char* required :
       {"magic", "version", "required_features", "reserved", "header_checksum", "manifest_parse",
        "tensor_bounds", "alignment", "overlap", "order", "shape_overflow", "nbytes",
        "duplicate_name", "tensor_limit", "manifest_limit", "zstd_size"}) {
    EXPECT_TRUE(checks.count(required)) << "no case for " << required;
  }
}

// The hand-made base of the table is itself valid, so each case differs from
// a valid container in its one broken rule only.
TEST(FormatBrokenTable, HandMadeBaseIsValid) {
  for (bool compress : {false, true}) {
    testing::HandMadeContainer parts = testing::ValidHandMadeContainer();
    parts.compress_manifest = compress;
    const std::vector<uint8_t> bytes = testing::Assemble(parts);
    ReaderOptions options;
    options.verify_checksums = true;
    const auto opened = Container::OpenBuffer(bytes, "valid.zcp", options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ((*opened)->num_tensors(), 4u);
    EXPECT_EQ((*opened)->num_layers(), 2);
  }
}

// The code a one-bit flip in header byte `i` must give: the magic is checked
// first, then the major version, then the checksum over everything else.
StatusCode ExpectedForHeaderByte(size_t i) {
  if (i < kOffMagic + kMagicSize) return StatusCode::kInvalidArgument;
  if (i >= kOffMajorVersion && i < kOffMajorVersion + 2) return StatusCode::kUnimplemented;
  return StatusCode::kDataLoss;
}

class FormatReaderCorruption : public ::testing::TestWithParam<bool> {};

TEST_P(FormatReaderCorruption, EveryHeaderBitFlipIsRejected) {
  ScopedTempDir dir(::testing::TempDir());
  std::vector<uint8_t> bytes = SmallContainerBytes(dir, GetParam());
  for (size_t i = 0; i < kHeaderSize; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
      ASSERT_EQ(OpenBufferCode(bytes), ExpectedForHeaderByte(i)) << "byte " << i << " bit " << bit;
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
    }
  }
}

TEST_P(FormatReaderCorruption, EveryManifestByteFlipIsDataLoss) {
  ScopedTempDir dir(::testing::TempDir());
  std::vector<uint8_t> bytes = SmallContainerBytes(dir, GetParam());
  const Regions r = RegionsOf(bytes);
  std::mt19937_64 rng(62);
  for (uint64_t i = r.manifest_offset; i < r.file_size; ++i) {
    const auto mask = static_cast<uint8_t>(1u << (rng() % 8));
    bytes[i] ^= mask;
    ASSERT_EQ(OpenBufferCode(bytes), StatusCode::kDataLoss) << "byte " << i;
    bytes[i] ^= mask;
  }
}

TEST_P(FormatReaderCorruption, RandomFlipsInHeaderAndManifestAreRejected) {
  ScopedTempDir dir(::testing::TempDir());
  const std::vector<uint8_t> original = SmallContainerBytes(dir, GetParam());
  const Regions r = RegionsOf(original);
  const uint64_t manifest_size = r.file_size - r.manifest_offset;
  std::mt19937_64 rng(63);
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<uint8_t> bytes = original;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const uint64_t k = rng() % (kHeaderSize + manifest_size);
      const uint64_t at = k < kHeaderSize ? k : r.manifest_offset + (k - kHeaderSize);
      bytes[at] ^= static_cast<uint8_t>(1 + rng() % 255);
    }
    const StatusCode code = OpenBufferCode(bytes);
    ASSERT_TRUE(code == StatusCode::kInvalidArgument || code == StatusCode::kUnimplemented ||
                code == StatusCode::kDataLoss)
        << "trial " << trial << ": " << absl::StatusCodeToString(code);
  }
}

INSTANTIATE_TEST_SUITE_P(Manifest, FormatReaderCorruption, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return std::string(param_info.param ? "zstd" : "raw");
                         });

// Resident pages of [offset, offset + length) of a mapping at `base`
// (page-aligned), by mincore(2).
size_t ResidentPages(const uint8_t* base, uint64_t offset, uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = offset / page * page;
  const uint64_t span = offset + length - first;
  std::vector<unsigned char> vec((span + page - 1) / page);
  if (::mincore(const_cast<uint8_t*>(base) + first, span, vec.data()) != 0) return SIZE_MAX;
  return static_cast<size_t>(std::count_if(vec.begin(), vec.end(), [](unsigned char v) { return v & 1; }));
}

// Drops the file's pages from the page cache and reports how many remain.
size_t EvictFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  (void)::fdatasync(fd);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  const size_t resident = ResidentPages(static_cast<const uint8_t*>(map), 0, static_cast<uint64_t>(size));
  ::munmap(map, static_cast<size_t>(size));
  return resident;
}

TEST(FormatReaderPages, OpenTouchesNoTensorPage) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("pages.zcp");
  std::vector<TensorFixture> tensors(8);
  std::mt19937_64 rng(64);
  for (size_t i = 0; i < tensors.size(); ++i) {
    tensors[i].plan.name = absl::StrCat("w", i);
    tensors[i].plan.dtype = DTYPE_F32;
    tensors[i].plan.shape = {256, 1024};  // 1 MiB
    tensors[i].plan.layer = static_cast<int32_t>(i / 2);
    tensors[i].bytes = testing::RandomBytes(1 << 20, rng);
  }
  ASSERT_TRUE(testing::WriteContainer(path, tensors, WriterOptions()).ok());
  const size_t left = EvictFile(path);
  if (left != 0) GTEST_SKIP() << "cannot evict the file from the page cache here (" << left
                              << " pages stay resident)";

  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Container& c = **opened;
  const ByteRange data = c.data_range();
  EXPECT_EQ(ResidentPages(c.file_bytes().data(), data.offset, data.size), 0u);

  // mincore sees pages once they are touched, so the zero above means something.
  volatile uint8_t sink = c.TensorData(3)[0];
  (void)sink;
  EXPECT_GT(ResidentPages(c.file_bytes().data(), data.offset, data.size), 0u);
}

// Flips one byte in the middle of tensor `index`'s data in the file.
void CorruptTensorInFile(const std::string& path, const TensorEntry& t) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  const off_t at = static_cast<off_t>(t.offset() + t.nbytes() / 2);
  ASSERT_EQ(::pread(fd, &b, 1, at), 1);
  b ^= 0x10;
  ASSERT_EQ(::pwrite(fd, &b, 1, at), 1);
  ::close(fd);
}

TEST(FormatReaderChecksums, IntactContainerVerifies) {
  ScopedTempDir dir(::testing::TempDir());
  ASSERT_TRUE(testing::WriteSmallContainer(dir.File("m.zcp"), 65).ok());
  ReaderOptions options;
  options.verify_checksums = true;
  auto opened = Container::Open(dir.File("m.zcp"), options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE((*opened)->VerifyChecksums(1).ok());
  const std::vector<uint64_t> sums = (*opened)->ComputeChecksums(3);
  for (size_t i = 0; i < sums.size(); ++i) EXPECT_EQ(sums[i], (*opened)->tensor(i).xxh3());
}

TEST(FormatReaderChecksums, FlippedDataByteIsFoundAndNamed) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteSmallContainer(path, 66).ok());
  {
    auto opened = Container::Open(path);
    ASSERT_TRUE(opened.ok());
    CorruptTensorInFile(path, (*opened)->tensor(3));
  }
  auto opened = Container::Open(path);  // structure is intact: opens
  ASSERT_TRUE(opened.ok()) << opened.status();
  const absl::Status verified = (*opened)->VerifyChecksums();
  EXPECT_EQ(verified.code(), StatusCode::kDataLoss);
  EXPECT_NE(verified.message().find("'t3'"), absl::string_view::npos) << verified;
  EXPECT_NE(verified.message().find(path), absl::string_view::npos) << verified;
}

// A file truncated after it was mapped used to end the process with SIGBUS
// while its checksums were hashed (inspect --checksums, exit 135).
TEST(FormatReaderChecksums, FileTruncatedWhileMappedIsAnErrorNotASignal) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteSmallContainer(path, 68).ok());
  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);  // the header page stays
  const absl::Status verified = (*opened)->VerifyChecksums(2);
  EXPECT_EQ(verified.code(), StatusCode::kAborted);
  EXPECT_EQ(verified.message(), path + ": truncated or unreadable while mapped");
}

TEST(FormatReaderChecksums, VerifyOnOpenRejectsAFlippedDataByte) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteSmallContainer(path, 67).ok());
  {
    auto opened = Container::Open(path);
    ASSERT_TRUE(opened.ok());
    CorruptTensorInFile(path, (*opened)->tensor(7));
  }
  ReaderOptions options;
  options.verify_checksums = true;
  const auto opened = Container::Open(path, options);
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(opened.status().message().find("'t7'"), absl::string_view::npos) << opened.status();
}

TEST(FormatReaderChecksums, FirstCorruptedTensorInFileOrderIsNamed) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("m.zcp");
  ASSERT_TRUE(testing::WriteSmallContainer(path, 68).ok());
  {
    auto opened = Container::Open(path);
    ASSERT_TRUE(opened.ok());
    CorruptTensorInFile(path, (*opened)->tensor(8));
    CorruptTensorInFile(path, (*opened)->tensor(2));
  }
  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok());
  for (int threads : {1, 4}) {
    const absl::Status verified = (*opened)->VerifyChecksums(threads);
    EXPECT_NE(verified.message().find("'t2'"), absl::string_view::npos) << verified;
  }
}

TEST(FormatReaderLayers, EachLayerIsOneAlignedRangeHoldingExactlyItsTensors) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = testing::MakeRandomTensors(69, 14, 20000);  // layers 0..3
  ASSERT_TRUE(testing::WriteContainer(dir.File("m.zcp"), tensors, WriterOptions()).ok());
  auto opened = Container::Open(dir.File("m.zcp"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Container& c = **opened;
  ASSERT_EQ(c.num_layers(), 4);
  uint64_t previous_end = 0;
  for (int layer = 0; layer < c.num_layers(); ++layer) {
    const auto range = c.LayerRange(layer);
    ASSERT_TRUE(range.has_value()) << layer;
    EXPECT_EQ(range->offset % c.alignment(), 0u);
    EXPECT_EQ(range->size % c.alignment(), 0u);
    EXPECT_GE(range->offset, previous_end) << "layers overlap or are out of order";
    previous_end = range->offset + range->size;
    uint64_t covered = 0;
    for (size_t i = 0; i < c.num_tensors(); ++i) {
      const ByteRange e = c.TensorExtent(i);
      const bool inside = e.offset >= range->offset && e.offset + e.size <= previous_end;
      EXPECT_EQ(inside, c.tensor(i).layer() == layer) << c.tensor(i).name() << " layer " << layer;
      if (inside) covered += e.size;
    }
    EXPECT_EQ(covered, range->size) << "layer " << layer << " has gaps";
  }
}

TEST(FormatReaderLayers, LayersWithoutTensorsHaveNoRange) {
  ScopedTempDir dir(::testing::TempDir());
  auto tensors = testing::MakeRandomTensors(70, 4);
  tensors[1].plan.layer = 0;
  tensors[2].plan.layer = 2;  // no layer 1
  ASSERT_TRUE(testing::WriteContainer(dir.File("m.zcp"), tensors, WriterOptions()).ok());
  auto opened = Container::Open(dir.File("m.zcp"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->num_layers(), 3);
  EXPECT_TRUE((*opened)->LayerRange(0).has_value());
  EXPECT_FALSE((*opened)->LayerRange(1).has_value());
  EXPECT_TRUE((*opened)->LayerRange(2).has_value());
  EXPECT_FALSE((*opened)->LayerRange(3).has_value());
  EXPECT_FALSE((*opened)->LayerRange(-1).has_value());
}

TEST(FormatReaderLookup, FindTensorByName) {
  ScopedTempDir dir(::testing::TempDir());
  const auto tensors = testing::WriteSmallContainer(dir.File("m.zcp"), 71);
  ASSERT_TRUE(tensors.ok());
  auto opened = Container::Open(dir.File("m.zcp"));
  ASSERT_TRUE(opened.ok());
  for (size_t i = 0; i < tensors->size(); ++i) {
    EXPECT_EQ((*opened)->FindTensor((*tensors)[i].plan.name), i);
  }
  EXPECT_FALSE((*opened)->FindTensor("t").has_value());
  EXPECT_FALSE((*opened)->FindTensor("").has_value());
}

TEST(FormatReaderLookup, OpenFromFileExposesADescriptorAndBufferDoesNot) {
  ScopedTempDir dir(::testing::TempDir());
  ASSERT_TRUE(testing::WriteSmallContainer(dir.File("m.zcp"), 72).ok());
  auto from_file = Container::Open(dir.File("m.zcp"));
  ASSERT_TRUE(from_file.ok());
  EXPECT_GE((*from_file)->file_descriptor(), 0);
  const auto bytes = testing::ReadFileBytes(dir.File("m.zcp"));
  auto from_buffer = Container::OpenBuffer(*bytes, "m");
  ASSERT_TRUE(from_buffer.ok());
  EXPECT_EQ((*from_buffer)->file_descriptor(), -1);
  EXPECT_EQ((*from_buffer)->file_bytes().data(), bytes->data());
}

}  // namespace
}  // namespace zcpack::format
