// The bit-allocation solvers against plain references (methods.md §1, §4): an enumeration of
// every allocation written here (not the brute solver under test), the LP value as the maximum of
// the Lagrangian dual, OMPQ's rounding rule by enumeration, and the Pareto set of all
// combinations. Instances are small and random with fixed seeds; some have equal costs and omegas
// on purpose. Timings are printed, never asserted.
#include "search/solvers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "search/problem.h"

namespace mpq {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool near(double a, double b, double rel = 1e-9) {
  return std::abs(a - b) <= rel * std::max({1.0, std::abs(a), std::abs(b)});
}

// groups in [2, max_groups], items in [1, 5], real-valued costs and omegas, or (ties) values from
// a small set so several items share a cost or an omega; each limit uniform in [min, max] total.
Problem random_problem(std::mt19937_64& rng, int budgets, bool ties, int max_groups = 8) {
  std::uniform_int_distribution<int> n_groups(2, max_groups), n_items(1, 5), small(0, 3);
  std::uniform_real_distribution<double> omega(0.0, 5.0), cost(0.1, 10.0), unit(0.0, 1.0);
  Problem p;
  for (int k = 0; k < budgets; ++k) p.budgets.push_back({"b" + std::to_string(k), 0});
  const int groups = n_groups(rng);
  for (int g = 0; g < groups; ++g) {
    Group group;
    group.name = "layer" + std::to_string(g);
    group.layers = {group.name};
    const int items = n_items(rng);
    for (int i = 0; i < items; ++i) {
      Item item;
      item.weight_bits = 2 + i;
      item.omega = ties ? 0.5 * small(rng) : omega(rng);
      for (int k = 0; k < budgets; ++k) item.cost.push_back(ties ? 1.0 + small(rng) : cost(rng));
      group.items.push_back(item);
    }
    p.groups.push_back(group);
  }
  const std::vector<double> lo = min_costs(p), hi = max_costs(p);
  for (int k = 0; k < budgets; ++k) p.budgets[k].limit = lo[k] + unit(rng) * (hi[k] - lo[k]);
  return p;
}

// Calls f(choice, objective, totals) for every allocation; sums in group order like the solvers.
template <typename F>
void enumerate(const Problem& p, const F& f) {
  std::vector<int> choice(p.groups.size(), 0);
  while (true) {
    double objective = 0;
    std::vector<double> total(p.budgets.size(), 0.0);
    for (size_t g = 0; g < p.groups.size(); ++g) {
      const Item& item = p.groups[g].items[choice[g]];
      objective += item.omega;
      for (size_t k = 0; k < total.size(); ++k) total[k] += item.cost[k];
    }
    f(choice, objective, total);
    size_t g = 0;
    while (g < choice.size() && ++choice[g] == static_cast<int>(p.groups[g].items.size())) {
      choice[g++] = 0;
    }
    if (g == choice.size()) return;
  }
}

bool within(const Problem& p, const std::vector<double>& total, double tolerance = 1e-9) {
  for (size_t k = 0; k < total.size(); ++k) {
    if (total[k] > p.budgets[k].limit + tolerance * std::abs(p.budgets[k].limit)) return false;
  }
  return true;
}

// The optimum by enumeration; +infinity when no allocation fits.
double reference_optimum(const Problem& p) {
  double best = kInf;
  enumerate(p, [&](const std::vector<int>&, double objective, const std::vector<double>& total) {
    if (within(p, total)) best = std::min(best, objective);
  });
  return best;
}

TEST(SolverTable, RowsAreUniqueAndFindable) {
  std::set<std::string> names;
  for (const SolverInfo& s : solver_table()) {
    EXPECT_TRUE(names.insert(s.name).second) << "two rows named " << s.name;
    EXPECT_EQ(&find_solver(s.name), &s);
    EXPECT_NE(std::string(s.summary), "");
    EXPECT_TRUE(s.max_budgets == 1 || s.max_budgets == -1) << s.name;
  }
  const std::vector<std::string> expected = {"greedy", "mckp", "ilp", "lp", "brute"};
  ASSERT_EQ(solver_table().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(solver_table()[i].name, expected[i]);
  try {
    find_solver("dp");
    FAIL() << "no error for an unknown solver";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dp'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("greedy, mckp, ilp, lp, brute"), std::string::npos)
        << e.what();
  }
}

TEST(ExactSolvers, MatchBruteForceOnRandomInstances) {
  std::mt19937_64 rng(20240601);
  int checked = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int budgets = trial % 4 == 3 ? 2 : 1;
    const Problem p = random_problem(rng, budgets, trial % 5 == 0);
    const double optimum = reference_optimum(p);
    for (const SolverInfo& row : solver_table()) {
      if (!row.exact || (row.max_budgets >= 0 && budgets > row.max_budgets)) continue;
      SCOPED_TRACE(std::string(row.name) + " trial " + std::to_string(trial));
      const Solution s = solve(row.name, p);
      if (optimum == kInf) {
        EXPECT_EQ(s.status, SolveStatus::kInfeasible);
        EXPECT_TRUE(s.choice.empty());
        continue;
      }
      ASSERT_EQ(s.status, SolveStatus::kOptimal) << s.detail;
      ASSERT_EQ(s.choice.size(), p.groups.size());
      EXPECT_TRUE(is_feasible(p, s.choice));
      EXPECT_TRUE(near(s.objective, optimum)) << s.objective << " vs " << optimum;
      EXPECT_TRUE(near(evaluate_choice(p, s.choice).objective, optimum));
      EXPECT_TRUE(near(s.bound, optimum));
      EXPECT_EQ(s.cost.size(), p.budgets.size());
      ++checked;
    }
  }
  EXPECT_GT(checked, 400);
}

TEST(Brute, RefusesTooManyCombinations) {
  Problem p;
  p.budgets.push_back({"size", 1e9});
  for (int g = 0; g < 23; ++g) {
    p.groups.push_back({"g" + std::to_string(g), {}, {{4, 8, 1.0, {1.0}}, {8, 8, 0.0, {2.0}}}});
  }
  EXPECT_THROW(solve("brute", p), Error);
}

TEST(Greedy, WithinItsReportedGapOfTheOptimum) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    const Problem p = random_problem(rng, 1, trial % 5 == 0);
    const double optimum = reference_optimum(p);
    const Solution s = solve("greedy", p);
    ASSERT_NE(s.status, SolveStatus::kInfeasible) << s.detail;
    EXPECT_TRUE(is_feasible(p, s.choice));
    EXPECT_LE(s.objective - optimum, s.gap + 1e-9);
    EXPECT_LE(s.bound, optimum + 1e-9);
    EXPECT_GE(s.gap, 0);
    EXPECT_TRUE(near(s.gap, s.objective - s.bound));
    if (s.status == SolveStatus::kOptimal) {
      EXPECT_TRUE(near(s.objective, optimum));
    }
  }
}

TEST(Greedy, OneSwapReachesAnItemOffTheHull) {
  // Group 0's middle item (6, 4.5) lies above the hull's chord (0, 10)-(10, 0): the ratio pass
  // cannot take the whole step within 6.5, only a single move to that item helps.
  Problem p;
  p.budgets.push_back({"size", 6.5});
  p.groups.push_back({"a", {"a"}, {{2, 8, 10.0, {0.0}}, {4, 8, 4.5, {6.0}}, {8, 8, 0.0, {10.0}}}});
  p.groups.push_back({"b", {"b"}, {{2, 8, 1.0, {0.0}}, {8, 8, 0.9, {0.5}}}});
  SolverOptions swap;
  swap.tolerance = 0;  // exact numbers for the bound below
  SolverOptions no_swap = swap;
  no_swap.one_swap = false;
  const Solution without = solve("greedy", p, no_swap);
  const Solution with = solve("greedy", p, swap);
  EXPECT_EQ(without.choice, (std::vector<int>{0, 1}));
  EXPECT_DOUBLE_EQ(without.objective, 10.9);
  EXPECT_EQ(with.choice, (std::vector<int>{1, 1}));
  EXPECT_DOUBLE_EQ(with.objective, 5.4);
  EXPECT_LT(with.objective, without.objective);
  EXPECT_DOUBLE_EQ(with.objective, reference_optimum(p));
  // Both report the same LP bound: group a's step has the higher ratio and takes all 6.5 of the
  // room (10 - 6.5), group b stays at 1.
  EXPECT_NEAR(with.bound, 4.5, 1e-12);
  EXPECT_NEAR(without.bound, 4.5, 1e-12);
}

TEST(Greedy, TiesGoToTheLowerGroup) {
  // Two identical groups and room for one upgrade: the lower group index takes it.
  Problem p;
  p.budgets.push_back({"size", 3});
  for (const char* name : {"a", "b"}) {
    p.groups.push_back({name, {name}, {{4, 8, 1.0, {1.0}}, {8, 8, 0.0, {2.0}}}});
  }
  SolverOptions exact;
  exact.tolerance = 0;  // else the bound may use the tolerance's sliver of extra room
  const Solution s = solve("greedy", p, exact);
  EXPECT_EQ(s.choice, (std::vector<int>{1, 0}));
  EXPECT_EQ(s.status, SolveStatus::kOptimal);
}

// The LP value as the maximum of the Lagrangian dual D(l) = sum_g min_i (omega + l cost) - l L,
// whose maximum lies at 0 or at a slope between two items of one group; also the items each
// group may take when rounding (the minimisers of omega + l* cost: one, or the two around the
// relaxed point).
struct DualReference {
  double value = -kInf;
  std::vector<std::vector<int>> around;
};

DualReference dual_reference(const Problem& p, double limit) {
  std::vector<double> lambdas = {0.0};
  for (const Group& g : p.groups) {
    for (const Item& a : g.items) {
      for (const Item& b : g.items) {
        if (b.cost[0] > a.cost[0] && b.omega < a.omega) {
          lambdas.push_back((a.omega - b.omega) / (b.cost[0] - a.cost[0]));
        }
      }
    }
  }
  DualReference r;
  double best_lambda = 0;
  for (double l : lambdas) {
    double d = -l * limit;
    for (const Group& g : p.groups) {
      double m = kInf;
      for (const Item& it : g.items) m = std::min(m, it.omega + l * it.cost[0]);
      d += m;
    }
    if (d > r.value) {
      r.value = d;
      best_lambda = l;
    }
  }
  for (const Group& g : p.groups) {
    double m = kInf;
    for (const Item& it : g.items) m = std::min(m, it.omega + best_lambda * it.cost[0]);
    int cheap = -1, dear = -1;
    for (int i = 0; i < static_cast<int>(g.items.size()); ++i) {
      const Item& it = g.items[i];
      if (!near(it.omega + best_lambda * it.cost[0], m, 1e-12)) continue;
      if (cheap < 0 || it.cost[0] < g.items[cheap].cost[0]) cheap = i;
      if (dear < 0 || it.cost[0] > g.items[dear].cost[0]) dear = i;
    }
    r.around.push_back(cheap == dear ? std::vector<int>{cheap} : std::vector<int>{cheap, dear});
  }
  return r;
}

TEST(Lp, RoundsTheRelaxationLikeOmpqsRule) {
  std::mt19937_64 rng(3);
  SolverOptions options;
  options.tolerance = 0;
  int rounded = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    // Real-valued data: the relaxed point is unique, so the reference can find it.
    const Problem p = random_problem(rng, 1, false);
    const double limit = p.budgets[0].limit;
    const Solution s = solve("lp", p, options);
    ASSERT_NE(s.status, SolveStatus::kInfeasible);
    EXPECT_TRUE(is_feasible(p, s.choice, 0));
    const DualReference dual = dual_reference(p, limit);
    EXPECT_TRUE(near(s.bound, dual.value)) << s.bound << " vs " << dual.value;
    EXPECT_LE(s.bound, reference_optimum(p) + 1e-9);

    // OMPQ's rule by enumeration: among the allocations around the relaxed point, the largest
    // total cost within the limit, ties to the smaller objective.
    double best_cost = -kInf, best_objective = kInf;
    std::vector<int> pick(p.groups.size(), 0);
    while (true) {
      double c = 0, o = 0;
      for (size_t g = 0; g < p.groups.size(); ++g) {
        const Item& it = p.groups[g].items[dual.around[g][pick[g]]];
        c += it.cost[0];
        o += it.omega;
      }
      if (c <= limit && (c > best_cost || (c == best_cost && o < best_objective))) {
        best_cost = c;
        best_objective = o;
      }
      size_t g = 0;
      while (g < pick.size() && ++pick[g] == static_cast<int>(dual.around[g].size())) pick[g++] = 0;
      if (g == pick.size()) break;
    }
    EXPECT_TRUE(near(s.objective, best_objective)) << s.objective << " vs " << best_objective;
    EXPECT_TRUE(near(s.cost[0], best_cost));
    rounded += s.status == SolveStatus::kFeasible;
  }
  EXPECT_GT(rounded, 50);  // most instances leave a group between two candidates
}

TEST(Lp, LinearOmegaRoundsToAdjacentBits) {
  // OMPQ's shape: omega and cost linear in the bits, so every candidate is on the hull; the
  // relaxed bits of the last group raised fall between two adjacent widths, not 2 and 8.
  Problem p;
  p.budgets.push_back({"size", 0});
  const double weights[] = {100, 200, 300};
  const double importance[] = {3, 2, 1};
  for (int g = 0; g < 3; ++g) {
    Group group{"l" + std::to_string(g), {}, {}};
    for (int b = 2; b <= 8; ++b) {
      group.items.push_back({b, 8, importance[g] * weights[g] * (8 - b), {weights[g] * b}});
    }
    p.groups.push_back(group);
  }
  p.budgets[0].limit = 100 * 8 + 200 * 5.5 + 300 * 2;  // l0 at 8, l1 at 5.5 bits, l2 at 2
  SolverOptions exact;
  exact.tolerance = 0;
  const Solution s = solve("lp", p, exact);
  EXPECT_EQ(p.groups[0].items[s.choice[0]].weight_bits, 8);
  EXPECT_EQ(p.groups[1].items[s.choice[1]].weight_bits, 5);
  EXPECT_EQ(p.groups[2].items[s.choice[2]].weight_bits, 2);
  EXPECT_NEAR(s.bound, 2 * 200 * 2.5 + 1 * 300 * 6, 1e-9);
  EXPECT_NEAR(s.objective, 2 * 200 * 3 + 1 * 300 * 6, 1e-9);
  EXPECT_EQ(s.status, SolveStatus::kFeasible);
}

struct Point {
  double cost, objective;
};

std::vector<Point> brute_frontier(const Problem& p, int budget) {
  std::vector<Point> all;
  enumerate(p, [&](const std::vector<int>&, double objective, const std::vector<double>& total) {
    all.push_back({total[budget], objective});
  });
  std::sort(all.begin(), all.end(), [](const Point& a, const Point& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.objective < b.objective;
  });
  std::vector<Point> front;
  for (const Point& q : all) {
    if (front.empty() || q.objective < front.back().objective) front.push_back(q);
  }
  return front;
}

TEST(Pareto, EqualsTheBruteForceFrontier) {
  std::mt19937_64 rng(11);
  SolverOptions options;
  options.mckp_states = 1 << 20;
  for (int trial = 0; trial < 100; ++trial) {
    SCOPED_TRACE(trial);
    const int budgets = trial % 3 == 2 ? 2 : 1;
    const Problem p = random_problem(rng, budgets, trial % 5 == 0);
    const int budget = budgets - 1;
    const std::vector<Point> expected = brute_frontier(p, budget);
    const std::vector<FrontierPoint> got = pareto_frontier(p, budget, 1 << 20, options);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(near(got[i].cost, expected[i].cost));
      EXPECT_TRUE(near(got[i].objective, expected[i].objective));
      const Solution e = evaluate_choice(p, got[i].choice);
      EXPECT_TRUE(near(e.cost[budget], got[i].cost));
      EXPECT_TRUE(near(e.objective, got[i].objective));
    }
  }
}

TEST(Pareto, ConstrainedFrontierPointsAreParetoOptimalUnderTheOtherBudget) {
  std::mt19937_64 rng(21);
  int points_checked = 0;
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE(trial);
    const Problem p = random_problem(rng, 2, trial % 5 == 0);
    // Brute force: every choice within budget 1, its budget-0 cost and objective.
    std::vector<Point> feasible;
    enumerate(p, [&](const std::vector<int>&, double objective, const std::vector<double>& t) {
      if (t[1] <= p.budgets[1].limit * (1 + 1e-9) && t[0] <= p.budgets[0].limit * (1 + 1e-9))
        feasible.push_back({t[0], objective});
    });
    const std::vector<FrontierPoint> f = constrained_frontier(p, 0, 12);
    if (feasible.empty()) {
      EXPECT_TRUE(f.empty());
      continue;
    }
    ASSERT_FALSE(f.empty());
    for (size_t i = 0; i < f.size(); ++i) {
      const Solution e = evaluate_choice(p, f[i].choice);
      EXPECT_TRUE(is_feasible(p, f[i].choice));
      EXPECT_TRUE(near(e.cost[0], f[i].cost));
      EXPECT_TRUE(near(e.objective, f[i].objective));
      // No feasible choice is at most as expensive and strictly better.
      for (const Point& q : feasible)
        EXPECT_FALSE(q.cost <= f[i].cost * (1 + 1e-9) && q.objective < f[i].objective - 1e-9);
      if (i > 0) {
        EXPECT_GT(f[i].cost, f[i - 1].cost);
        EXPECT_LT(f[i].objective, f[i - 1].objective);
      }
      ++points_checked;
    }
    // The last point is the optimum at the budgets.
    double best = 1e300;
    for (const Point& q : feasible) best = std::min(best, q.objective);
    EXPECT_TRUE(near(f.back().objective, best));
  }
  EXPECT_GT(points_checked, 60);
}

TEST(Pareto, PicksTheKneeAndTheCheapestWithinALoss) {
  // Objective falls fast until cost 3, then slowly: the knee is at cost 3.
  std::vector<FrontierPoint> f = {{0, 10, {}},  {1, 6, {}},   {2, 3, {}},  {3, 1, {}},
                                  {4, 0.8, {}}, {5, 0.6, {}}, {6, 0.5, {}}};
  EXPECT_EQ(pick_knee(f), 3);
  EXPECT_EQ(pick_within_loss(f, 0.9), 4);
  EXPECT_EQ(pick_within_loss(f, 0.1), -1);
  EXPECT_EQ(pick_knee({}), -1);
  EXPECT_EQ(pick_knee({f[0], f[1]}), 0);
}

TEST(Pareto, ThinningKeepsBothEndsAndAtMostThePoints) {
  std::mt19937_64 rng(5);
  int thinned = 0;
  for (int trial = 0; trial < 50; ++trial) {
    SCOPED_TRACE(trial);
    const Problem p = random_problem(rng, 1, false);
    const std::vector<FrontierPoint> all = pareto_frontier(p, 0, 1 << 20);
    for (int points : {2, 3, 5, 8}) {
      const std::vector<FrontierPoint> few = pareto_frontier(p, 0, points);
      ASSERT_LE(few.size(), static_cast<size_t>(points));
      ASSERT_GE(few.size(), std::min<size_t>(2, all.size()));
      EXPECT_EQ(few.front().cost, all.front().cost);
      EXPECT_EQ(few.back().cost, all.back().cost);
      EXPECT_EQ(few.back().objective, all.back().objective);
      for (size_t i = 1; i < few.size(); ++i) {
        EXPECT_GT(few[i].cost, few[i - 1].cost);
        EXPECT_LT(few[i].objective, few[i - 1].objective);
      }
      thinned += all.size() > few.size();
    }
  }
  EXPECT_GT(thinned, 20);
  EXPECT_THROW(pareto_frontier(Problem{{}, {{"size", 1}}}, 1, 10), Error);
}

// An allocation problem shaped like a network's: bits 2..8, size proportional to the bits, omega
// falling about 4x per bit with noise (not convex everywhere), limit 40% of the way up.
Problem network_like(std::mt19937_64& rng, int groups) {
  std::uniform_real_distribution<double> log_n(3, 6), log_s(-3, 1), noise(0.7, 1.3), unit(0, 1);
  Problem p;
  p.budgets.push_back({"size", 0});
  for (int g = 0; g < groups; ++g) {
    const double n = std::pow(10, log_n(rng)), s = std::pow(10, log_s(rng));
    Group group{"l" + std::to_string(g), {}, {}};
    for (int b = 2; b <= 8; ++b) {
      group.items.push_back({b, 8, s * std::pow(4.0, 2 - b) * noise(rng), {n * b / 8}});
    }
    p.groups.push_back(group);
  }
  const double lo = min_costs(p)[0], hi = max_costs(p)[0];
  p.budgets[0].limit = lo + 0.4 * (hi - lo);
  return p;
}

// Forces merging with tiny state lists: the answer stays feasible, and bound <= optimum <=
// objective whether or not the branch and bound had time; with time it proves the optimum.
void check_merged(const Problem& p, double optimum, int64_t states, int& merged) {
  SolverOptions tiny;
  tiny.mckp_states = states;
  for (double seconds : {0.0, 60.0}) {
    tiny.time_limit_s = seconds;
    const Solution s = solve("mckp", p, tiny);
    ASSERT_NE(s.status, SolveStatus::kInfeasible);
    EXPECT_TRUE(is_feasible(p, s.choice));
    EXPECT_LE(s.bound, optimum + 1e-9 * std::max(1.0, std::abs(optimum)));
    EXPECT_GE(s.objective, optimum - 1e-9 * std::max(1.0, std::abs(optimum)));
    EXPECT_TRUE(near(s.gap, s.objective - s.bound));
    if (seconds > 0) {
      EXPECT_EQ(s.status, SolveStatus::kOptimal) << s.detail;
      EXPECT_TRUE(near(s.objective, optimum));
    }
    if (s.detail.find("merged") != std::string::npos) ++merged;
  }
}

TEST(Mckp, MergedStatesStayFeasibleAndBounded) {
  std::mt19937_64 rng(13);
  int merged = 0;
  for (int trial = 0; trial < 100; ++trial) {
    SCOPED_TRACE(trial);
    const Problem p = random_problem(rng, 1, trial % 5 == 0, 7);
    check_merged(p, reference_optimum(p), trial % 2 ? 4 : 1, merged);
  }
  // Larger instances merge more often; the reference is mckp with room for every state.
  for (int trial = 0; trial < 20; ++trial) {
    SCOPED_TRACE(trial);
    const Problem p = network_like(rng, 40);
    const Solution exact = solve("mckp", p);
    ASSERT_EQ(exact.detail.find("merged"), std::string::npos) << exact.detail;
    check_merged(p, exact.objective, trial % 2 ? 4 : 1, merged);
  }
  std::cout << "[mckp] " << merged << " of 240 solves merged states\n";
  EXPECT_GT(merged, 10);  // the instances did exercise merging
}

TEST(Budgets, UnachievableBudgetsAreNamedWithTheirMinimum) {
  Problem p;
  p.budgets = {{"size", 2.5}, {"bops", 100}, {"latency", 1.0}};
  p.groups.push_back({"a", {"a"}, {{4, 8, 1, {2.0, 40, 0.3}}, {8, 8, 0, {3.0, 80, 0.5}}}});
  p.groups.push_back({"b", {"b"}, {{4, 8, 1, {1.5, 70, 0.2}}, {8, 8, 0, {2.5, 90, 0.4}}}});
  try {
    check_budgets_achievable(p);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("budgets cannot be met"), std::string::npos) << m;
    EXPECT_NE(m.find("size limit 2.5 < minimum 3.5"), std::string::npos) << m;
    EXPECT_NE(m.find("bops limit 100 < minimum 110"), std::string::npos) << m;
    EXPECT_EQ(m.find("latency"), std::string::npos) << m;
    EXPECT_NE(m.find("cheapest"), std::string::npos) << m;
  }
  p.budgets[0].limit = 3.5;
  p.budgets[1].limit = 110;
  EXPECT_NO_THROW(check_budgets_achievable(p));
  const std::vector<double> lo = min_costs(p), hi = max_costs(p);
  const std::vector<double> lo_expected = {3.5, 110, 0.5}, hi_expected = {5.5, 170, 0.9};
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(lo[k], lo_expected[k], 1e-12);
    EXPECT_NEAR(hi[k], hi_expected[k], 1e-12);
  }

  // Each budget alone is met, not both at once: an answer, not an exception.
  p.budgets = {{"size", 4.5}, {"bops", 120}};
  p.groups[0].items = {{4, 8, 1, {3.0, 40}}, {8, 8, 0, {2.0, 80}}};
  p.groups[1].items = {{4, 8, 1, {2.5, 70}}, {8, 8, 0, {1.5, 90}}};
  for (const SolverInfo& row : solver_table()) {
    if (row.max_budgets >= 0 && row.max_budgets < 2) continue;
    SCOPED_TRACE(row.name);
    const Solution s = solve(row.name, p);
    EXPECT_EQ(s.status, SolveStatus::kInfeasible);
    EXPECT_TRUE(s.choice.empty());
  }
}

TEST(Budgets, OneBudgetSolversRejectSeveral) {
  Problem p;
  p.budgets = {{"size", 10}, {"bops", 10}, {"latency", 10}};
  p.groups.push_back({"a", {"a"}, {{4, 8, 1, {1, 1, 1}}}});
  for (const SolverInfo& row : solver_table()) {
    if (row.max_budgets != 1) continue;
    try {
      solve(row.name, p);
      FAIL() << row.name << " accepted three budgets";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), std::string("solver '") + row.name +
                                           "' handles one budget, found 3: use --solver ilp");
    }
  }
}

TEST(CheckProblem, NamesTheGroupAndWhatIsWrong) {
  Problem p;
  p.budgets = {{"size", 10}};
  p.groups.push_back({"conv1", {"conv1"}, {{4, 8, 1, {1}}}});
  p.groups.push_back({"fc", {"fc"}, {}});
  try {
    check_problem(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fc'"), std::string::npos) << e.what();
  }
  p.groups[1].items = {{4, 8, 1, {1, 2}}};
  EXPECT_THROW(check_problem(p), Error);
  p.groups[1].items = {{4, 8, std::nan(""), {1}}};
  try {
    check_problem(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("omega"), std::string::npos) << e.what();
  }
  p.groups[1].items = {{4, 8, 0, {1}}};
  EXPECT_NO_THROW(check_problem(p));
  EXPECT_THROW(evaluate_choice(p, {0}), Error);
  EXPECT_THROW(evaluate_choice(p, {0, 1}), Error);
}

TEST(EvaluateChoice, BindingAndBlockingBudgets) {
  Problem p;
  p.budgets = {{"size", 10}, {"bops", 100}};
  p.groups.push_back({"a", {"a"}, {{2, 8, 5, {2, 20}}, {4, 8, 2, {4, 30}}, {8, 8, 1, {6, 90}}}});
  p.groups.push_back({"b", {"b"}, {{2, 8, 3, {1, 10}}, {8, 8, 0.5, {6, 20}}}});
  p.groups.push_back({"c", {"c"}, {{8, 8, 0, {1, 10}}}});  // pinned: nothing to block

  // Totals size 6, bops 50. a -> item 2 reaches bops 110; b -> item 1 reaches size 11.
  Solution s = evaluate_choice(p, {1, 0, 0});
  EXPECT_EQ(s.status, SolveStatus::kFeasible);
  EXPECT_EQ(s.cost, (std::vector<double>{6, 50}));
  EXPECT_DOUBLE_EQ(s.objective, 5);
  EXPECT_EQ(s.binding, (std::vector<bool>{true, true}));
  EXPECT_EQ(blocking_budgets(p, {1, 0, 0}, 0), std::vector<int>{1});
  EXPECT_EQ(blocking_budgets(p, {1, 0, 0}, 1), std::vector<int>{0});
  EXPECT_TRUE(blocking_budgets(p, {1, 0, 0}, 2).empty());

  // Totals size 4, bops 40: a -> 1 fits, a -> 2 breaks bops; b -> 1 fits (size 9).
  s = evaluate_choice(p, {0, 0, 0});
  EXPECT_EQ(s.binding, (std::vector<bool>{false, true}));
  EXPECT_EQ(blocking_budgets(p, {0, 0, 0}, 0), std::vector<int>{1});
  EXPECT_TRUE(blocking_budgets(p, {0, 0, 0}, 1).empty());

  // a at its smallest omega: never blocked; the totals break bops (110).
  s = evaluate_choice(p, {2, 0, 0});
  EXPECT_EQ(s.status, SolveStatus::kInfeasible);
  EXPECT_FALSE(is_feasible(p, {2, 0, 0}));
  EXPECT_TRUE(blocking_budgets(p, {2, 0, 0}, 0).empty());

  // Exactly at a limit is feasible, and so is a hair over within the tolerance.
  p.budgets[1].limit = 50;
  EXPECT_TRUE(is_feasible(p, {1, 0, 0}));
  p.budgets[1].limit = 50 * (1 - 1e-12);
  EXPECT_TRUE(is_feasible(p, {1, 0, 0}));
  EXPECT_FALSE(is_feasible(p, {1, 0, 0}, 0));
}

TEST(StatusName, EveryStatus) {
  EXPECT_STREQ(status_name(SolveStatus::kOptimal), "optimal");
  EXPECT_STREQ(status_name(SolveStatus::kFeasible), "feasible");
  EXPECT_STREQ(status_name(SolveStatus::kInfeasible), "infeasible");
  EXPECT_STREQ(status_name(SolveStatus::kTimeLimit), "time limit");
}

template <typename F>
double best_seconds(int repeats, const F& f) {
  double best = kInf;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

TEST(SolverTiming, PrintsGreedyMckpAndParetoAtNetworkSize) {
  std::mt19937_64 rng(17);
  const Problem p = network_like(rng, 200);
  Solution greedy, mckp, lp;
  const double t_greedy = best_seconds(5, [&] { greedy = solve("greedy", p); });
  const double t_mckp = best_seconds(5, [&] { mckp = solve("mckp", p); });
  const double t_lp = best_seconds(5, [&] { lp = solve("lp", p); });
  EXPECT_EQ(mckp.status, SolveStatus::kOptimal) << mckp.detail;
  EXPECT_LE(mckp.objective, greedy.objective + 1e-12);
  EXPECT_LE(mckp.objective, lp.objective + 1e-12);
  EXPECT_GE(mckp.objective, greedy.bound - 1e-12);

  const Problem big = network_like(rng, 1000);
  std::vector<FrontierPoint> front;
  const double t_pareto = best_seconds(1, [&] { front = pareto_frontier(big, 0, 200); });
  EXPECT_LE(front.size(), 200u);
  EXPECT_GE(front.size(), 100u);

  std::cout << "[timing] 200 groups x 7 items: greedy " << t_greedy * 1e3 << " ms (gap "
            << greedy.gap << "), mckp " << t_mckp * 1e3 << " ms (" << mckp.detail << "), lp "
            << t_lp * 1e3 << " ms; pareto 200 points at 1000 groups " << t_pareto * 1e3 << " ms\n";
}

}  // namespace
}  // namespace mpq
