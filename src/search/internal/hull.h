// Shared pieces of the one-budget solvers (methods.md §1, §4): each group's non-dominated items,
// the lower convex hull of its (cost, omega) points, and the LP relaxation of the multiple-choice
// knapsack over those hulls. greedy walks the hull steps, lp rounds the relaxed point, and mckp
// prunes with the relaxation's bound; keeping them in one place keeps the three consistent.
//
// The relaxation: with group g at hull point h_g(0) plus fractions of its hull steps,
//   min sum_g omega  s.t.  sum_g cost <= capacity
// is solved exactly by taking the steps in decreasing ratio -d(omega)/d(cost) until the next one
// does not fit, then a fraction of it (Dantzig; Sinha & Zoltners for MCKP). Its value is a lower
// bound on every integer answer. O(S) per bound for S hull steps (sorted once, O(S log S)).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "search/problem.h"

namespace mpq::internal {

// Solvers accept a total up to limit + tolerance * |limit|: one definition for all of them and
// for is_feasible, so a solver never calls "feasible" what evaluate_choice calls infeasible.
inline double effective_limit(double limit, double tolerance) {
  return limit + tolerance * std::abs(limit);
}

// An item's cost for `budget`, 0 when the problem has no budgets (every item then costs nothing).
inline double item_cost(const Item& item, int budget) {
  return budget < static_cast<int>(item.cost.size()) ? item.cost[budget] : 0.0;
}

struct HullPoint {
  double cost = 0;
  double omega = 0;
  int item = 0;  // index into Group::items
};

// Group g's non-dominated items for `budget`: cost strictly increasing, omega strictly decreasing.
// An item with cost >= and omega >= another's (strict in one) is dropped; of identical points the
// lowest index stays. O(K log K).
std::vector<HullPoint> pareto_items(const Group& g, int budget);

// The lower convex hull of pareto_items' points. Points on the hull's edges are kept (within a
// relative 1e-12), so OMPQ's linear omega keeps every candidate and rounding lands on adjacent bit
// widths instead of jumping from the lowest to the highest.
std::vector<HullPoint> lower_hull(const std::vector<HullPoint>& pareto);

struct HullStep {
  int64_t group = 0;
  int64_t to = 0;     // the step goes from hull point to - 1 to hull point to
  double ratio = 0;   // -d(omega) / d(cost) > 0, non-increasing along a group's hull
  double dcost = 0;   // > 0
  double domega = 0;  // < 0
};

// The relaxed optimum: group g sits at hull point at[g] plus `fraction[g]` of the next step.
struct RelaxedPoint {
  bool feasible = false;  // false when the cheapest hull points already exceed the capacity
  double objective = 0;
  double cost = 0;
  double multiplier = 0;  // the ratio of the first step not taken in full (0 when all fit)
  std::vector<int64_t> at;
  std::vector<double> fraction;  // in [0, 1); non-zero for at most one group
};

class HullRelaxation {
 public:
  HullRelaxation(const Problem& p, int budget);

  int64_t groups() const { return static_cast<int64_t>(hulls_.size()); }
  const std::vector<HullPoint>& hull(int64_t g) const { return hulls_[g]; }
  // Every group's steps, ratio decreasing; ties: lower group, then lower cost (so a group's steps
  // stay in hull order).
  const std::vector<HullStep>& steps() const { return steps_; }

  // The relaxation's value over groups [first, G) given `capacity` for them; +infinity when their
  // cheapest hull points exceed it. No allocation: the branch and bound calls it per node.
  double bound(int64_t first, double capacity) const;
  RelaxedPoint solve(double capacity) const;

 private:
  friend class SuffixBound;

  std::vector<std::vector<HullPoint>> hulls_;
  std::vector<HullStep> steps_;
  std::vector<double> suffix_cost_;   // sum over groups >= g of the cheapest hull point's cost
  std::vector<double> suffix_omega_;  // ... and its omega
};

// The relaxation's value over groups [first, G) as a function of their capacity: convex and
// piecewise linear, one piece per hull step. Built in O(S), evaluated in O(log S), so the DP can
// bound every state by its own remaining capacity.
class SuffixBound {
 public:
  SuffixBound() = default;
  SuffixBound(const HullRelaxation& relax, int64_t first);
  // +infinity when the capacity is below the groups' cheapest total.
  double operator()(double capacity) const;

 private:
  double base_cost_ = 0;
  double base_omega_ = 0;
  std::vector<double> reach_;  // total step cost once steps 0..j are taken
  std::vector<double> value_;  // total step omega once steps 0..j are taken
  std::vector<double> slope_;  // step j's d(omega) / d(cost)
};

// The Lagrangian bound's per-group terms for multiplier lambda >= 0: min_i omega_gi + lambda c_gi.
// For any completion of groups [g, G) within capacity R, sum omega >= suffix[g] - lambda R; with
// the relaxation's multiplier this equals the LP bound at the root and costs O(1) per DP state.
std::vector<double> lagrangian_suffix(const Problem& p, int budget, double lambda);

}  // namespace mpq::internal
