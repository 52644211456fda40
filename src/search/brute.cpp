// Exhaustive enumeration of every allocation (methods.md §1): the reference that the tests hold
// every other solver to, and a solver for tiny problems. Any number of budgets. O(prod_g K_g) with
// partial sums kept along a depth-first walk; refuses more than 2^22 combinations.
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "search/internal/hull.h"
#include "search/solvers.h"

namespace mpq {

namespace {

constexpr int64_t kMaxCombinations = int64_t{1} << 22;

struct Walk {
  const Problem& p;
  std::vector<double> limit;
  std::vector<std::vector<double>> total;  // per depth, per budget: the partial sums so far
  std::vector<int> current;
  std::vector<int> best;
  double best_objective = std::numeric_limits<double>::infinity();

  void visit(size_t g, double objective) {
    if (g == p.groups.size()) {
      for (size_t k = 0; k < limit.size(); ++k) {
        if (total[g][k] > limit[k]) return;
      }
      // Strictly better only: the first allocation in index order wins ties.
      if (objective < best_objective) {
        best_objective = objective;
        best = current;
      }
      return;
    }
    const std::vector<Item>& items = p.groups[g].items;
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t k = 0; k < limit.size(); ++k) total[g + 1][k] = total[g][k] + items[i].cost[k];
      current[g] = static_cast<int>(i);
      visit(g + 1, objective + items[i].omega);
    }
  }
};

}  // namespace

Solution solve_brute(const Problem& p, const SolverOptions& options) {
  double combinations = 1;
  for (const Group& g : p.groups) combinations *= static_cast<double>(g.items.size());
  MPQ_CHECK(combinations <= static_cast<double>(kMaxCombinations),
            "solver 'brute' enumerates at most 2^22 = ", kMaxCombinations,
            " allocations, this problem has ", combinations, ": use --solver mckp or ilp");
  Walk walk{p, {}, {}, {}, {}};
  for (const Budget& b : p.budgets) {
    walk.limit.push_back(internal::effective_limit(b.limit, options.tolerance));
  }
  walk.total.assign(p.groups.size() + 1, std::vector<double>(p.budgets.size(), 0.0));
  walk.current.assign(p.groups.size(), 0);
  walk.visit(0, 0.0);

  Solution s;
  s.detail = std::to_string(static_cast<int64_t>(combinations)) + " allocations enumerated";
  if (walk.best_objective == std::numeric_limits<double>::infinity()) return s;
  s.status = SolveStatus::kOptimal;
  s.choice = walk.best;
  s.objective = walk.best_objective;
  s.bound = s.objective;
  return s;
}

}  // namespace mpq
