// Tests of the q5_k and q6_k block decoders (format/q4_blocks.h) against
// in-test decoders written from ggml's block layouts, element by element.
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/expect_floats.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack {
namespace {

using format::SimdLevel;

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> levels = {SimdLevel::kScalar};
  if (format::DetectSimdLevel() != SimdLevel::kScalar) levels.push_back(SimdLevel::kAvx2);
  if (format::DetectSimdLevel() == SimdLevel::kAvx512) levels.push_back(SimdLevel::kAvx512);
  return levels;
}

float Half(const uint8_t* p) { return format::HalfToFloat(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// The 6-bit scale and min of sub-block s of a q4_k / q5_k header.
void ScaleMin(const uint8_t* scales, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

// Reference q5_k: walks the four 64-element chunks with two moving qh bit
// masks, as the layout describes them.
void RefDecodeQ5_KBlock(const uint8_t* block, float* y) {
  const float d = Half(block);
  const float dmin = Half(block + 2);
  const uint8_t* qh = block + 16;
  const uint8_t* ql = block + 48;
  uint8_t mask_lo = 1;
  uint8_t mask_hi = 2;
  for (int c = 0; c < 4; ++c, ql += 32, mask_lo <<= 2, mask_hi <<= 2) {
    int sc = 0, m = 0;
    ScaleMin(block + 4, 2 * c, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    ScaleMin(block + 4, 2 * c + 1, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int q = (ql[l] & 0xF) + ((qh[l] & mask_lo) != 0 ? 16 : 0);
      *y++ = d1 * static_cast<float>(q) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int q = (ql[l] >> 4) + ((qh[l] & mask_hi) != 0 ? 16 : 0);
      *y++ = d2 * static_cast<float>(q) - m2;
    }
  }
}

// Reference q6_k: per 128-element half, the four quarters of each position l.
void RefDecodeQ6_KBlock(const uint8_t* block, float* y) {
  const float d = Half(block + 208);
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

// Random blocks whose binary16 fields (at `half_offsets`) are often edge values.
std::vector<uint8_t> RandomBlocks(size_t n_blocks, size_t block_bytes,
                                  const std::vector<size_t>& half_offsets, uint32_t seed) {
  const uint16_t edge_halves[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xbc00,
                                  0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x2e66};
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n_blocks * block_bytes);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  for (size_t b = 0; b < n_blocks; ++b) {
    for (size_t offset : half_offsets) {
      if (rng() % 2 != 0) continue;
      const uint16_t h = edge_halves[rng() % std::size(edge_halves)];
      bytes[b * block_bytes + offset] = static_cast<uint8_t>(h);
      bytes[b * block_bytes + offset + 1] = static_cast<uint8_t>(h >> 8);
    }
  }
  return bytes;
}

using ::zcpack::testutil::ExpectSameFloats;

struct KQuantCase {
  format::DType dtype;
  std::vector<size_t> half_offsets;
  void (*ref_decode_block)(const uint8_t* block, float* y);
  void (*dequantize)(const uint8_t* blocks, size_t n, float* out, SimdLevel level);
};

std::vector<KQuantCase> Cases() {
  return {{format::DTYPE_Q5_K, {0, 2}, RefDecodeQ5_KBlock, format::DequantizeQ5_K},
          {format::DTYPE_Q6_K, {208}, RefDecodeQ6_KBlock, format::DequantizeQ6_K}};
}

TEST(KQuantBlocksTest, EveryLevelAndConvertToFloatMatchIndependentDecoder) {
  uint32_t seed = 21;
  for (const KQuantCase& c : Cases()) {
    const size_t block_bytes = format::BlockBytes(c.dtype);
    const size_t n_blocks = 1031;
    const size_t n = n_blocks * 256;
    const std::vector<uint8_t> bytes = RandomBlocks(n_blocks, block_bytes, c.half_offsets, seed++);
    std::vector<float> want(n);
    for (size_t b = 0; b < n_blocks; ++b) {
      c.ref_decode_block(bytes.data() + block_bytes * b, want.data() + 256 * b);
    }
    const std::string name(format::DTypeName(c.dtype));
    for (SimdLevel level : SupportedLevels()) {
      const std::string what = name + " " + std::string(format::SimdLevelName(level));
      std::vector<float> got(n);
      c.dequantize(bytes.data(), n, got.data(), level);
      ExpectSameFloats(got, want, what);
      std::vector<float> via_convert(n);
      ASSERT_TRUE(format::ConvertToFloat(c.dtype, bytes.data(), n, via_convert.data(), level).ok());
      ExpectSameFloats(via_convert, want, what + " ConvertToFloat");
    }
  }
}

TEST(KQuantBlocksTest, RemainderElementsAreNotWrittenAndPartialBlocksRefused) {
  for (const KQuantCase& c : Cases()) {
    const std::vector<uint8_t> bytes = RandomBlocks(2, format::BlockBytes(c.dtype), {}, 5);
    std::vector<float> out(2 * 256 + 16, -7.0f);
    c.dequantize(bytes.data(), 256 + 255, out.data(), SimdLevel::kScalar);
    for (size_t i = 256; i < out.size(); ++i) ASSERT_EQ(out[i], -7.0f) << format::DTypeName(c.dtype);
    EXPECT_EQ(format::ConvertToFloat(c.dtype, bytes.data(), 128, out.data()).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// q5_k: one element per sub-block gets the fifth bit; every other element is
// nibble 0 with scale 1 and min 0, so the set elements decode to 16 + nibble.
TEST(KQuantBlocksTest, Q5_KFifthBitOfSubBlockSIsBitSOfQh) {
  uint8_t block[176] = {};
  block[1] = 0x3c;  // d = 1.0
  for (int s = 0; s < 4; ++s) block[4 + s] = 1;        // sc[0..3] = 1, m = 0
  for (int s = 4; s < 8; ++s) block[4 + s + 4] = 0x01;  // sc[4..7] = 1, m = 0
  for (int s = 0; s < 8; ++s) block[16 + 3 * s] |= static_cast<uint8_t>(1u << s);  // l = 3s
  block[48 + 32 * 2 + 5] = 0x7A;  // chunk 2, l = 5: low nibble 10 (sub-block 4), high 7 (5)
  float y[256];
  format::DequantizeQ5_K(block, 256, y);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32;
    const int l = e % 32;
    float want = l == 3 * s ? 16.0f : 0.0f;
    if (e == 128 + 5) want += 10.0f;
    if (e == 160 + 5) want += 7.0f;
    ASSERT_EQ(y[e], want) << "element " << e;
  }
}

// q6_k: element e is given the 6-bit value e % 64 through the layout's
// formula run backwards, scales[t] = t - 8 and d = 0.5.
TEST(KQuantBlocksTest, Q6_KPlacesLowNibblesHighPairsAndSignedScales) {
  uint8_t block[210] = {};
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    const int u = e % 64;
    block[64 * h + 32 * (g % 2) + l] |= static_cast<uint8_t>((u & 0xF) << (4 * (g / 2)));
    block[128 + 32 * h + l] |= static_cast<uint8_t>((u >> 4) << (2 * g));
  }
  for (int t = 0; t < 16; ++t) block[192 + t] = static_cast<uint8_t>(static_cast<int8_t>(t - 8));
  block[208] = 0x00;
  block[209] = 0x38;  // 0.5
  float y[256];
  format::DequantizeQ6_K(block, 256, y);
  for (int e = 0; e < 256; ++e) {
    const float want = 0.5f * static_cast<float>(e / 16 - 8) * static_cast<float>(e % 64 - 32);
    ASSERT_EQ(y[e], want) << "element " << e;
  }
}

}  // namespace
}  // namespace zcpack
