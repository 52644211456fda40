#include "quant/scheme.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace mpq {
namespace {

TEST(Scheme, TableNamesAreUnique) {
  for (size_t i = 0; i < scheme_table().size(); ++i) {
    for (size_t j = i + 1; j < scheme_table().size(); ++j) {
      EXPECT_STRNE(scheme_table()[i].name, scheme_table()[j].name);
    }
    EXPECT_EQ(&find_scheme(scheme_table()[i].name), &scheme_table()[i]);
  }
}

}  // namespace
}  // namespace mpq
