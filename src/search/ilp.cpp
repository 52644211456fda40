// `ilp`: the bit-allocation problem as a 0/1 integer program solved by COIN-OR CBC (methods.md §2:
// "an integer linear program solves that choice exactly under several constraints at once", the
// HAWQ-V3 formulation):
//
//   minimise  sum_gi omega_gi x_gi   s.t.  sum_i x_gi = 1 (every group g),
//             sum_gi cost_k(g,i) x_gi <= limit_k (every budget k),   x_gi in {0, 1}.
//
// Steps, all exact:
//  1. Reduce: budgets that every choice meets are dropped, items dominated on omega and on every
//     remaining budget are dropped, groups left with one item are fixed. Rows and objective are
//     shifted by each group's least value and scaled to O(1), so that CBC's absolute tolerances
//     mean the same for sizes in bytes and for omegas near 1e-8.
//  2. Solve the LP relaxation (Clp); round and repair its answer into a feasible start.
//  3. Lagrangian fixing with the LP's duals (see lagrangian()): CBC solves models restricted to
//     the items that can still beat the best answer, so a 1000-group problem becomes a
//     branch and bound over a few hundred columns.
// Every reported number is recomputed from the chosen items on the original problem. CBC's own
// output never reaches stdout or stderr.
#include <CbcHeuristic.hpp>
#include <CbcHeuristicFPump.hpp>
#include <CbcHeuristicLocal.hpp>
#include <CbcHeuristicRINS.hpp>
#include <CbcModel.hpp>
#include <CglClique.hpp>
#include <CglFlowCover.hpp>
#include <CglGomory.hpp>
#include <CglKnapsackCover.hpp>
#include <CglMixedIntegerRounding2.hpp>
#include <CglProbing.hpp>
#include <CoinMessageHandler.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "search/problem.h"
#include "search/solvers.h"

namespace mpq {
namespace {

constexpr double kPrimalTolerance = 1e-9;  // CBC's, on budget rows scaled to O(1)

// CoinUtils' factorization updates a global (helgrind reports the race when two solves run on
// two threads), so Clp and CBC serve one solve at a time in a process.
std::mutex& coin_mutex() {
  static std::mutex mutex;
  return mutex;
}

// CBC prints a few messages even at log level 0, and a library must not write to stdout: this
// handler drops everything. CBC copies solvers during the search; clone() keeps the copies silent.
class SilentHandler : public CoinMessageHandler {
 public:
  SilentHandler() { setLogLevel(0); }
  int print() override { return 0; }
  CoinMessageHandler* clone() const override { return new SilentHandler(*this); }
};

// The model CBC solves, after the exact reductions described at the top of the file.
struct Reduced {
  std::vector<std::vector<int>> keep;  // per group: the items that stay (in item order)
  std::vector<int> budgets;            // the budgets that can bind, as indices into p.budgets
  std::vector<double> rhs;        // per kept budget: limit with tolerance, minus the fixed part
  std::vector<double> row_scale;  // per kept budget: CBC sees (cost - group min) / row_scale
  std::vector<double> group_min_cost;  // [g * budgets.size() + r]: group g's least cost on row r
  std::vector<double> group_min_omega;
  double objective_scale = 1;  // CBC sees (omega - group min) / objective_scale
};

double with_tolerance(double limit, double tolerance) {
  return std::isinf(limit) ? limit : limit + tolerance * std::abs(limit);
}

bool dominates(const Problem& p, const std::vector<int>& budgets, int64_t g, int a, int b) {
  const Item& x = p.groups[g].items[a];
  const Item& y = p.groups[g].items[b];
  if (x.omega > y.omega) return false;
  bool strict = x.omega < y.omega;
  for (int k : budgets) {
    if (x.cost[k] > y.cost[k]) return false;
    strict = strict || x.cost[k] < y.cost[k];
  }
  return strict || a < b;  // equal items: the first one stays
}

Reduced reduce(const Problem& p, double tolerance) {
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  const std::vector<double> most = max_costs(p);
  Reduced r;
  for (int k = 0; k < static_cast<int>(p.budgets.size()); ++k) {
    if (most[k] > with_tolerance(p.budgets[k].limit, tolerance)) r.budgets.push_back(k);
  }
  const int rows = static_cast<int>(r.budgets.size());
  r.keep.resize(groups);
  r.group_min_cost.assign(groups * rows, std::numeric_limits<double>::infinity());
  r.group_min_omega.assign(groups, std::numeric_limits<double>::infinity());
  r.rhs.resize(rows);
  for (int j = 0; j < rows; ++j) {
    r.rhs[j] = with_tolerance(p.budgets[r.budgets[j]].limit, tolerance);
  }
  double omega_range = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const auto& items = p.groups[g].items;
    const int n = static_cast<int>(items.size());
    double omega_max = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      bool dominated = false;
      for (int a = 0; a < n && !dominated; ++a) {
        dominated = a != i && dominates(p, r.budgets, g, a, i);
      }
      if (dominated) continue;
      r.keep[g].push_back(i);
      r.group_min_omega[g] = std::min(r.group_min_omega[g], items[i].omega);
      omega_max = std::max(omega_max, items[i].omega);
      for (int j = 0; j < rows; ++j) {
        double& m = r.group_min_cost[g * rows + j];
        m = std::min(m, items[i].cost[r.budgets[j]]);
      }
    }
    omega_range = std::max(omega_range, omega_max - r.group_min_omega[g]);
    for (int j = 0; j < rows; ++j) r.rhs[j] -= r.group_min_cost[g * rows + j];
  }
  r.objective_scale = omega_range > 0 ? omega_range : 1;
  r.row_scale.assign(rows, 0);
  for (int j = 0; j < rows; ++j) {
    double largest = 0;
    for (int64_t g = 0; g < groups; ++g) {
      for (int i : r.keep[g]) {
        largest = std::max(
            largest, p.groups[g].items[i].cost[r.budgets[j]] - r.group_min_cost[g * rows + j]);
      }
    }
    // Scaling by the remaining room makes rhs 1; a nearly exhausted budget is scaled by its
    // largest coefficient instead so that the coefficients stay O(1).
    r.row_scale[j] = std::max({std::abs(r.rhs[j]), largest, std::numeric_limits<double>::min()});
  }
  return r;
}

// The coefficients CBC sees: shifted by the group's least value and scaled (see Reduced).
double scaled_omega(const Problem& p, const Reduced& r, int64_t g, int i) {
  return (p.groups[g].items[i].omega - r.group_min_omega[g]) / r.objective_scale;
}

double scaled_cost(const Problem& p, const Reduced& r, int64_t g, int i, int row) {
  const int64_t rows = static_cast<int64_t>(r.budgets.size());
  return (p.groups[g].items[i].cost[r.budgets[row]] - r.group_min_cost[g * rows + row]) /
         r.row_scale[row];
}

// One LP (or ILP) over a subset of each group's items; a group left with one item is a constant.
struct Columns {
  std::vector<int> first;      // per group: its first column, -1 when the group is fixed
  std::vector<int64_t> group;  // per column
  std::vector<int> item;       // per column: index into the group's items
  int free_groups = 0;         // rows 0 .. free_groups-1 are the groups' equalities
  double fixed_objective = 0;  // scaled omega of the groups fixed here (beyond Reduced's)
  std::vector<double> objective;
  std::vector<double> row_upper;  // per budget row, scaled
};

Columns load(const Problem& p, const Reduced& r, const std::vector<std::vector<int>>& items,
             const std::vector<double>& rhs, OsiSolverInterface* solver) {
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  const int rows = static_cast<int>(r.budgets.size());
  Columns c;
  c.first.assign(groups, -1);
  c.row_upper.resize(rows);
  for (int j = 0; j < rows; ++j) c.row_upper[j] = rhs[j] / r.row_scale[j];
  for (int64_t g = 0; g < groups; ++g) {
    if (items[g].size() == 1) {
      c.fixed_objective += scaled_omega(p, r, g, items[g][0]);
      for (int j = 0; j < rows; ++j) c.row_upper[j] -= scaled_cost(p, r, g, items[g][0], j);
      continue;
    }
    c.first[g] = static_cast<int>(c.item.size());
    for (int i : items[g]) {
      c.group.push_back(g);
      c.item.push_back(i);
    }
    ++c.free_groups;
  }
  const int columns = static_cast<int>(c.item.size());
  // Column-ordered arrays, handed over at once (appending columns one by one copies the matrix
  // each time).
  std::vector<int> index;
  std::vector<double> value;
  std::vector<CoinBigIndex> begin;
  std::vector<int> length;
  c.objective.resize(columns);
  int equality = -1;
  for (int col = 0; col < columns; ++col) {
    const int64_t g = c.group[col];
    if (c.first[g] == col) ++equality;
    begin.push_back(static_cast<CoinBigIndex>(index.size()));
    index.push_back(equality);
    value.push_back(1.0);
    for (int j = 0; j < rows; ++j) {
      const double a = scaled_cost(p, r, g, c.item[col], j);
      if (a != 0) {
        index.push_back(c.free_groups + j);
        value.push_back(a);
      }
    }
    length.push_back(static_cast<int>(index.size()) - begin.back());
    c.objective[col] = scaled_omega(p, r, g, c.item[col]);
  }
  const CoinPackedMatrix matrix(true, c.free_groups + rows, columns,
                                static_cast<CoinBigIndex>(index.size()), value.data(), index.data(),
                                begin.data(), length.data());
  std::vector<double> row_lower(c.free_groups + rows, 1.0);
  std::vector<double> row_upper(c.free_groups + rows, 1.0);
  for (int j = 0; j < rows; ++j) {
    row_lower[c.free_groups + j] = -COIN_DBL_MAX;
    row_upper[c.free_groups + j] = c.row_upper[j];
  }
  const std::vector<double> lower(columns, 0.0), upper(columns, 1.0);
  solver->loadProblem(matrix, lower.data(), upper.data(), c.objective.data(), row_lower.data(),
                      row_upper.data());
  return c;
}

// Lagrangian reduced-cost fixing. For any multipliers lambda >= 0 and any choice x that meets
// the rows, sum omega'(x) >= L + sum_g excess_g(x_g), where rc_gi = omega'_gi + lambda . a'_gi,
// excess_gi = rc_gi - min_i rc_gi >= 0 and L = sum_g min_i rc_gi - lambda . rhs'. So a choice
// better than an incumbent z uses only items with excess below z - L, and the optimum of the
// model restricted to items with excess <= tau is the global optimum as soon as it is within
// tau of L. With the LP's duals L is the LP bound and near-optimal choices differ from the LP
// in a few groups, so the restricted models are small and CBC's nodes cheap. The bound holds
// for any lambda: the LP's accuracy cannot make the fixing wrong.
struct Lagrangian {
  std::vector<std::vector<double>> excess;  // [g][position in Reduced::keep[g]]
  double bound = 0;                         // L, in the scaled objective
};

Lagrangian lagrangian(const Problem& p, const Reduced& r, const std::vector<double>& lambda,
                      const std::vector<double>& rhs) {
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  const int rows = static_cast<int>(r.budgets.size());
  Lagrangian l;
  l.excess.resize(groups);
  for (int j = 0; j < rows; ++j) l.bound -= lambda[j] * rhs[j] / r.row_scale[j];
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<double>& e = l.excess[g];
    for (int i : r.keep[g]) {
      double value = scaled_omega(p, r, g, i);
      for (int j = 0; j < rows; ++j) value += lambda[j] * scaled_cost(p, r, g, i, j);
      e.push_back(value);
    }
    const double least = *std::min_element(e.begin(), e.end());
    for (double& v : e) v -= least;
    l.bound += least;
  }
  return l;
}

// The kept items with excess <= tau, plus a margin for rounding in these sums (an item too
// many is harmless, one too few is not).
std::vector<std::vector<int>> items_within(const Reduced& r, const Lagrangian& l, double tau,
                                           int64_t* count) {
  const double limit = tau + 1e-9 * (1 + std::abs(tau) + std::abs(l.bound));
  std::vector<std::vector<int>> items(r.keep.size());
  *count = 0;
  for (size_t g = 0; g < r.keep.size(); ++g) {
    for (size_t i = 0; i < r.keep[g].size(); ++i) {
      if (l.excess[g][i] <= limit) items[g].push_back(r.keep[g][i]);
    }
    *count += static_cast<int64_t>(items[g].size());
  }
  return items;
}

// The first tau: about one item per group (the LP's own have excess 0) and a few dozen more;
// never beyond the incumbent's gap, which is already exact.
double first_threshold(const Lagrangian& l, int64_t free_groups, double gap) {
  std::vector<double> all;
  for (const auto& e : l.excess) {
    if (e.size() > 1) all.insert(all.end(), e.begin(), e.end());
  }
  if (all.empty()) return 0;
  const int64_t more = std::max<int64_t>(20, free_groups / 32);  // measured on bench_search
  const size_t rank = std::min(all.size() - 1, static_cast<size_t>(free_groups + more));
  std::nth_element(all.begin(), all.begin() + rank, all.end());
  return std::min(all[rank], gap);
}

// The next tau when the restricted model had no choice at all: grow until it is the whole model.
double next_threshold(const Lagrangian& l, double tau) {
  double next = std::numeric_limits<double>::infinity();
  for (const auto& e : l.excess) {
    for (double v : e) {
      if (v > tau) next = std::min(next, v);
    }
  }
  return std::max(4 * tau, next);
}

// A feasible start from the LP relaxation gives CBC a cutoff at once and bounds the Lagrangian
// fixing. Each group takes its item with the largest LP value
// (only a few groups, at most one per budget row, are fractional); budgets that this breaks are
// repaired by the moves that remove the most scaled excess per omega' added; then single-group
// moves that lower omega' and keep every budget are taken, best first, while any exists.
// O((repairs + moves) G K B). Empty when the repair gets stuck.
std::vector<int> lp_start(const Problem& p, const Reduced& r, const Columns& all, const double* x,
                          const std::vector<double>& rhs) {
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  const int rows = static_cast<int>(r.budgets.size());
  std::vector<int> choice(groups);  // position in r.keep[g]
  for (int64_t g = 0; g < groups; ++g) {
    if (all.first[g] < 0) continue;
    const int n = static_cast<int>(r.keep[g].size());
    for (int i = 1; i < n; ++i) {
      if (x[all.first[g] + i] > x[all.first[g] + choice[g]]) choice[g] = i;
    }
  }
  std::vector<double> upper(rows), total(rows, 0.0);
  for (int j = 0; j < rows; ++j) upper[j] = rhs[j] / r.row_scale[j];
  const auto cost = [&](int64_t g, int i, int j) { return scaled_cost(p, r, g, r.keep[g][i], j); };
  const auto omega = [&](int64_t g, int i) { return scaled_omega(p, r, g, r.keep[g][i]); };
  for (int64_t g = 0; g < groups; ++g) {
    for (int j = 0; j < rows; ++j) total[j] += cost(g, choice[g], j);
  }
  const auto excess = [&](const std::vector<double>& t) {
    double e = 0;
    for (int j = 0; j < rows; ++j) e += std::max(0.0, t[j] - upper[j]);
    return e;
  };
  std::vector<double> moved(rows);
  const auto move_to = [&](int64_t g, int i) {
    for (int j = 0; j < rows; ++j) moved[j] = total[j] - cost(g, choice[g], j) + cost(g, i, j);
  };
  for (double e = excess(total); e > 0; e = excess(total)) {
    double best_score = 0;
    int64_t best_group = -1;
    int best_item = -1;
    for (int64_t g = 0; g < groups; ++g) {
      for (int i = 0; i < static_cast<int>(r.keep[g].size()); ++i) {
        if (i == choice[g]) continue;
        move_to(g, i);
        const double removed = e - excess(moved);
        if (removed <= 0) continue;
        const double score = removed / std::max(omega(g, i) - omega(g, choice[g]), 1e-12);
        if (score > best_score) {
          best_score = score;
          best_group = g;
          best_item = i;
        }
      }
    }
    if (best_group < 0) return {};
    move_to(best_group, best_item);
    total = moved;
    choice[best_group] = best_item;
  }
  for (int64_t step = 0; step < groups; ++step) {
    double best_gain = 0;
    int64_t best_group = -1;
    int best_item = -1;
    for (int64_t g = 0; g < groups; ++g) {
      for (int i = 0; i < static_cast<int>(r.keep[g].size()); ++i) {
        const double gain = omega(g, choice[g]) - omega(g, i);
        if (gain <= best_gain) continue;
        move_to(g, i);
        bool fits = true;
        for (int j = 0; j < rows && fits; ++j) fits = moved[j] <= upper[j];
        if (fits) {
          best_gain = gain;
          best_group = g;
          best_item = i;
        }
      }
    }
    if (best_group < 0) break;
    move_to(best_group, best_item);
    total = moved;
    choice[best_group] = best_item;
  }
  for (int64_t g = 0; g < groups; ++g) choice[g] = r.keep[g][choice[g]];
  return choice;
}

struct CbcResult {
  std::vector<int> choice;  // empty when CBC has no solution
  bool optimal = false;
  bool infeasible = false;  // of the model CBC saw (with fixing: no choice beats the start)
  bool stopped = false;     // time limit (or another limit) before the search finished
  double bound = 0;         // on the original objective, over the model CBC saw
  int nodes = 0;
  int iterations = 0;
  int columns = 0;
  int rows = 0;
};

CbcResult run_cbc(const Problem& p, const Reduced& r, const std::vector<std::vector<int>>& items,
                  const std::vector<double>& rhs, const std::vector<int>& start, double seconds) {
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  double constant = 0;  // the omega Reduced shifted out of the objective
  for (int64_t g = 0; g < groups; ++g) constant += r.group_min_omega[g];
  CbcResult out;
  SilentHandler handler;
  OsiClpSolverInterface lp;
  lp.passInMessageHandler(&handler);
  const Columns c = load(p, r, items, rhs, &lp);
  const int columns = static_cast<int>(c.item.size());
  out.columns = columns;
  out.rows = c.free_groups + static_cast<int>(r.budgets.size());
  if (columns == 0) {
    // Fixing left every group one item: the answer is known without a search.
    bool fits = true;
    for (double u : c.row_upper) fits = fits && u >= -kPrimalTolerance;
    out.optimal = fits;
    out.infeasible = !fits;
    if (fits) {
      for (const auto& kept : items) out.choice.push_back(kept.front());
    }
    out.bound = constant + c.fixed_objective * r.objective_scale;
    return out;
  }
  for (int col = 0; col < columns; ++col) lp.setInteger(col);
  // CBC accepts a row violated by up to its primal tolerance: a small tolerance, taken off each
  // budget row, makes what CBC accepts exactly what the budgets allow.
  lp.setDblParam(OsiPrimalTolerance, kPrimalTolerance);
  lp.setHintParam(OsiDoDualInInitial, true, OsiHintDo);
  for (size_t j = 0; j < r.budgets.size(); ++j) {
    lp.setRowUpper(c.free_groups + static_cast<int>(j), c.row_upper[j] - kPrimalTolerance);
  }

  CbcModel model(lp);
  model.passInMessageHandler(&handler);
  model.solver()->passInMessageHandler(&handler);
  model.setLogLevel(0);
  model.setUseElapsedTime(true);  // SolverOptions::time_limit_s is wall time
  model.setMaximumSeconds(seconds);
  // Stop only when the tree is exhausted: the answer is the optimum, not one within a gap.
  model.setAllowableGap(0);
  model.setAllowableFractionGap(0);
  model.setAllowablePercentageGap(0);
  // CBC prunes nodes that cannot beat the incumbent by this much; its default (1e-5 of the
  // scaled objective) could hide a better answer, so only rounding noise is ignored.
  model.setCutoffIncrement(1e-9);

  // The cut generators and heuristics of CBC's standard driver, set up directly: CbcMain1 (the
  // command-line driver) was slower on these models and keeps its parser state in globals.
  CglProbing probing;
  probing.setUsingObjective(1);
  probing.setMaxPass(1);
  probing.setMaxProbe(10);
  probing.setMaxLook(10);
  CglGomory gomory;
  gomory.setLimit(300);
  CglKnapsackCover knapsack;
  CglClique clique;
  clique.setStarCliqueReport(false);
  clique.setRowCliqueReport(false);
  CglMixedIntegerRounding2 mir;
  CglFlowCover flow;
  model.addCutGenerator(&probing, -1, "Probing");
  model.addCutGenerator(&gomory, -1, "Gomory");
  model.addCutGenerator(&knapsack, -1, "Knapsack");
  model.addCutGenerator(&clique, -1, "Clique");
  model.addCutGenerator(&mir, -1, "MixedIntegerRounding2");
  model.addCutGenerator(&flow, -1, "FlowCover");
  CbcRounding rounding(model);
  CbcHeuristicLocal local(model);
  CbcHeuristicFPump pump(model);
  CbcHeuristicRINS rins(model);
  model.addHeuristic(&rounding);
  model.addHeuristic(&local);
  model.addHeuristic(&pump);
  model.addHeuristic(&rins);

  if (!start.empty() && columns > 0) {
    std::vector<double> x(columns, 0.0);
    double value = 0;
    bool inside = true;
    for (int64_t g = 0; g < groups && inside; ++g) {
      const auto& kept = items[g];
      const auto at = std::find(kept.begin(), kept.end(), start[g]);
      inside = at != kept.end();
      if (!inside || c.first[g] < 0) continue;
      const int col = c.first[g] + static_cast<int>(at - kept.begin());
      x[col] = 1;
      value += c.objective[col];
    }
    if (inside) model.setBestSolution(x.data(), columns, value, true);
  }

  model.branchAndBound();

  out.nodes = model.getNodeCount();
  out.iterations = model.getIterationCount();
  out.optimal = model.isProvenOptimal();
  out.infeasible = model.isProvenInfeasible();
  out.stopped = model.status() == 1;
  out.bound = constant + (c.fixed_objective + model.getBestPossibleObjValue()) * r.objective_scale;
  const double* x = model.bestSolution();
  if (x == nullptr) return out;
  out.choice.resize(groups);
  for (int64_t g = 0; g < groups; ++g) {
    if (c.first[g] < 0) {
      out.choice[g] = items[g].front();
      continue;
    }
    // Binary only within CBC's integer tolerance: the item with the largest value is the choice.
    const int n = static_cast<int>(items[g].size());
    int best = 0;
    for (int i = 1; i < n; ++i) {
      if (x[c.first[g] + i] > x[c.first[g] + best]) best = i;
    }
    out.choice[g] = items[g][best];
  }
  return out;
}

}  // namespace

Solution solve_ilp(const Problem& p, const SolverOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  check_problem(p);
  MPQ_CHECK(options.time_limit_s > 0, "ilp: time_limit_s must be positive, found ",
            options.time_limit_s);
  MPQ_CHECK(options.tolerance >= 0, "ilp: tolerance must be >= 0, found ", options.tolerance);
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  const auto conclude = [&](SolveStatus status, const std::vector<int>& choice, double bound,
                            std::string detail) {
    Solution s;
    if (!choice.empty() || p.groups.empty()) {
      s = evaluate_choice(p, choice);
      s.bound = status == SolveStatus::kOptimal ? s.objective : std::min(bound, s.objective);
      s.gap = s.objective - s.bound;
    } else if (status == SolveStatus::kTimeLimit) {
      s.bound = bound;  // what was proved before the limit, even without a solution
    }
    s.status = status;
    s.detail = std::move(detail);
    s.seconds = elapsed();
    return s;
  };

  const Reduced r = reduce(p, options.tolerance);
  const int64_t groups = static_cast<int64_t>(p.groups.size());
  const int rows = static_cast<int>(r.budgets.size());
  for (int j = 0; j < rows; ++j) {
    if (r.rhs[j] < 0) {
      return conclude(SolveStatus::kInfeasible, {}, 0,
                      "budget '" + p.budgets[r.budgets[j]].name + "' is below its minimum");
    }
  }
  bool all_fixed = true;
  for (const auto& keep : r.keep) all_fixed = all_fixed && keep.size() < 2;
  if (rows == 0 || all_fixed) {
    // No budget can bind (or nothing is left to choose): the least omega per group is optimal.
    std::vector<int> choice(groups);
    for (int64_t g = 0; g < groups; ++g) {
      int best = r.keep[g].front();
      for (int i : r.keep[g]) {
        if (p.groups[g].items[i].omega < p.groups[g].items[best].omega) best = i;
      }
      choice[g] = best;
    }
    return conclude(SolveStatus::kOptimal, choice, 0, "no budget can bind; cbc not needed");
  }

  double constant = 0;  // the omega Reduced shifted out of the objective
  for (int64_t g = 0; g < groups; ++g) constant += r.group_min_omega[g];
  const auto scaled = [&](const std::vector<int>& choice) {
    double z = 0;
    for (int64_t g = 0; g < groups; ++g) z += scaled_omega(p, r, g, choice[g]);
    return z;
  };
  const std::lock_guard<std::mutex> lock(coin_mutex());  // waiting counts against the limit
  std::vector<double> rhs = r.rhs;
  std::vector<int> start;
  double start_objective = std::numeric_limits<double>::infinity();
  // CBC's rows already leave room for its tolerance, so its answer should meet the budgets; if
  // the rounded answer still breaks one by more than SolverOptions::tolerance, that row is
  // tightened by the excess and everything is solved again. A third failure is a bug.
  for (int retry = 0; retry < 3; ++retry) {
    // The LP relaxation: its bound, and its dual prices for the start and the fixing.
    SilentHandler handler;
    OsiClpSolverInterface relaxation;
    relaxation.passInMessageHandler(&handler);
    const Columns all = load(p, r, r.keep, rhs, &relaxation);
    // Dual simplex from the slack basis: Clp's default crash (Idiot) costs more here.
    relaxation.setHintParam(OsiDoDualInInitial, true, OsiHintDo);
    relaxation.initialSolve();
    if (relaxation.isProvenPrimalInfeasible()) {
      return conclude(SolveStatus::kInfeasible, {}, 0, "the LP relaxation is infeasible");
    }
    double lp_bound = -std::numeric_limits<double>::infinity();
    std::vector<double> lambda(rows, 0.0);  // 0 is valid too, only weaker
    const bool lp_solved = relaxation.isProvenOptimal();
    if (lp_solved) {
      lp_bound = constant + (all.fixed_objective + relaxation.getObjValue()) * r.objective_scale;
      const double* price = relaxation.getRowPrice();
      for (int j = 0; j < rows; ++j) lambda[j] = std::max(0.0, -price[all.free_groups + j]);
      if (retry == 0) {
        start = lp_start(p, r, all, relaxation.getColSolution(), rhs);
        if (!start.empty() && !is_feasible(p, start, options.tolerance)) start.clear();
        if (!start.empty()) start_objective = evaluate_choice(p, start).objective;
      }
    }

    // Restricted models of growing tau, each solved exactly, until the best answer is within
    // tau of L (then it is optimal) or the model is whole: one small pass, at most one more.
    const Lagrangian lag = lagrangian(p, r, lambda, rhs);
    std::vector<int> best = start;
    double best_scaled = start.empty() ? std::numeric_limits<double>::infinity() : scaled(start);
    double tau = first_threshold(lag, all.free_groups, best_scaled - lag.bound);
    int64_t total_items = 0;
    for (const auto& keep : r.keep) total_items += static_cast<int64_t>(keep.size());
    int passes = 0, last_columns = 0;
    int64_t nodes = 0, iterations = 0;
    const auto describe = [&](const char* note) {
      std::ostringstream s;
      s << "cbc: " << passes << " pass(es), the last on " << last_columns << " of "
        << all.item.size() << " columns after Lagrangian fixing; " << nodes << " nodes, "
        << iterations << " simplex iterations";
      if (!start.empty()) s << "; start (LP rounded and repaired) " << start_objective;
      if (retry > 0) s << "; re-solved with tightened budgets";
      return s.str() + note;
    };
    bool tightened = false;
    while (!tightened) {
      int64_t count = 0;
      const std::vector<std::vector<int>> items = items_within(r, lag, tau, &count);
      const bool whole = count == total_items;
      const double left = std::max(options.time_limit_s - elapsed(), 1e-3);
      const CbcResult c = run_cbc(p, r, items, rhs, best, left);
      ++passes;
      last_columns = c.columns;
      nodes += c.nodes;
      iterations += c.iterations;
      if (!c.choice.empty() && !is_feasible(p, c.choice, options.tolerance)) {
        MPQ_ASSERT(retry < 2, "ilp: CBC's answer breaks a budget after two re-solves (",
                   describe(")"));
        const Solution e = evaluate_choice(p, c.choice);
        for (int j = 0; j < rows; ++j) {
          const int k = r.budgets[j];
          const double over = e.cost[k] - with_tolerance(p.budgets[k].limit, options.tolerance);
          if (over > 0) rhs[j] -= over + kPrimalTolerance * r.row_scale[j];
        }
        tightened = true;
        continue;
      }
      if (!c.choice.empty() && scaled(c.choice) < best_scaled) {
        best = c.choice;
        best_scaled = scaled(c.choice);
      }
      if (!c.optimal && !c.infeasible) {
        MPQ_ASSERT(c.stopped, "ilp: CBC stopped for no known reason (", describe(")"));
        // A choice outside the restricted model costs at least L + tau.
        const double outside = constant + (lag.bound + tau) * r.objective_scale;
        const double bound = std::max(lp_bound, whole ? c.bound : std::min(c.bound, outside));
        return conclude(SolveStatus::kTimeLimit, best, bound,
                        describe(best.empty() ? "; no solution in time" : ""));
      }
      if (whole && best.empty()) return conclude(SolveStatus::kInfeasible, {}, 0, describe(""));
      if (whole || (!best.empty() && best_scaled - lag.bound <= tau)) {
        return conclude(SolveStatus::kOptimal, best, 0, describe(""));
      }
      tau = best.empty() ? next_threshold(lag, tau) : best_scaled - lag.bound;
    }
  }
  MPQ_ASSERT(false, "ilp: unreachable");
  return {};
}

}  // namespace mpq
