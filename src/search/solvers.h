// The bit-allocation solvers, one row each in solver_table() (methods.md §1, §2, §4). Adding a
// solver is one .cpp file with its solve function plus one row here.
//
//   greedy  MPQCO's MCKP greedy (§1): per group drop dominated items and keep the lower convex
//           hull of (cost, omega); start at each group's cheapest hull item; take upgrade steps in
//           decreasing -d(omega)/d(cost) order while they fit (ties: lower group index first);
//           then optional 1-swap improvement. One budget. O(G K log(G K)). Reports the LP bound
//           of the hull relaxation, so gap bounds the distance to the optimum.
//   mckp    exact MCKP for one budget: dynamic programming over the groups on lists of
//           non-dominated (cost, omega) states with exact costs, run in rounds below a threshold
//           that rises from the LP bound towards the greedy answer; Lagrangian reduced costs fix
//           the items that cannot beat the threshold, so the DP runs on a small core (mckp.cpp).
//           When a stage's list outgrows SolverOptions::mckp_states cost buckets, states in one
//           bucket are merged (cheapest kept), the possible loss is bounded and reported, and a
//           time-limited branch and bound over the hull LP bound closes the gap.
//   ilp     0/1 integer program solved by COIN-OR CBC: x_gi binary, sum_i x_gi = 1, one row per
//           budget. Any number of budgets. Status optimal / feasible / infeasible / time limit,
//           with CBC's bound and gap.
//   lp      OMPQ's linear program (§4): bits continuous between each group's lowest and highest
//           candidate, omega and cost interpolated linearly between candidates (the hull); the
//           continuous knapsack is exact by raising groups in decreasing ratio order; then each
//           group rounds to the candidate below or above its continuous bits, chosen by a small
//           DP so the total cost is the largest that fits the budget ("closest size under it").
//   brute   exhaustive enumeration (tests and tiny problems only; refuses > 2^22 combinations).
//
// pareto_frontier(): the (cost, sum omega) frontier for one budget from one problem.
#pragma once

#include <string>
#include <vector>

#include "search/problem.h"

namespace mpq {

using SolveFn = Solution (*)(const Problem&, const SolverOptions&);

struct SolverInfo {
  const char* name;
  const char* summary;  // one line for --help
  int max_budgets;      // 1, or -1 for any number
  bool exact;           // proves optimality when it reports kOptimal
  SolveFn solve;
};

const std::vector<SolverInfo>& solver_table();
// Throws mpq::Error listing the known names.
const SolverInfo& find_solver(const std::string& name);

// Runs the solver after check_problem, the budget-count check (one line naming the solver and
// the count) and check_budgets_achievable; fills Solution::seconds, cost and binding.
Solution solve(const std::string& solver, const Problem& p, const SolverOptions& options = {});

Solution solve_greedy(const Problem& p, const SolverOptions& options);
Solution solve_mckp(const Problem& p, const SolverOptions& options);
Solution solve_ilp(const Problem& p, const SolverOptions& options);
Solution solve_lp(const Problem& p, const SolverOptions& options);
Solution solve_brute(const Problem& p, const SolverOptions& options);

struct FrontierPoint {
  double cost = 0;       // total of the budget
  double objective = 0;  // sum omega, minimal for this cost (exact unless merging happened)
  std::vector<int> choice;
};

// Pareto-optimal points (cost increasing, objective strictly decreasing) for budget `budget`
// (the other budgets are ignored), thinned to at most `points` spread evenly over the cost
// range (both ends kept). Uses mckp's state lists, so one pass gives every point.
std::vector<FrontierPoint> pareto_frontier(const Problem& p, int budget, int points,
                                           const SolverOptions& options = {});

// The frontier of budget `budget` with every other budget held at its limit (methods.md §2:
// several hardware limits at once): the budget's limit swept over `points` values from its lowest
// achievable total to its own limit, each point solved exactly (ilp), infeasible and dominated
// points dropped; cost increasing, objective strictly decreasing. With one budget it equals
// pareto_frontier's points at those limits.
std::vector<FrontierPoint> constrained_frontier(const Problem& p, int budget, int points,
                                                const SolverOptions& options = {});

// Ways to pick a point on a frontier (index into it; -1 when none qualifies):
//   knee:        the point farthest below the chord joining the two ends, both axes scaled to
//                [0, 1]: where spending more stops buying much (the first point for < 3 points);
//   within loss: the cheapest point whose predicted loss is at most `max_objective`.
int pick_knee(const std::vector<FrontierPoint>& frontier);
int pick_within_loss(const std::vector<FrontierPoint>& frontier, double max_objective);

}  // namespace mpq
