// The validation statistics of `mpq sensitivity --validate` against values worked out by hand.
#include "pipeline/sensitivity.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mpq {
namespace {

TEST(SensitivityValidation, CorrelationsMatchHandComputedValues) {
  // y = x^3 is monotone: Spearman 1, Pearson below 1: deviations (-1.5, -0.5, 0.5, 1.5) and
  // (-24, -17, 2, 39), sxy = 104, sxx = 5, syy = 2390, r = 104 / sqrt(11950).
  Correlation c = correlate({1, 2, 3, 4}, {1, 8, 27, 64});
  EXPECT_DOUBLE_EQ(c.spearman, 1.0);
  EXPECT_NEAR(c.pearson, 104 / std::sqrt(11950.0), 1e-12);
  EXPECT_EQ(c.n, 4);
  // Reversed order.
  EXPECT_DOUBLE_EQ(correlate({1, 2, 3}, {3, 2, 1}).spearman, -1.0);
  // Ties take average ranks: x ranks {1.5, 1.5, 3}, y ranks {1, 2, 3}; Pearson of the ranks is
  // 0.8660 (sqrt(3)/2).
  EXPECT_NEAR(correlate({5, 5, 9}, {1, 2, 3}).spearman, std::sqrt(3.0) / 2, 1e-12);
  // A constant series has no correlation.
  EXPECT_TRUE(std::isnan(correlate({1, 1, 1}, {1, 2, 3}).pearson));
}

}  // namespace
}  // namespace mpq
