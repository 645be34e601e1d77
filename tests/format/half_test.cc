// binary16 and bfloat16 conversions: exhaustive over every 16-bit pattern.
#include "zcpack/format/half.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace zcpack::format {
namespace {

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool IsBFloat16NaN(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0; }
uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

// The value of a binary16 pattern from its definition, in double.
double HalfValue(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  if (exp == 0x1f) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(FormatHalf, HalfToFloatKnownValues) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(Bits(HalfToFloat(0x0000)), 0x00000000u);
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
}

TEST(FormatHalf, HalfToFloatIsExactForAllPatterns) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    const double expected = HalfValue(static_cast<uint16_t>(h));
    if (IsHalfNaN(static_cast<uint16_t>(h))) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), expected) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;
    }
  }
}

TEST(FormatHalf, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto half = static_cast<uint16_t>(h);
    const uint16_t back = FloatToHalf(HalfToFloat(half));
    if (IsHalfNaN(half)) {
      EXPECT_TRUE(IsHalfNaN(back)) << std::hex << h;
      EXPECT_NE(back & 0x200u, 0u) << "NaN comes back quiet: " << std::hex << h;
      EXPECT_EQ(back & 0x8000u, half & 0x8000u) << std::hex << h;
    } else {
      ASSERT_EQ(back, half) << std::hex << h;
    }
  }
}

// Between two adjacent finite halfs, the exact midpoint goes to the one with
// an even mantissa, and the floats just either side go to the nearer one.
TEST(FormatHalf, FloatToHalfRoundsToNearestTiesToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7bff; ++h) {
      const auto lo = static_cast<uint16_t>(sign | h);
      const auto hi = static_cast<uint16_t>(sign | (h + 1));
      const float a = HalfToFloat(lo), b = HalfToFloat(hi);
      const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2) << "exact midpoint";
      const uint16_t even = (h & 1u) ? hi : lo;
      ASSERT_EQ(FloatToHalf(mid), even) << std::hex << lo;
      ASSERT_EQ(FloatToHalf(std::nextafter(mid, a)), lo) << std::hex << lo;
      ASSERT_EQ(FloatToHalf(std::nextafter(mid, b)), hi) << std::hex << lo;
    }
  }
}

TEST(FormatHalf, FloatToHalfOverflowAndUnderflowBoundaries) {
  // 65520 is the midpoint between 65504 (odd mantissa 0x3ff) and 65536 (the
  // next binade, which is infinity): it rounds to the even side, infinity.
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(FloatToHalf(-65520.0f), 0xfc00);
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
  // 2^-25 is the midpoint between 0 and the smallest subnormal: ties to 0.
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::denorm_min()), 0x8000);
  // The largest subnormal rounds up into the smallest normal.
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -14), 0.0f)), 0x0400);
}

TEST(FormatHalf, FloatToHalfKeepsNaN) {
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu, 0xff800001u}) {
    const uint16_t h = FloatToHalf(std::bit_cast<float>(bits));
    EXPECT_TRUE(IsHalfNaN(h)) << std::hex << bits;
    EXPECT_EQ(h & 0x8000u, (bits >> 16) & 0x8000u) << std::hex << bits;
  }
}

// Random floats against a reference that picks the nearest of all finite
// halfs (ties to even, beyond 65520 to infinity) by search, not by bit tricks.
TEST(FormatHalf, FloatToHalfMatchesNearestHalfReference) {
  std::vector<std::pair<double, uint16_t>> finite;  // non-negative finite halfs by value
  for (uint32_t h = 0; h <= 0x7bff; ++h) finite.emplace_back(HalfValue(static_cast<uint16_t>(h)), h);
  auto reference = [&finite](float f) -> uint16_t {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double x = std::fabs(static_cast<double>(f));
    if (x >= 65520.0) return sign | 0x7c00;
    auto it = std::lower_bound(finite.begin(), finite.end(), std::make_pair(x, uint16_t{0}));
    if (it == finite.end()) return sign | 0x7bff;
    if (it->first == x || it == finite.begin()) return static_cast<uint16_t>(sign | it->second);
    const auto below = std::prev(it);
    const double up = it->first - x, down = x - below->first;
    if (up < down) return static_cast<uint16_t>(sign | it->second);
    if (down < up) return static_cast<uint16_t>(sign | below->second);
    return static_cast<uint16_t>(sign | ((below->second & 1u) ? it->second : below->second));
  };
  std::mt19937_64 rng(11);
  for (int i = 0; i < 500000; ++i) {
    // Exponents biased toward the half range, including its subnormals.
    const uint32_t exp = 100 + static_cast<uint32_t>(rng() % 50);  // 2^-27 .. 2^22
    const uint32_t bits = static_cast<uint32_t>(rng() & 0x807fffffu) | (exp << 23);
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToHalf(f), reference(f)) << std::hex << bits;
  }
}

TEST(FormatHalf, BFloat16ToFloatIsTheHighHalf) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    ASSERT_EQ(Bits(BFloat16ToFloat(static_cast<uint16_t>(b))), b << 16);
  }
}

TEST(FormatHalf, EveryBFloat16RoundTripsThroughFloat) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const auto bf = static_cast<uint16_t>(b);
    const uint16_t back = FloatToBFloat16(BFloat16ToFloat(bf));
    if (IsBFloat16NaN(bf)) {
      EXPECT_TRUE(IsBFloat16NaN(back)) << std::hex << b;
    } else {
      ASSERT_EQ(back, bf) << std::hex << b;
    }
  }
}

TEST(FormatHalf, FloatToBFloat16RoundsToNearestTiesToEven) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const auto bf = static_cast<uint16_t>(b);
    if ((bf & 0x7fffu) >= 0x7f80u) continue;  // inf and NaN have no upper neighbour
    const uint32_t base = b << 16;
    const uint16_t even = (bf & 1u) ? static_cast<uint16_t>(bf + 1) : bf;
    ASSERT_EQ(FloatToBFloat16(std::bit_cast<float>(base | 0x8000u)), even) << std::hex << b;
    ASSERT_EQ(FloatToBFloat16(std::bit_cast<float>(base | 0x7fffu)), bf) << std::hex << b;
    ASSERT_EQ(FloatToBFloat16(std::bit_cast<float>(base | 0x8001u)), static_cast<uint16_t>(bf + 1))
        << std::hex << b;
  }
  // The largest float rounds up to infinity.
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(FormatHalf, FloatToBFloat16KeepsNaN) {
  // Payloads only in the low 16 bits would truncate to infinity without care.
  for (uint32_t bits : {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7f80ffffu}) {
    const uint16_t b = FloatToBFloat16(std::bit_cast<float>(bits));
    EXPECT_TRUE(IsBFloat16NaN(b)) << std::hex << bits;
    EXPECT_EQ(b & 0x8000u, (bits >> 16) & 0x8000u) << std::hex << bits;
  }
}

}  // namespace
}  // namespace zcpack::format
