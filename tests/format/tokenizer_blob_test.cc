// Tokenizer blobs: stored out of line by the writer, untouched by Open(),
// decoded and checked by Container::TokenizerData() on demand.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"
#include "zstd.h"

namespace zcpack::format {
namespace {

using ::testing::HasSubstr;
using testing::ScopedTempDir;

std::string Compress(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TokenizerBlob Blob(const std::string& kind, const std::string& raw) {
  TokenizerBlob blob;
  blob.set_kind(kind);
  blob.set_file_name(kind);
  blob.set_raw_size(raw.size());
  blob.set_zstd_data(Compress(raw));
  return blob;
}

std::string VocabularyText(int n) {
  std::string text = "{\"tokens\":[";
  for (int i = 0; i < n; ++i) absl::StrAppend(&text, i ? "," : "", "\"tok", i * 7919 % 100003, "\"");
  return text + "]}";
}

class TokenizerBlobTest : public ::testing::Test {
 protected:
  void Write(const std::vector<TokenizerBlob>& blobs) {
    Manifest manifest = testing::SmallManifest();
    for (const TokenizerBlob& b : blobs) *manifest.add_tokenizers() = b;
    WriterOptions options;
    options.alignment = 4096;
    options.overwrite = true;
    ASSERT_TRUE(testing::WriteContainer(path_, testing::MakeRandomTensors(3, 4, 4096), options,
                                        manifest)
                    .ok());
  }
  void FlipByteAt(uint64_t offset) {
    const int fd = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
    ::close(fd);
  }
  ScopedTempDir dir_;
  std::string path_ = dir_.File("t.zcpack");
};

TEST_F(TokenizerBlobTest, StoredOutsideTheManifestAndDecodedOnDemand) {
  const std::string json = VocabularyText(20000), gguf = VocabularyText(300);
  Write({Blob("tokenizer.json", json), Blob("gguf-metadata", gguf)});
  auto c = Container::Open(path_);
  ASSERT_TRUE(c.ok()) << c.status();
  const Container& container = **c;
  ASSERT_EQ(container.manifest().tokenizers_size(), 2);
  const ByteRange data = container.data_range();
  uint64_t previous_end = data.offset + data.size;
  for (int i = 0; i < 2; ++i) {
    const TokenizerBlob& b = container.manifest().tokenizers(i);
    EXPECT_TRUE(b.zstd_data().empty());
    EXPECT_GT(b.stored_size(), 0u);
    EXPECT_EQ(b.offset() % container.alignment(), 0u);
    EXPECT_GE(b.offset(), previous_end);
    previous_end = b.offset() + b.stored_size();
  }
  EXPECT_LE(previous_end, container.header().manifest_offset);
  // The manifest holds no vocabulary: far smaller than the compressed blob.
  EXPECT_LT(container.header().manifest_raw_size, container.manifest().tokenizers(0).stored_size());
  auto first = container.TokenizerData(0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, json);
  auto second = container.TokenizerData(1);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, gguf);
}

TEST_F(TokenizerBlobTest, SameInputGivesTheSameBytes) {
  Write({Blob("tokenizer.json", VocabularyText(500))});
  auto first = testing::ReadFileBytes(path_);
  ASSERT_TRUE(first.ok());
  Write({Blob("tokenizer.json", VocabularyText(500))});
  auto second = testing::ReadFileBytes(path_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
}

TEST_F(TokenizerBlobTest, CorruptBlobOpensButFailsWhenDecoded) {
  Write({Blob("tokenizer.json", VocabularyText(2000))});
  uint64_t offset = 0;
  {
    auto c = Container::Open(path_);
    ASSERT_TRUE(c.ok()) << c.status();
    offset = (*c)->manifest().tokenizers(0).offset();
  }
  FlipByteAt(offset + 5);
  auto c = Container::Open(path_);
  ASSERT_TRUE(c.ok()) << c.status();  // Open() never reads the blob
  auto data = (*c)->TokenizerData(0);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(data.status().message(), HasSubstr("tokenizer blob 0 (tokenizer.json)"));
  EXPECT_THAT(data.status().message(), HasSubstr("checksum mismatch"));
  EXPECT_THAT(data.status().message(), HasSubstr(path_));
}

TEST_F(TokenizerBlobTest, FrameThatIsNotZstdOrOfTheWrongSizeIsDataLoss) {
  TokenizerBlob not_zstd = Blob("tokenizer.model", "abc");
  not_zstd.set_zstd_data("this is not a zstd frame");
  TokenizerBlob wrong_size = Blob("tokenizer.json", VocabularyText(50));
  wrong_size.set_raw_size(wrong_size.raw_size() + 1);
  Write({not_zstd, wrong_size});
  auto c = Container::Open(path_);
  ASSERT_TRUE(c.ok()) << c.status();
  for (size_t i = 0; i < 2; ++i) {
    auto data = (*c)->TokenizerData(i);
    ASSERT_FALSE(data.ok());
    EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(data.status().message(), HasSubstr("not one zstd frame"));
  }
}

TEST_F(TokenizerBlobTest, DecodedSizeAboveTheLimitIsRefusedBeforeAllocating) {
  Write({Blob("tokenizer.json", VocabularyText(1000))});
  auto c = Container::Open(path_);
  ASSERT_TRUE(c.ok()) << c.status();
  auto data = (*c)->TokenizerData(0, 100);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kOutOfRange);
}

// Files written before blobs moved out of the manifest hold them inline.
TEST(TokenizerBlobInlineTest, InlineBlobStillDecodes) {
  testing::HandMadeContainer parts = testing::ValidHandMadeContainer();
  const std::string raw = VocabularyText(100);
  *parts.manifest.add_tokenizers() = Blob("gguf-metadata", raw);
  const std::vector<uint8_t> bytes = testing::Assemble(parts);
  auto c = Container::OpenBuffer(bytes, "inline.zcpack");
  ASSERT_TRUE(c.ok()) << c.status();
  auto data = (*c)->TokenizerData(0);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, raw);
}

}  // namespace
}  // namespace zcpack::format
