// Attention kernels over the binary16 KV cache (runtime/src/attention_kernels.h)
// at every SimdLevel this CPU runs: key scores and the online value
// accumulation bit for bit against the scalar level (and near a
// double-precision softmax), the conversions against format's half-precision
// reference bit for bit.
#include "runtime/src/attention_kernels.h"

#include <algorithm>
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

std::vector<float> RandomHalfExactFloats(size_t n, std::mt19937_64& rng) {
  std::vector<float> out;
  for (uint16_t h : RandomHalves(n, rng)) out.push_back(format::HalfToFloat(h));
  return out;
}

// ScoreSum's orders as attention_kernels.h states them, written out
// independently: element e of a full step goes to array (e / L) % 4, lane e % L.
float ReferenceScoreSum(ScoreSum order, const uint16_t* k, const float* q, size_t dim) {
  if (order == ScoreSum::kExact) {
    double sum = 0;
    for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(format::HalfToFloat(k[i]) * q[i]);
    return static_cast<float>(sum);
  }
  const size_t lanes = order == ScoreSum::kLanes16 ? 16 : 8;
  const size_t full = dim / (4 * lanes) * (4 * lanes);
  std::vector<float> acc(4 * lanes, 0.0f);
  for (size_t e = 0; e < full; ++e) {
    float& a = acc[((e / lanes) % 4) * lanes + e % lanes];
    a = std::fma(format::HalfToFloat(k[e]), q[e], a);
  }
  std::vector<float> v(lanes);
  for (size_t l = 0; l < lanes; ++l) {
    v[l] = (acc[l] + acc[2 * lanes + l]) + (acc[lanes + l] + acc[3 * lanes + l]);
  }
  float total;
  if (lanes == 16) {
    float h[8], q4[4];
    for (size_t i = 0; i < 8; ++i) h[i] = v[i] + v[i + 8];
    for (size_t i = 0; i < 4; ++i) q4[i] = h[i] + h[i + 4];
    total = (q4[0] + q4[2]) + (q4[1] + q4[3]);
  } else {
    float h[4];
    for (size_t i = 0; i < 4; ++i) h[i] = v[i] + v[i + 4];
    total = (h[0] + h[1]) + (h[2] + h[3]);
  }
  double sum = total;
  for (size_t e = full; e < dim; ++e) sum += static_cast<double>(format::HalfToFloat(k[e]) * q[e]);
  return static_cast<float>(sum);
}

TEST(AttentionKernels, KeyScoreSumFollowsEachOrder) {
  std::mt19937_64 rng(21);
  size_t lanes_differ_from_exact = 0;
  for (size_t dim : {1, 8, 31, 32, 33, 64, 80, 128, 200}) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<uint16_t> key = RandomHalves(dim, rng);
      const std::vector<float> q = RandomHalfExactFloats(dim, rng);
      for (ScoreSum order : {ScoreSum::kExact, ScoreSum::kLanes8, ScoreSum::kLanes16}) {
        const uint32_t want =
            std::bit_cast<uint32_t>(ReferenceScoreSum(order, key.data(), q.data(), dim));
        ASSERT_EQ(std::bit_cast<uint32_t>(KeyScoreSum(order, key.data(), q.data(), dim)), want)
            << "order " << static_cast<int>(order) << " dim " << dim;
        if (ScoreSumFn in_registers = RegisterScoreSum(order); in_registers != nullptr) {
          ASSERT_EQ(std::bit_cast<uint32_t>(in_registers(key.data(), q.data(), dim)), want)
              << "registers, order " << static_cast<int>(order) << " dim " << dim;
        }
      }
      if (KeyScoreSum(ScoreSum::kLanes16, key.data(), q.data(), dim) !=
          KeyScoreSum(ScoreSum::kExact, key.data(), q.data(), dim)) {
        ++lanes_differ_from_exact;
      }
    }
  }
  // The orders are not interchangeable: that is why the CPU's own is used.
  EXPECT_GT(lanes_differ_from_exact, 0u);
}

TEST(AttentionKernels, ScoresEqualTheScalarLevelInThisCpusOrder) {
  std::mt19937_64 rng(22);
  const ScoreSum order = ScoreSumForThisCpu();
  for (size_t dim : {1, 8, 15, 16, 17, 64, 80, 128, 200}) {
    for (size_t n : {1, 2, 7, 33}) {
      const std::vector<uint16_t> keys = RandomHalves(n * dim, rng);
      const std::vector<float> q = RandomHalfExactFloats(dim, rng);
      const float scale = 0.125f;
      std::vector<float> reference(n);
      for (size_t j = 0; j < n; ++j) {
        reference[j] = ReferenceScoreSum(order, keys.data() + j * dim, q.data(), dim) * scale;
      }
      for (const AttentionKernels* k : Levels()) {
        std::vector<float> scores(n, -1.0f);
        k->key_scores(keys.data(), n, dim, q.data(), scale, scores.data());
        for (size_t j = 0; j < n; ++j) {
          ASSERT_EQ(std::bit_cast<uint32_t>(scores[j]), std::bit_cast<uint32_t>(reference[j]))
              << format::SimdLevelName(k->level) << " dim " << dim << " n " << n << " key " << j;
        }
      }
    }
  }
}

TEST(AttentionKernels, OnlineSoftmaxWeightsSumToTheSoftmax) {
  // Scores that rise, fall and tie: ms/vs rescale so that sum_j vs_j *
  // (product of later ms) equals sum_j exp(s_j - max).
  const std::vector<float> scores = {0.5f, 2.0f, 2.0f, -1.0f, 3.5f, 1.0f, 3.5f, -20.0f};
  std::vector<float> ms(scores.size()), vs(scores.size());
  const float sum = OnlineSoftmax(scores.data(), scores.size(), ms.data(), vs.data());
  double weight_sum = 0;
  for (size_t j = 0; j < scores.size(); ++j) {
    double w = vs[j];
    for (size_t later = j + 1; later < scores.size(); ++later) w *= ms[later];
    EXPECT_NEAR(w, std::exp(static_cast<double>(scores[j]) - 3.5), 1e-6) << "key " << j;
    weight_sum += w;
  }
  EXPECT_NEAR(sum, weight_sum, 1e-6);
  EXPECT_EQ(ms[0], 0.0f);  // the first key: exp(-inf - s)
  EXPECT_EQ(vs[1], 1.0f);  // a new maximum
  EXPECT_EQ(ms[2], 1.0f);  // a tie is not a new maximum
}

TEST(AttentionKernels, OnlineValuesAreBitIdenticalAtEveryLevelAndNearTheSoftmaxAverage) {
  std::mt19937_64 rng(23);
  for (size_t dim : {1, 8, 15, 16, 17, 64, 80, 128, 200}) {
    for (size_t n : {1, 2, 7, 33, 100}) {
      const std::vector<uint16_t> values = RandomHalves(n * dim, rng);
      std::normal_distribution<float> normal(0.0f, 2.0f);
      std::vector<float> scores(n);
      for (float& s : scores) s = normal(rng);
      std::vector<float> ms(n), vs(n);
      const float sum = OnlineSoftmax(scores.data(), n, ms.data(), vs.data());
      const float max = *std::max_element(scores.begin(), scores.end());
      std::vector<float> reference;
      for (const AttentionKernels* k : Levels()) {
        const std::string where =
            absl::StrCat(format::SimdLevelName(k->level), " dim ", dim, " n ", n);
        std::vector<float> out(dim, -1.0f);
        k->online_values(values.data(), n, dim, ms.data(), vs.data(), out.data());
        if (reference.empty()) {
          reference = out;  // the scalar level comes first
        } else {
          for (size_t i = 0; i < dim; ++i) {
            ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(reference[i]))
                << where << " element " << i;
          }
        }
        for (size_t i = 0; i < dim; ++i) {
          // Every step rounds to binary16 (2^-11 relative) on magnitudes up
          // to sum_j |v_j| exp(s_j - max).
          double exact = 0, magnitude = 0, weights = 0;
          for (size_t j = 0; j < n; ++j) {
            const double w = std::exp(static_cast<double>(scores[j]) - max);
            exact += w * format::HalfToFloat(values[j * dim + i]);
            magnitude += w * std::abs(format::HalfToFloat(values[j * dim + i]));
            weights += w;
          }
          EXPECT_NEAR(out[i] / sum, exact / weights,
                      (static_cast<double>(n) + 1) * std::ldexp(magnitude, -10) / weights + 1e-6)
              << where << " element " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace zcpack::runtime::attention
