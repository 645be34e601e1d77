// Element types: names, block geometry and exact stored sizes.
#include "zcpack/format/dtype.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"

namespace zcpack::format {
namespace {

using Shape = std::vector<uint64_t>;
constexpr uint64_t k2p(int n) { return uint64_t{1} << n; }

absl::StatusCode SizeCode(DType dtype, const Shape& shape) {
  return TensorByteSize(dtype, shape).status().code();
}

TEST(FormatDType, NamesRoundTripCaseInsensitively) {
  for (DType d : testing::kAllDTypes) {
    const std::string name(DTypeName(d));
    ASSERT_TRUE(ParseDType(name).ok()) << name;
    EXPECT_EQ(*ParseDType(name), d);
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(*ParseDType(upper), d) << upper;
  }
  EXPECT_EQ(DTypeName(DTYPE_UNSPECIFIED), "unspecified");
  EXPECT_EQ(ParseDType("q8_1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDType("unspecified").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDType("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatDType, BlockGeometryMatchesGgml) {
  EXPECT_EQ(BlockElements(DTYPE_F32), 1u);
  EXPECT_EQ(BlockBytes(DTYPE_F32), 4u);
  EXPECT_EQ(BlockElements(DTYPE_F16), 1u);
  EXPECT_EQ(BlockBytes(DTYPE_F16), 2u);
  EXPECT_EQ(BlockElements(DTYPE_BF16), 1u);
  EXPECT_EQ(BlockBytes(DTYPE_BF16), 2u);
  EXPECT_EQ(BlockElements(DTYPE_Q4_0), 32u);
  EXPECT_EQ(BlockBytes(DTYPE_Q4_0), 18u);
  EXPECT_EQ(BlockElements(DTYPE_Q4_K), 256u);
  EXPECT_EQ(BlockBytes(DTYPE_Q4_K), 144u);
  EXPECT_EQ(BlockElements(DTYPE_Q8_0), 32u);
  EXPECT_EQ(BlockBytes(DTYPE_Q8_0), 34u);
  EXPECT_EQ(BlockElements(DTYPE_UNSPECIFIED), 0u);
  EXPECT_EQ(BlockBytes(static_cast<DType>(42)), 0u);
  EXPECT_FALSE(IsKnownDType(DTYPE_UNSPECIFIED));
  EXPECT_TRUE(IsQuantized(DTYPE_Q4_0));
  EXPECT_TRUE(IsQuantized(DTYPE_Q4_K));
  EXPECT_TRUE(IsQuantized(DTYPE_Q8_0));
  EXPECT_TRUE(IsKnownDType(DTYPE_Q8_0));
  EXPECT_FALSE(IsQuantized(DTYPE_BF16));
}

TEST(FormatDType, TensorByteSizeOfValidShapes) {
  EXPECT_EQ(*TensorByteSize(DTYPE_F32, Shape{3, 5}), 60u);
  EXPECT_EQ(*TensorByteSize(DTYPE_F16, Shape{7}), 14u);
  EXPECT_EQ(*TensorByteSize(DTYPE_BF16, Shape{2, 3, 4}), 48u);
  EXPECT_EQ(*TensorByteSize(DTYPE_Q4_0, Shape{2, 64}), 2u * 2 * 18);
  EXPECT_EQ(*TensorByteSize(DTYPE_Q4_K, Shape{3, 512}), 3u * 2 * 144);
  EXPECT_EQ(*TensorByteSize(DTYPE_Q8_0, Shape{4, 96}), 4u * 3 * 34);
  // Only the last dimension must be a block multiple.
  EXPECT_EQ(*TensorByteSize(DTYPE_Q4_K, Shape{5, 256}), 5u * 144);
}

TEST(FormatDType, LastDimensionMustBeABlockMultiple) {
  EXPECT_EQ(SizeCode(DTYPE_Q4_0, {4, 48}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_Q4_0, {64, 31}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_Q4_K, {256, 128}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_Q4_K, {255}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_Q8_0, {32, 48}), absl::StatusCode::kInvalidArgument);
}

TEST(FormatDType, RejectsRankZeroZeroDimensionsAndUnknownTypes) {
  EXPECT_EQ(SizeCode(DTYPE_F32, {}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_F32, {4, 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_F32, {0, k2p(62), k2p(62)}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(DTYPE_UNSPECIFIED, {4}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeCode(static_cast<DType>(99), {4}), absl::StatusCode::kInvalidArgument);
}

TEST(FormatDType, ElementCountDetectsOverflowThatWouldWrap) {
  EXPECT_EQ(*ElementCount(Shape{}), 1u);
  EXPECT_EQ(*ElementCount(Shape{k2p(31), k2p(32)}), k2p(63));
  EXPECT_EQ(ElementCount(Shape{k2p(32), k2p(32)}).status().code(), absl::StatusCode::kOutOfRange);
  // 3 * 0x5555555555555556 wraps to 2 modulo 2^64.
  EXPECT_EQ(ElementCount(Shape{3, 0x5555555555555556ull}).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ElementCount(Shape{2, 2, 2, k2p(61)}).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(FormatDType, TensorByteSizeStopsAt2To63Bytes) {
  EXPECT_EQ(*TensorByteSize(DTYPE_F16, Shape{k2p(62)}), k2p(63));
  EXPECT_EQ(SizeCode(DTYPE_F16, {k2p(62) + 1}), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*TensorByteSize(DTYPE_F32, Shape{k2p(30), k2p(31)}), k2p(63));
  EXPECT_EQ(SizeCode(DTYPE_F32, {k2p(31), k2p(31)}), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(SizeCode(DTYPE_F32, {k2p(32), k2p(32)}), absl::StatusCode::kOutOfRange);
  // Quantized types pack under a byte per element, so their limit is the
  // element count: 2^63 elements fit, twice that does not.
  EXPECT_EQ(*TensorByteSize(DTYPE_Q4_0, Shape{k2p(29), k2p(34)}), k2p(58) * 18);
  EXPECT_EQ(SizeCode(DTYPE_Q4_0, {k2p(30), k2p(34)}), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(SizeCode(DTYPE_Q4_K, {k2p(56), 256 * 64}), absl::StatusCode::kOutOfRange);
  // q8_0 packs 34 bytes per 32 elements: more than a byte per element.
  EXPECT_EQ(*TensorByteSize(DTYPE_Q8_0, Shape{k2p(26), k2p(32)}), k2p(53) * 34);
  EXPECT_EQ(SizeCode(DTYPE_Q8_0, {k2p(58), 32}), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace zcpack::format
