// MPQCO's greedy for the multiple-choice knapsack (methods.md §1): walk the groups' convex-hull
// upgrade steps in decreasing -d(omega)/d(cost) order while they fit, then improve by single-group
// moves (1-swap). O(G K log(G K)) for the pass; each 1-swap round is O(G K) and there are at most
// G (K - 1) + 1 rounds, since every move lowers one group's omega. The LP relaxation over the same
// hulls gives the reported bound, so `gap` bounds the distance to the optimum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "search/internal/hull.h"
#include "search/solvers.h"

namespace mpq {

namespace {

double group_total(const Problem& p, const std::vector<int>& choice) {
  double total = 0;
  for (size_t g = 0; g < choice.size(); ++g) {
    total += internal::item_cost(p.groups[g].items[choice[g]], 0);
  }
  return total;
}

// One round over the groups: move each to its smallest-omega item that fits (ties: lower cost,
// then lower index) when that lowers its omega. Returns the number of moves.
int one_swap_round(const Problem& p, double limit, std::vector<int>& choice) {
  int moves = 0;
  double total = group_total(p, choice);
  for (size_t g = 0; g < choice.size(); ++g) {
    const std::vector<Item>& items = p.groups[g].items;
    const Item& current = items[choice[g]];
    const double current_cost = internal::item_cost(current, 0);
    int best = -1;
    for (int j = 0; j < static_cast<int>(items.size()); ++j) {
      const double c = internal::item_cost(items[j], 0);
      if (!(items[j].omega < current.omega) || total - current_cost + c > limit) continue;
      if (best < 0 || items[j].omega < items[best].omega ||
          (items[j].omega == items[best].omega && c < internal::item_cost(items[best], 0))) {
        best = j;
      }
    }
    if (best >= 0) {
      total += internal::item_cost(items[best], 0) - current_cost;
      choice[g] = best;
      ++moves;
    }
  }
  return moves;
}

}  // namespace

Solution solve_greedy(const Problem& p, const SolverOptions& options) {
  MPQ_CHECK(p.budgets.size() <= 1, "solver 'greedy' handles one budget, found ", p.budgets.size(),
            ": use --solver ilp");
  const double limit = p.budgets.empty()
                           ? std::numeric_limits<double>::infinity()
                           : internal::effective_limit(p.budgets[0].limit, options.tolerance);
  const internal::HullRelaxation relax(p, 0);
  const int64_t n = relax.groups();

  Solution s;
  std::vector<int64_t> at(n, 0);
  double total = 0;
  for (int64_t g = 0; g < n; ++g) total += relax.hull(g).front().cost;
  if (total > limit) {
    s.detail = "the cheapest candidates already exceed the budget";
    return s;
  }

  // A step that does not fit stops its group (its later steps start where it ends), but lower
  // ratio steps of other groups may still fit.
  std::vector<char> stopped(n, 0);
  int taken = 0, skipped = 0;
  for (const internal::HullStep& step : relax.steps()) {
    if (stopped[step.group]) continue;
    if (total + step.dcost <= limit) {
      total += step.dcost;
      at[step.group] = step.to;
      ++taken;
    } else {
      stopped[step.group] = 1;
      ++skipped;
    }
  }
  s.choice.resize(n);
  for (int64_t g = 0; g < n; ++g) s.choice[g] = relax.hull(g)[at[g]].item;

  int swaps = 0;
  if (options.one_swap) {
    while (int moved = one_swap_round(p, limit, s.choice)) swaps += moved;
  }

  for (int64_t g = 0; g < n; ++g) s.objective += p.groups[g].items[s.choice[g]].omega;
  s.bound = std::min(relax.bound(0, limit), s.objective);
  s.gap = s.objective - s.bound;
  s.status = s.gap <= 1e-12 * std::max(1.0, std::abs(s.objective)) ? SolveStatus::kOptimal
                                                                   : SolveStatus::kFeasible;
  s.detail = std::to_string(taken) + " hull steps taken, " + std::to_string(skipped) +
             " groups stopped by the budget, " + std::to_string(swaps) + " 1-swap moves";
  return s;
}

}  // namespace mpq
