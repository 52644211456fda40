// OMPQ's linear program (methods.md §4): bits continuous between each group's candidates, omega
// and cost interpolated between them. Over each group's lower convex hull this is a continuous
// knapsack, solved exactly by raising groups in decreasing ratio order (internal/hull.h); OMPQ's
// omega is linear in the bits, so the hull keeps every candidate and the relaxed bits lie between
// two adjacent candidates. Each such group then takes the candidate below or above, chosen by a DP
// so the total cost is the largest that fits the budget ("the closest size under it"). O(G K log(G
// K)); the DP runs over the groups left between candidates, which the exact continuous knapsack
// keeps to at most one.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/error.h"
#include "search/internal/hull.h"
#include "search/solvers.h"

namespace mpq {

namespace {

struct Rounding {
  int64_t group = 0;
  int up_item = 0;  // the candidate above the relaxed bits
  double dcost = 0;
  double domega = 0;
};

struct RoundState {
  double cost = 0;
  double omega = 0;
  int32_t parent = -1;
  bool up = false;
};

// Which roundings to take upward: the subset whose extra cost is the largest that is <= room,
// ties to the lower omega. A DP over lists of (extra cost, extra omega) sorted by cost, one list
// per decision, with back pointers.
std::vector<bool> closest_under(const std::vector<Rounding>& options, double room) {
  std::vector<std::vector<RoundState>> stages(1, {RoundState{}});
  for (const Rounding& r : options) {
    const std::vector<RoundState>& prev = stages.back();
    std::vector<RoundState> next;
    next.reserve(2 * prev.size());
    size_t a = 0, b = 0;
    auto push = [&](RoundState s) {
      if (!next.empty() && next.back().cost == s.cost) {
        if (s.omega < next.back().omega) next.back() = s;
      } else {
        next.push_back(s);
      }
    };
    // Merge "down" (prev as is) and "up" (prev + r) by cost.
    while (a < prev.size() || b < prev.size()) {
      const double up_cost = b < prev.size() ? prev[b].cost + r.dcost : 0;
      if (b < prev.size() && up_cost > room) b = prev.size();  // sorted: the rest is over too
      if (a < prev.size() && (b >= prev.size() || prev[a].cost <= up_cost)) {
        push({prev[a].cost, prev[a].omega, static_cast<int32_t>(a), false});
        ++a;
      } else if (b < prev.size()) {
        push({up_cost, prev[b].omega + r.domega, static_cast<int32_t>(b), true});
        ++b;
      }
    }
    stages.push_back(std::move(next));
  }
  std::vector<bool> up(options.size(), false);
  int32_t at = static_cast<int32_t>(stages.back().size()) - 1;  // the largest cost
  for (size_t k = options.size(); k > 0; --k) {
    const RoundState& s = stages[k][at];
    up[k - 1] = s.up;
    at = s.parent;
  }
  return up;
}

}  // namespace

Solution solve_lp(const Problem& p, const SolverOptions& options) {
  MPQ_CHECK(p.budgets.size() <= 1, "solver 'lp' handles one budget, found ", p.budgets.size(),
            ": use --solver ilp");
  const double limit = p.budgets.empty()
                           ? std::numeric_limits<double>::infinity()
                           : internal::effective_limit(p.budgets[0].limit, options.tolerance);
  const internal::HullRelaxation relax(p, 0);
  const internal::RelaxedPoint relaxed = relax.solve(limit);
  Solution s;
  if (!relaxed.feasible) {
    s.detail = "the cheapest candidates already exceed the budget";
    return s;
  }

  const int64_t n = relax.groups();
  s.choice.resize(n);
  double floor_cost = 0;
  std::vector<Rounding> between;
  for (int64_t g = 0; g < n; ++g) {
    const std::vector<internal::HullPoint>& h = relax.hull(g);
    const internal::HullPoint& down = h[relaxed.at[g]];
    s.choice[g] = down.item;
    floor_cost += down.cost;
    if (relaxed.fraction[g] > 0) {
      const internal::HullPoint& up = h[relaxed.at[g] + 1];
      between.push_back({g, up.item, up.cost - down.cost, up.omega - down.omega});
    }
  }
  const std::vector<bool> up = closest_under(between, limit - floor_cost);
  for (size_t k = 0; k < between.size(); ++k) {
    if (up[k]) s.choice[between[k].group] = between[k].up_item;
  }

  for (int64_t g = 0; g < n; ++g) s.objective += p.groups[g].items[s.choice[g]].omega;
  s.bound = std::min(relaxed.objective, s.objective);
  s.gap = s.objective - s.bound;
  // Equal up to the rounding of two summation orders: no group was left between candidates.
  s.status = s.gap <= 1e-12 * std::max(1.0, std::abs(s.objective)) ? SolveStatus::kOptimal
                                                                   : SolveStatus::kFeasible;
  std::ostringstream detail;
  detail << "continuous objective " << relaxed.objective << ", " << between.size()
         << " group(s) between candidates rounded to the closest cost under the budget";
  s.detail = detail.str();
  return s;
}

}  // namespace mpq
