// The bit-allocation problem every solver reads (methods.md §1, §2, §4): groups of layers that
// take one choice together (a layer, or layers tied to equal bits), each with candidate items
// (weight bits, activation bits, predicted loss Omega, one cost per budget), and budgets:
//
//   minimise  sum_g omega(g, i_g)   subject to   sum_g cost_k(g, i_g) <= limit_k  for every k.
//
// With one budget this is the multiple-choice knapsack problem (MCKP); with several, a
// multi-dimensional one that `ilp` solves. A solver reports two separate things (HiGHS style):
// whether the call worked (it throws only for bad input) and what it concluded (Solution::status).
// Infeasible is an answer, not an exception.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpq {

struct Item {
  int weight_bits = 8;
  int act_bits = 8;
  double omega = 0;          // predicted loss increase (summed over the group's layers)
  std::vector<double> cost;  // one per budget, in Problem::budgets order (summed over layers)
};

struct Group {
  std::string name;                 // the first layer's name
  std::vector<std::string> layers;  // the layers that take this choice (tied: several)
  std::vector<Item> items;          // at least one; a pinned layer has exactly one
};

struct Budget {
  std::string name;  // "size", "bops", "latency", ... (for messages and reports)
  double limit = 0;  // sum of the chosen items' cost[k] must not exceed it
};

struct Problem {
  std::vector<Group> groups;
  std::vector<Budget> budgets;
};

enum class SolveStatus { kOptimal, kFeasible, kInfeasible, kTimeLimit };
const char* status_name(SolveStatus s);  // "optimal", "feasible", "infeasible", "time limit"

struct Solution {
  SolveStatus status = SolveStatus::kInfeasible;
  std::vector<int> choice;  // item index per group; empty when no feasible point was found
  double objective = 0;     // sum of the chosen omegas
  // A proven lower bound on the optimal objective (= objective when optimal). Greedy and LP
  // report the LP-relaxation bound; the gap says how far from optimal the answer can be.
  double bound = 0;
  double gap = 0;              // objective - bound (absolute, >= 0)
  std::vector<double> cost;    // totals per budget of the chosen items
  std::vector<bool> binding;   // per budget: the constraint is tight at the answer (see below)
  double seconds = 0;          // wall time of the solve
  std::string detail;          // solver-specific note (discretisation error, nodes, ...)
};

struct SolverOptions {
  double time_limit_s = 60;   // ilp, and mckp's branch and bound
  int64_t mckp_states = 4096;  // mckp: cost buckets kept per stage before merging (see mckp)
  bool one_swap = true;        // greedy: try 1-swap improvements after the ratio pass
  double tolerance = 1e-9;     // relative: cost <= limit * (1 + tolerance) counts as feasible
};

// Throws mpq::Error (naming the group) when a group has no items, an item's cost vector does not
// have one entry per budget, or a value is not finite.
void check_problem(const Problem& p);

// The cheapest achievable total of each budget on its own (sum over groups of the minimum cost).
std::vector<double> min_costs(const Problem& p);
std::vector<double> max_costs(const Problem& p);  // the same with the maximum

// Before any solver runs: throws mpq::Error when some budget is below its minimum achievable
// total, with one line that lists every budget's limit and its minimum, e.g.
//   "budgets cannot be met: size 1.20 MB < minimum 1.46 MB (every layer at its lowest bits)".
void check_budgets_achievable(const Problem& p);

// Totals, objective and binding flags of a given choice (status kFeasible, or kInfeasible when it
// breaks a budget). Budget k is binding when some single move of one group to an item with a
// smaller omega would break budget k: it is a constraint that stops the objective improving.
Solution evaluate_choice(const Problem& p, const std::vector<int>& choice);

// blocking_budgets(p, choice, g): the budgets that block group g's moves to items with a smaller
// omega (empty when g is already at its smallest omega); the plan's per-layer "reason".
std::vector<int> blocking_budgets(const Problem& p, const std::vector<int>& choice, int64_t g,
                                  double tolerance = 1e-9);

bool is_feasible(const Problem& p, const std::vector<int>& choice, double tolerance = 1e-9);

}  // namespace mpq
