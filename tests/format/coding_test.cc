// Little-endian coding helpers and the one bounds check every offset passes.
#include "zcpack/format/coding.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace zcpack::format {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(FormatCoding, EncodesLeastSignificantByteFirst) {
  uint8_t b16[2], b32[4], b64[8];
  EncodeFixed16(b16, 0x0102);
  EncodeFixed32(b32, 0x01020304u);
  EncodeFixed64(b64, 0x0102030405060708ull);
  EXPECT_EQ(std::vector<uint8_t>(b16, b16 + 2), (std::vector<uint8_t>{0x02, 0x01}));
  EXPECT_EQ(std::vector<uint8_t>(b32, b32 + 4), (std::vector<uint8_t>{0x04, 0x03, 0x02, 0x01}));
  EXPECT_EQ(std::vector<uint8_t>(b64, b64 + 8),
            (std::vector<uint8_t>{0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}));
}

TEST(FormatCoding, DecodesEveryBitOfEveryWidth) {
  for (int bit = 0; bit < 64; ++bit) {
    uint8_t buf[8] = {};
    buf[bit / 8] = static_cast<uint8_t>(1u << (bit % 8));
    if (bit < 16) {
      EXPECT_EQ(DecodeFixed16(buf), uint16_t{1} << bit) << bit;
    }
    if (bit < 32) {
      EXPECT_EQ(DecodeFixed32(buf), uint32_t{1} << bit) << bit;
    }
    EXPECT_EQ(DecodeFixed64(buf), uint64_t{1} << bit) << bit;
  }
}

TEST(FormatCoding, RoundTripsBoundaryAndRandomValues) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffffu,
                                  uint64_t{1} << 32, kMax - 1, kMax};
  for (int i = 0; i < 10000; ++i) values.push_back(rng());
  for (uint64_t v : values) {
    uint8_t buf[8];
    EncodeFixed16(buf, static_cast<uint16_t>(v));
    EXPECT_EQ(DecodeFixed16(buf), static_cast<uint16_t>(v));
    EncodeFixed32(buf, static_cast<uint32_t>(v));
    EXPECT_EQ(DecodeFixed32(buf), static_cast<uint32_t>(v));
    EncodeFixed64(buf, v);
    EXPECT_EQ(DecodeFixed64(buf), v);
  }
}

// The decoders do not bounds-check, so they must read exactly their width:
// decoding from a heap buffer of exactly that size (AddressSanitizer builds
// catch an over-read) and encoding leaves the neighbouring bytes alone.
TEST(FormatCoding, TouchesExactlyItsWidth) {
  for (size_t width : {2u, 4u, 8u}) {
    auto exact = std::make_unique<uint8_t[]>(width);
    for (size_t i = 0; i < width; ++i) exact[i] = static_cast<uint8_t>(0xa0 + i);
    uint64_t expected = 0;
    for (size_t i = 0; i < width; ++i) expected |= uint64_t{exact[i]} << (8 * i);
    const uint64_t got = width == 2   ? DecodeFixed16(exact.get())
                         : width == 4 ? DecodeFixed32(exact.get())
                                      : DecodeFixed64(exact.get());
    EXPECT_EQ(got, expected) << width;

    std::vector<uint8_t> guarded(width + 2, 0xee);
    if (width == 2) EncodeFixed16(guarded.data() + 1, 0);
    if (width == 4) EncodeFixed32(guarded.data() + 1, 0);
    if (width == 8) EncodeFixed64(guarded.data() + 1, 0);
    EXPECT_EQ(guarded.front(), 0xee) << width;
    EXPECT_EQ(guarded.back(), 0xee) << width;
    for (size_t i = 1; i <= width; ++i) EXPECT_EQ(guarded[i], 0) << width;
  }
}

TEST(FormatCoding, ByteRangeInBoundsMatchesArithmeticOnSmallValues) {
  for (uint64_t size = 0; size < 10; ++size) {
    for (uint64_t offset = 0; offset < 12; ++offset) {
      for (uint64_t length = 0; length < 12; ++length) {
        EXPECT_EQ(ByteRangeInBounds(offset, length, size), offset + length <= size)
            << offset << " +" << length << " in " << size;
      }
    }
  }
}

TEST(FormatCoding, ByteRangeInBoundsCannotOverflow) {
  EXPECT_FALSE(ByteRangeInBounds(1, kMax, 100));     // offset + length wraps to 0
  EXPECT_FALSE(ByteRangeInBounds(kMax, 2, 100));     // wraps to 1
  EXPECT_FALSE(ByteRangeInBounds(kMax, 1, kMax));    // one past the end
  EXPECT_FALSE(ByteRangeInBounds(2, kMax - 1, kMax));
  EXPECT_TRUE(ByteRangeInBounds(kMax, 0, kMax));     // empty range at the end
  EXPECT_TRUE(ByteRangeInBounds(0, kMax, kMax));
  EXPECT_TRUE(ByteRangeInBounds(1, kMax - 1, kMax));
}

}  // namespace
}  // namespace zcpack::format
