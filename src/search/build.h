// From sensitivities, layer shapes, a target and budgets to the solvers' Problem (methods.md §1,
// §2, §4): one group per layer or tied set, one item per allowed (weight bits, activation bits)
// pair, omega = sum over the group's layers of Omega_w(b_w) + Omega_a(b_a), one cost row per
// summed budget. The memory budget (a maximum, not a sum) removes the items above it instead.
// Fixed costs outside the searched layers (parameters that are not layer weights, kept in float)
// are subtracted from the size limits here and added back in the reported totals.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/problem.h"
#include "search/target.h"

namespace mpq {

struct SearchLayer {
  LayerInfo info;
  std::map<int, double> weight_omega;  // bits -> Omega (the sensitivity file's per-bit values)
  std::map<int, double> act_omega;     // empty: the sensitivity measured no activation bits
};

struct SearchInput {
  std::vector<SearchLayer> layers;  // graph order
  // Tied sets by layer name (already chosen by the caller from the target's automatic ties);
  // the target's own tie patterns are added here.
  std::vector<std::vector<std::string>> ties;
  Target target = default_target();
  std::vector<BudgetSpec> budgets;
  double fixed_size_bytes = 0;  // model bytes outside the layers (float), counted by `size`
  std::string where = "sensitivity";  // for messages (the sensitivity file)
};

struct BuiltBudget {
  BudgetSpec spec;
  double lowest = 0, highest = 0;  // achievable totals (fixed part included)
  double limit = 0;                // absolute, fixed part included
  double fixed = 0;                // part of every total that no choice changes
  int row = -1;                    // Problem::budgets index; -1 for the memory budget (a max)
};

struct BuiltProblem {
  Problem problem;
  std::vector<BuiltBudget> budgets;  // in --budget order
  std::vector<int64_t> group_of_layer;  // SearchInput::layers index -> group
  std::vector<LayerCandidates> candidates;  // per layer, as the target allows
  std::vector<std::string> notes;  // choices made for the user (e.g. activation bits fixed)
};

// Throws mpq::Error naming the layer for: a candidate weight width the sensitivity has no
// Omega for (16 and 32 count as lossless), tied layers whose candidates differ, a memory budget
// no candidate of some layer meets, or any budget below its minimum (check_budgets_achievable's
// message with units).
BuiltProblem build_problem(const SearchInput& input);

}  // namespace mpq
