// Attention kernels over the binary16 KV cache (runtime/src/attention_kernels.h)
// at every SimdLevel this CPU runs, against a double-precision reference, and
// the conversions against format's half-precision reference bit for bit.
#include "runtime/src/attention_kernels.h"

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "zcpack/format/half.h"

namespace zcpack::runtime::attention {
namespace {

std::vector<const AttentionKernels*> Levels() {
  std::vector<const AttentionKernels*> levels = {&ScalarAttentionKernels()};
  for (format::SimdLevel level : {format::SimdLevel::kAvx2, format::SimdLevel::kAvx512}) {
    if (format::SupportedSimdLevel(level) == level) levels.push_back(&AttentionKernelsFor(level));
  }
  return levels;
}

std::vector<uint16_t> RandomHalves(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> out(n);
  for (uint16_t& h : out) h = format::FloatToHalf(normal(rng));
  return out;
}

TEST(AttentionKernels, ConversionsEqualTheReferenceBitForBit) {
  std::mt19937_64 rng(21);
  std::vector<float> values;
  // Every binary16 value widened, then values between them (ties and not),
  // subnormal results, overflow, infinities.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = format::HalfToFloat(static_cast<uint16_t>(h));
    if (!std::isnan(f)) values.push_back(f);
  }
  std::uniform_real_distribution<float> log2_magnitude(-30.0f, 17.0f);
  for (int i = 0; i < 20000; ++i) {
    const float m = std::exp2(log2_magnitude(rng));
    values.push_back((rng() & 1) != 0 ? -m : m);
  }
  values.push_back(std::numeric_limits<float>::infinity());
  values.push_back(65520.0f);  // rounds up to infinity
  values.push_back(5.960464477539063e-08f * 0.5f);  // a tie at the smallest subnormal
  for (const AttentionKernels* k : Levels()) {
    std::vector<uint16_t> halves(values.size());
    k->to_half(values.data(), values.size(), halves.data());
    std::vector<float> widened(values.size());
    k->to_float(halves.data(), halves.size(), widened.data());
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(halves[i], format::FloatToHalf(values[i]))
          << format::SimdLevelName(k->level) << " value " << values[i];
      ASSERT_EQ(std::bit_cast<uint32_t>(widened[i]),
                std::bit_cast<uint32_t>(format::HalfToFloat(halves[i])))
          << format::SimdLevelName(k->level) << " half " << halves[i];
    }
  }
}

TEST(AttentionKernels, ScoresAndWeightedValuesMatchDoubleReference) {
  std::mt19937_64 rng(22);
  for (size_t dim : {1, 8, 15, 16, 17, 64, 80, 128, 200}) {
    for (size_t n : {1, 2, 7, 33}) {
      const std::vector<uint16_t> keys = RandomHalves(n * dim, rng);
      const std::vector<uint16_t> values = RandomHalves(n * dim, rng);
      std::vector<float> q(dim), p(n);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& f : q) f = normal(rng);
      for (float& f : p) f = std::abs(normal(rng));
      const float scale = 0.125f;
      for (const AttentionKernels* k : Levels()) {
        const std::string where =
            absl::StrCat(format::SimdLevelName(k->level), " dim ", dim, " n ", n);
        std::vector<float> scores(n, -1.0f);
        k->key_scores(keys.data(), n, dim, q.data(), scale, scores.data());
        for (size_t j = 0; j < n; ++j) {
          double ref = 0, mag = 0;
          for (size_t i = 0; i < dim; ++i) {
            const double t = static_cast<double>(format::HalfToFloat(keys[j * dim + i])) * q[i];
            ref += t;
            mag += std::abs(t);
          }
          EXPECT_NEAR(scores[j], scale * ref, 1e-5 * scale * mag + 1e-30) << where << " key " << j;
        }
        std::vector<float> out(dim, -1.0f);
        k->weighted_values(values.data(), n, dim, p.data(), out.data());
        for (size_t i = 0; i < dim; ++i) {
          double ref = 0, mag = 0;
          for (size_t j = 0; j < n; ++j) {
            const double t = p[j] * static_cast<double>(format::HalfToFloat(values[j * dim + i]));
            ref += t;
            mag += std::abs(t);
          }
          EXPECT_NEAR(out[i], ref, 1e-5 * mag + 1e-30) << where << " element " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace zcpack::runtime::attention
