// ExpectSameFloats(): gtest assertion that two float vectors hold the same
// bits element by element (any NaN matches any NaN), naming `what` and the
// first element that differs. Shared by the decoder tests of format and the
// quantizer tests of the converter.
#ifndef ZCPACK_TESTS_TESTING_EXPECT_FLOATS_H_
#define ZCPACK_TESTS_TESTING_EXPECT_FLOATS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zcpack::testutil {

inline void ExpectSameFloats(const std::vector<float>& got, const std::vector<float>& want,
                             const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << " element " << i;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << what << " element " << i << ": " << got[i] << " vs " << want[i];
    }
  }
}

}  // namespace zcpack::testutil

#endif  // ZCPACK_TESTS_TESTING_EXPECT_FLOATS_H_
