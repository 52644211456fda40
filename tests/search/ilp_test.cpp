// Unit tests of the CBC-based `ilp` solver (methods.md §2) on hand-made instances: budgets that
// are met one by one but not together, tiny time limits, omegas near 1e-8, budgets exactly at an
// attainable total, and agreement with brute force on small random instances.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "search/problem.h"
#include "search/solvers.h"

namespace mpq {
namespace {

// Items like bit widths: omega falls and every cost rises with the index, with noise, so the
// instance has no dominated items and many near-ties (the hard case for an exact solver).
Problem random_problem(int groups, int items, int budgets, uint64_t seed, double omega_scale = 1,
                       double room = 0.4) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Problem p;
  for (int g = 0; g < groups; ++g) {
    Group group;
    group.name = "g" + std::to_string(g);
    group.layers = {group.name};
    const double sensitivity = std::exp(4 * u(rng) - 2);
    std::vector<double> size(budgets);
    for (double& s : size) s = std::exp(3 * u(rng));
    for (int i = 0; i < items; ++i) {
      Item item;
      item.weight_bits = 2 + i;
      item.omega = omega_scale * sensitivity * std::pow(2.0, -1.5 * i) * (1 + 0.3 * u(rng));
      for (int k = 0; k < budgets; ++k) item.cost.push_back(size[k] * (2 + i) * (1 + 0.2 * u(rng)));
      group.items.push_back(item);
    }
    p.groups.push_back(group);
  }
  for (int k = 0; k < budgets; ++k) p.budgets.push_back({"b" + std::to_string(k), 0});
  const std::vector<double> lo = min_costs(p), hi = max_costs(p);
  for (int k = 0; k < budgets; ++k) p.budgets[k].limit = lo[k] + (hi[k] - lo[k]) * (room + 0.1 * k);
  return p;
}

TEST(Ilp, JointlyInfeasibleBudgetsAreAnAnswer) {
  // Each group pays 1 to exactly one of the two budgets: 3 in all, but only 2 are allowed. Each
  // budget alone can be met (every group pays it 0), so the checks before solving pass.
  Problem p;
  for (int g = 0; g < 3; ++g) {
    Group group;
    group.name = "g" + std::to_string(g);
    group.items = {{4, 8, 1.0, {0, 1}}, {8, 8, 0.0, {1, 0}}};
    p.groups.push_back(group);
  }
  p.budgets = {{"a", 1}, {"b", 1}};
  Solution s;
  ASSERT_NO_THROW(s = solve("ilp", p));
  EXPECT_EQ(s.status, SolveStatus::kInfeasible) << s.detail;
  EXPECT_TRUE(s.choice.empty());
  EXPECT_EQ(solve("brute", p).status, SolveStatus::kInfeasible);
}

TEST(Ilp, TinyTimeLimitNeverBreaks) {
  const Problem p = random_problem(1000, 7, 3, 7);
  SolverOptions options;
  options.time_limit_s = 1e-4;
  Solution s;
  ASSERT_NO_THROW(s = solve("ilp", p, options));
  EXPECT_TRUE(s.status == SolveStatus::kTimeLimit || s.status == SolveStatus::kOptimal)
      << status_name(s.status) << ": " << s.detail;
  if (!s.choice.empty()) {
    EXPECT_TRUE(is_feasible(p, s.choice));
    EXPECT_GE(s.gap, 0);
    EXPECT_LE(s.bound, s.objective);
    EXPECT_NEAR(s.objective, evaluate_choice(p, s.choice).objective, 1e-9 * s.objective);
  }
}

TEST(Ilp, TinyOmegasStayExact) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Problem p = random_problem(8, 4, 2, seed, 1e-8);
    const Solution exact = solve("brute", p);
    const Solution ilp = solve("ilp", p);
    ASSERT_EQ(exact.status, SolveStatus::kOptimal);
    ASSERT_EQ(ilp.status, SolveStatus::kOptimal) << ilp.detail;
    EXPECT_EQ(ilp.choice, exact.choice);
    EXPECT_NEAR(ilp.objective, exact.objective, 1e-12 * exact.objective);
    EXPECT_EQ(ilp.gap, 0);
  }
}

TEST(Ilp, MatchesBruteForceOnRandomInstances) {
  for (int budgets = 1; budgets <= 3; ++budgets) {
    for (uint64_t seed = 1; seed <= 8; ++seed) {
      SCOPED_TRACE("budgets " + std::to_string(budgets) + ", seed " + std::to_string(seed));
      const Problem p = random_problem(7, 5, budgets, 100 * budgets + seed, 1, 0.1 * seed);
      const Solution exact = solve("brute", p);
      const Solution ilp = solve("ilp", p);
      ASSERT_EQ(ilp.status, exact.status) << ilp.detail;
      if (exact.status != SolveStatus::kOptimal) continue;
      EXPECT_NEAR(ilp.objective, exact.objective, 1e-9 * exact.objective);
      EXPECT_TRUE(is_feasible(p, ilp.choice));
    }
  }
}

TEST(Ilp, MatchesMckpOnOneBudgetAtScale) {
  // Too large for brute force; several passes of Lagrangian fixing happen here.
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Problem p = random_problem(150, 7, 1, seed, 1, 0.15 * seed);
    const Solution exact = solve("mckp", p);
    const Solution ilp = solve("ilp", p);
    ASSERT_EQ(exact.status, SolveStatus::kOptimal) << exact.detail;
    ASSERT_EQ(ilp.status, SolveStatus::kOptimal) << ilp.detail;
    EXPECT_NEAR(ilp.objective, exact.objective, 1e-9 * exact.objective);
    EXPECT_TRUE(is_feasible(p, ilp.choice));
  }
}

TEST(Ilp, BudgetExactlyAtAnAttainableTotal) {
  // The limit is the cost of a known choice: rounding in CBC's rows must neither lose that
  // choice nor accept one slightly over the limit.
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Problem p = random_problem(8, 4, 2, seed);
    std::mt19937_64 rng(seed);
    std::vector<int> target(p.groups.size());
    for (int& t : target) t = static_cast<int>(rng() % 4);
    const Solution at = evaluate_choice(p, target);
    for (size_t k = 0; k < p.budgets.size(); ++k) p.budgets[k].limit = at.cost[k];
    SolverOptions options;
    options.tolerance = 0;
    const Solution exact = solve_brute(p, options);
    const Solution ilp = solve_ilp(p, options);
    ASSERT_EQ(ilp.status, SolveStatus::kOptimal) << ilp.detail;
    EXPECT_TRUE(is_feasible(p, ilp.choice, 0));
    EXPECT_LE(ilp.objective, at.objective + 1e-12);
    EXPECT_NEAR(ilp.objective, exact.objective, 1e-9 * exact.objective);
  }
}

TEST(Ilp, IntegralLpRelaxation) {
  // The budget buys exactly the two best upgrades: the LP relaxation is integral and its dual
  // price degenerate (any value between two slopes), the edge case of the Lagrangian fixing.
  Problem p;
  const double saving[] = {3, 2, 1, 0.5};
  for (int g = 0; g < 4; ++g) {
    Group group;
    group.name = "g" + std::to_string(g);
    group.items = {{4, 8, saving[g], {0}}, {8, 8, 0.0, {1}}};
    p.groups.push_back(group);
  }
  p.budgets = {{"size", 2}};
  SolverOptions exact;
  exact.tolerance = 0;
  const Solution s = solve("ilp", p, exact);
  ASSERT_EQ(s.status, SolveStatus::kOptimal) << s.detail;
  EXPECT_EQ(s.choice, (std::vector<int>{1, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(s.objective, 1.5);
}

TEST(Ilp, FixedGroupsAndLooseBudgetsNeedNoSearch) {
  Problem p = random_problem(6, 4, 2, 3);
  p.groups[2].items.resize(1);                                   // pinned layer
  p.budgets[1].limit = std::numeric_limits<double>::infinity();  // report-only cost
  const Solution exact = solve("brute", p);
  const Solution ilp = solve("ilp", p);
  ASSERT_EQ(ilp.status, SolveStatus::kOptimal) << ilp.detail;
  EXPECT_EQ(ilp.choice, exact.choice);
  EXPECT_EQ(ilp.choice[2], 0);

  // No budget binds at all: every group takes its least omega.
  p.budgets[0].limit = std::numeric_limits<double>::infinity();
  const Solution free = solve("ilp", p);
  ASSERT_EQ(free.status, SolveStatus::kOptimal);
  for (size_t g = 0; g < p.groups.size(); ++g) {
    EXPECT_EQ(free.choice[g], static_cast<int>(p.groups[g].items.size()) - 1);
  }
}

TEST(Ilp, ConcurrentSolvesAgree) {
  // Solves on several threads (CoinUtils keeps a global, so ilp serialises them) must not
  // interfere.
  const Problem p = random_problem(60, 6, 3, 11);
  const Solution serial = solve("ilp", p);
  ASSERT_EQ(serial.status, SolveStatus::kOptimal) << serial.detail;
  std::vector<Solution> results(4);
  std::vector<std::thread> threads;
  for (Solution& r : results) threads.emplace_back([&p, &r] { r = solve("ilp", p); });
  for (std::thread& t : threads) t.join();
  for (const Solution& r : results) {
    EXPECT_EQ(r.status, SolveStatus::kOptimal) << r.detail;
    EXPECT_NEAR(r.objective, serial.objective, 1e-9 * serial.objective);
  }
}

TEST(Ilp, RejectsBadOptions) {
  const Problem p = random_problem(3, 3, 1, 1);
  SolverOptions options;
  options.time_limit_s = 0;
  EXPECT_THROW(solve_ilp(p, options), Error);
}

}  // namespace
}  // namespace mpq
