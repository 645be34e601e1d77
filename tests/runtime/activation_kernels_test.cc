// SwiGLU (runtime/src/activation_kernels.h): the approximate exponential
// against the C library's, and every SimdLevel this CPU runs against the
// scalar reference bit for bit, special values included.
#include "runtime/src/activation_kernels.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace zcpack::runtime::activation {
namespace {

std::vector<format::SimdLevel> Levels() {
  std::vector<format::SimdLevel> levels = {format::SimdLevel::kScalar};
  for (format::SimdLevel level : {format::SimdLevel::kAvx2, format::SimdLevel::kAvx512}) {
    if (format::SupportedSimdLevel(level) == level) levels.push_back(level);
  }
  return levels;
}

// Distance in units in the last place between two finite floats of one sign.
int64_t UlpDistance(float a, float b) {
  return std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(a)) -
                  static_cast<int64_t>(std::bit_cast<int32_t>(b)));
}

TEST(ActivationKernels, ExpApproxIsWithinTwoUlpOfExp) {
  int64_t worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    worst = std::max(worst, UlpDistance(ExpApprox(x), std::exp(x)));
  }
  EXPECT_LE(worst, 2);
  EXPECT_EQ(ExpApprox(0.0f), 1.0f);
  EXPECT_EQ(ExpApprox(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(ExpApprox(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(ExpApprox(200.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(ExpApprox(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(ExpApprox(std::nanf(""))));
  // Subnormal results (n below -126) are rounded once, not flushed.
  EXPECT_GT(ExpApprox(-100.0f), 0.0f);
  EXPECT_LT(ExpApprox(-100.0f), std::numeric_limits<float>::min());
}

TEST(ActivationKernels, EveryLevelEqualsTheScalarReferenceBitForBit) {
  std::mt19937_64 rng(31);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> gate, up;
  for (int i = 0; i < 5000; ++i) {
    gate.push_back(normal(rng));
    up.push_back(normal(rng));
  }
  // Values whose exponent leaves the fast range (|x| > 87 or so), and the
  // special ones, in every lane position of a vector.
  const float specials[] = {-110.0f, -100.0f, -90.0f, 90.0f, 100.0f, 150.0f, 0.0f, -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::nanf(""),
                            std::numeric_limits<float>::denorm_min()};
  for (float s : specials) {
    for (int lane = 0; lane < 17; ++lane) {
      gate.push_back(s);
      up.push_back(1.5f);
    }
  }
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{17}, gate.size()}) {
    std::vector<float> reference(gate.begin(), gate.begin() + static_cast<std::ptrdiff_t>(n));
    ScalarSwiGlu()(reference.data(), up.data(), n);
    for (format::SimdLevel level : Levels()) {
      std::vector<float> out(gate.begin(), gate.begin() + static_cast<std::ptrdiff_t>(n));
      SwiGluFor(level)(out.data(), up.data(), n);
      for (size_t i = 0; i < n; ++i) {
        if (std::isnan(reference[i])) {
          EXPECT_TRUE(std::isnan(out[i])) << format::SimdLevelName(level) << " input " << gate[i];
        } else {
          ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(reference[i]))
              << format::SimdLevelName(level) << " input " << gate[i] << " n " << n;
        }
      }
    }
  }
}

TEST(ActivationKernels, SwiGluIsSiluTimesUp) {
  for (float x : {-8.0f, -1.0f, -0.25f, 0.0f, 0.5f, 3.0f, 12.0f}) {
    float g = x;
    const float u = 0.75f;
    ScalarSwiGlu()(&g, &u, 1);
    EXPECT_NEAR(g, x / (1.0 + std::exp(-static_cast<double>(x))) * u, 1e-6 * (1 + std::abs(x)));
  }
  float g = -200.0f;  // e(200) = inf: silu is -0
  const float u = 1.0f;
  ScalarSwiGlu()(&g, &u, 1);
  EXPECT_EQ(g, 0.0f);
  g = 200.0f;  // e(-200) = 0: silu is x
  ScalarSwiGlu()(&g, &u, 1);
  EXPECT_EQ(g, 200.0f);
}

}  // namespace
}  // namespace zcpack::runtime::activation
