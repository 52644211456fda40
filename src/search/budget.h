// Budgets as the user writes them (design.md "Budgets"): `--budget KIND=VALUE[UNIT]`.
//   size=2.5MB  size=800KiB  weight-size=4.5MB  bops=12G  latency=3ms  latency=800us
//   energy=2.1  memory=64KB  avg-bits=3.5
//   KIND=0.5r   a fraction r of the way from the lowest achievable total (every layer at its
//               cheapest candidate) to the highest (every layer at its most expensive one)
//   KIND=0.4x   a multiple of the highest achievable total (0.25x of an all-8-bit model's size)
// Units: bytes B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024); weight-size's MB
// follows the papers (2^20 bytes) and says so in the docs; bops plain or K, M, G, T (powers of
// 1000); latency s, ms (default), us; energy and avg-bits plain numbers.
#pragma once

#include <string>
#include <vector>

#include "search/cost.h"

namespace mpq {

struct BudgetSpec {
  enum class Mode { kAbsolute, kFraction /* r */, kMultiple /* x */ };
  CostKind kind = CostKind::kSize;
  Mode mode = Mode::kAbsolute;
  double value = 0;  // in the kind's base unit (cost_kind_info(kind).unit) when kAbsolute
  std::string text;  // as given, for messages
};

// Throws mpq::Error: "--budget 'size=2.5XB': unknown unit 'XB' for size (expected B, KB, MB, GB,
// KiB, MiB, GiB, r or x)", likewise for a missing '=', an unknown kind, a negative or non-number
// value, r outside [0, 1].
BudgetSpec parse_budget(const std::string& text);

// The absolute limit in base units, given the lowest and highest achievable totals (for
// avg-bits, totals of weights * bits; the caller divides nothing).
double resolve_limit(const BudgetSpec& spec, double lowest, double highest,
                     double total_weights = 0);

// Human-readable value with a unit: format_cost(kSize, 2.5e6) == "2.50 MB",
// format_cost(kBops, 1.2e10) == "12.0 GBitOps", format_cost(kLatency, 3.2) == "3.20 ms".
// weight-size prints binary prefixes ("7.27 MiB"); avg-bits prints value / total_weights in bits
// when total_weights > 0 (format_cost(kAvgBits, 3.5e6, 1e6) == "3.50 bits").
std::string format_cost(CostKind kind, double value, double total_weights = 0);

}  // namespace mpq
