// The shared parts of the sensitivity module: options checks, dW(b), the loss, the JSON format.
#include "sensitivity/sensitivity.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "pipeline/zoo.h"

namespace mpq {
namespace {

TEST(Sensitivity, MetricTableNamesAreUnique) {
  for (size_t i = 0; i < metric_table().size(); ++i) {
    for (size_t j = i + 1; j < metric_table().size(); ++j) {
      EXPECT_STRNE(metric_table()[i].name, metric_table()[j].name);
    }
    EXPECT_EQ(&find_metric(metric_table()[i].name), &metric_table()[i]);
  }
  EXPECT_THROW(find_metric("hawq"), Error);
}

}  // namespace
}  // namespace mpq
