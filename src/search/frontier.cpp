// Frontiers under several budgets and picking a point on a frontier (methods.md §2). See
// solvers.h.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "search/solvers.h"

namespace mpq {

std::vector<FrontierPoint> constrained_frontier(const Problem& p, int budget, int points,
                                                const SolverOptions& options) {
  check_problem(p);
  MPQ_CHECK(budget >= 0 && size_t(budget) < p.budgets.size(), "frontier: budget ", budget,
            " out of range (", p.budgets.size(), " budgets)");
  MPQ_CHECK(points >= 2, "frontier: expected at least 2 points, found ", points);
  const double lowest = min_costs(p)[size_t(budget)];
  const double highest = p.budgets[size_t(budget)].limit;
  std::vector<FrontierPoint> found;
  for (int i = 0; i < points; ++i) {
    Problem q = p;
    q.budgets[size_t(budget)].limit = lowest + (highest - lowest) * double(i) / double(points - 1);
    Solution s = solve("ilp", q, options);
    if (s.choice.empty()) continue;  // the other budgets cannot hold at this limit
    found.push_back({s.cost[size_t(budget)], s.objective, s.choice});
  }
  std::sort(found.begin(), found.end(), [](const FrontierPoint& a, const FrontierPoint& b) {
    return a.cost < b.cost || (a.cost == b.cost && a.objective < b.objective);
  });
  std::vector<FrontierPoint> frontier;
  for (const auto& f : found) {
    if (!frontier.empty() && f.objective >= frontier.back().objective - 1e-12) continue;
    frontier.push_back(f);
  }
  return frontier;
}

int pick_knee(const std::vector<FrontierPoint>& f) {
  if (f.empty()) return -1;
  if (f.size() < 3) return 0;
  const double c0 = f.front().cost, c1 = f.back().cost;
  const double o0 = f.front().objective, o1 = f.back().objective;
  const double dc = c1 - c0 > 0 ? c1 - c0 : 1, dobj = o0 - o1 > 0 ? o0 - o1 : 1;
  // Scaled: x from 0 to 1 as cost rises, y from 1 to 0 as the objective falls; the chord is
  // x + y = 1 and a point's distance below it is proportional to 1 - x - y.
  int best = 0;
  double best_gap = -1;
  for (size_t i = 0; i < f.size(); ++i) {
    const double x = (f[i].cost - c0) / dc, y = (f[i].objective - o1) / dobj;
    const double gap = 1 - x - y;
    if (gap > best_gap + 1e-12) {
      best_gap = gap;
      best = int(i);
    }
  }
  return best;
}

int pick_within_loss(const std::vector<FrontierPoint>& f, double max_objective) {
  for (size_t i = 0; i < f.size(); ++i)
    if (f[i].objective <= max_objective) return int(i);
  return -1;
}

}  // namespace mpq
