// The fixed 128-byte header: field placement, round trip, checksum coverage.
#include "zcpack/format/header.h"

#include <algorithm>
#include <array>
#include <random>

#include "gtest/gtest.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::format {
namespace {

ContainerHeader RandomHeader(std::mt19937_64& rng) {
  ContainerHeader h;
  for (auto& b : h.magic) b = static_cast<uint8_t>(rng());
  h.major_version = static_cast<uint16_t>(rng());
  h.minor_version = static_cast<uint16_t>(rng());
  h.header_size = static_cast<uint32_t>(rng());
  h.required_features = rng();
  h.optional_features = rng();
  h.file_size = rng();
  h.alignment_log2 = static_cast<uint32_t>(rng());
  h.reserved0 = static_cast<uint32_t>(rng());
  h.data_offset = rng();
  h.data_size = rng();
  h.manifest_offset = rng();
  h.manifest_size = rng();
  h.manifest_raw_size = rng();
  h.manifest_xxh3 = rng();
  for (auto& b : h.reserved) b = static_cast<uint8_t>(rng());
  return h;
}

bool SameFields(const ContainerHeader& a, const ContainerHeader& b) {
  return a.magic == b.magic && a.major_version == b.major_version &&
         a.minor_version == b.minor_version && a.header_size == b.header_size &&
         a.required_features == b.required_features && a.optional_features == b.optional_features &&
         a.file_size == b.file_size && a.alignment_log2 == b.alignment_log2 &&
         a.reserved0 == b.reserved0 && a.data_offset == b.data_offset &&
         a.data_size == b.data_size && a.manifest_offset == b.manifest_offset &&
         a.manifest_size == b.manifest_size && a.manifest_raw_size == b.manifest_raw_size &&
         a.manifest_xxh3 == b.manifest_xxh3 && a.reserved == b.reserved;
}

TEST(FormatHeader, NewHeaderCarriesMagicAndVersions) {
  const ContainerHeader h = NewHeader();
  EXPECT_TRUE(std::equal(h.magic.begin(), h.magic.end(), std::begin(kMagic)));
  EXPECT_EQ(h.major_version, kMajorVersion);
  EXPECT_EQ(h.minor_version, kMinorVersion);
  EXPECT_EQ(h.header_size, kHeaderSize);
  EXPECT_EQ(h.required_features, 0u);
  EXPECT_EQ(h.reserved0, 0u);
  EXPECT_TRUE(std::all_of(h.reserved.begin(), h.reserved.end(), [](uint8_t b) { return b == 0; }));
}

TEST(FormatHeader, EncodeDecodeRoundTripsEveryField) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 1000; ++trial) {
    const ContainerHeader h = RandomHeader(rng);
    std::array<uint8_t, kHeaderSize> bytes{};
    const uint64_t checksum = EncodeHeader(h, bytes);
    const ContainerHeader back = DecodeHeader(bytes);
    ASSERT_TRUE(SameFields(h, back)) << "trial " << trial;
    EXPECT_EQ(back.header_xxh3, checksum);
    EXPECT_EQ(HeaderChecksum(bytes), checksum);
  }
}

TEST(FormatHeader, FieldsSitAtTheirDocumentedOffsets) {
  ContainerHeader h = NewHeader();
  h.major_version = 0x1122;
  h.minor_version = 0x3344;
  h.header_size = 0x55667788;
  h.required_features = 0x0101010101010101;
  h.optional_features = 0x0202020202020202;
  h.file_size = 0x0303030303030303;
  h.alignment_log2 = 0x04040404;
  h.reserved0 = 0x05050505;
  h.data_offset = 0x0606060606060606;
  h.data_size = 0x0707070707070707;
  h.manifest_offset = 0x0808080808080808;
  h.manifest_size = 0x0909090909090909;
  h.manifest_raw_size = 0x0a0a0a0a0a0a0a0a;
  h.manifest_xxh3 = 0x0b0b0b0b0b0b0b0b;
  h.reserved.fill(0x0c);
  std::array<uint8_t, kHeaderSize> b{};
  const uint64_t checksum = EncodeHeader(h, b);
  EXPECT_TRUE(std::equal(std::begin(kMagic), std::end(kMagic), b.begin() + kOffMagic));
  EXPECT_EQ(DecodeFixed16(&b[kOffMajorVersion]), 0x1122);
  EXPECT_EQ(DecodeFixed16(&b[kOffMinorVersion]), 0x3344);
  EXPECT_EQ(DecodeFixed32(&b[kOffHeaderSize]), 0x55667788u);
  EXPECT_EQ(DecodeFixed64(&b[kOffRequiredFeatures]), h.required_features);
  EXPECT_EQ(DecodeFixed64(&b[kOffOptionalFeatures]), h.optional_features);
  EXPECT_EQ(DecodeFixed64(&b[kOffFileSize]), h.file_size);
  EXPECT_EQ(DecodeFixed32(&b[kOffAlignmentLog2]), h.alignment_log2);
  EXPECT_EQ(DecodeFixed32(&b[kOffHeaderReserved0]), h.reserved0);
  EXPECT_EQ(DecodeFixed64(&b[kOffDataOffset]), h.data_offset);
  EXPECT_EQ(DecodeFixed64(&b[kOffDataSize]), h.data_size);
  EXPECT_EQ(DecodeFixed64(&b[kOffManifestOffset]), h.manifest_offset);
  EXPECT_EQ(DecodeFixed64(&b[kOffManifestSize]), h.manifest_size);
  EXPECT_EQ(DecodeFixed64(&b[kOffManifestRawSize]), h.manifest_raw_size);
  EXPECT_EQ(DecodeFixed64(&b[kOffManifestXxh3]), h.manifest_xxh3);
  for (size_t i = 0; i < kReservedSize; ++i) EXPECT_EQ(b[kOffReserved + i], 0x0c);
  EXPECT_EQ(DecodeFixed64(&b[kOffHeaderXxh3]), checksum);
}

TEST(FormatHeader, ChecksumCoversEveryByteBeforeIt) {
  std::array<uint8_t, kHeaderSize> bytes{};
  EncodeHeader(NewHeader(), bytes);
  const uint64_t original = HeaderChecksum(bytes);
  for (size_t i = 0; i < kHeaderSize; ++i) {
    auto flipped = bytes;
    flipped[i] ^= 0x01;
    if (i < kOffHeaderXxh3) {
      EXPECT_NE(HeaderChecksum(flipped), original) << "byte " << i;
    } else {
      EXPECT_EQ(HeaderChecksum(flipped), original) << "byte " << i;
    }
  }
}

TEST(FormatHeader, EncodeIgnoresTheStructsChecksumField) {
  ContainerHeader h = NewHeader();
  std::array<uint8_t, kHeaderSize> a{}, b{};
  h.header_xxh3 = 1;
  EncodeHeader(h, a);
  h.header_xxh3 = 0xdeadbeef;
  EncodeHeader(h, b);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace zcpack::format
