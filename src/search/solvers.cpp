// The table of bit-allocation solvers and the solve() entry point that checks a problem once for
// all of them (methods.md §1, §2, §4). Adding a solver is one row in kSolvers.
#include "search/solvers.h"

#include <chrono>

#include "core/error.h"

namespace mpq {

namespace {

constexpr SolverInfo kSolvers[] = {
    {"greedy", "MPQCO's convex-hull greedy with 1-swap; one budget; reports the LP gap", 1, false,
     solve_greedy},
    {"mckp", "exact multiple-choice knapsack DP (+ branch and bound when states merge); one budget",
     1, true, solve_mckp},
    {"ilp", "0/1 integer program by COIN-OR CBC; any number of budgets", -1, true, solve_ilp},
    {"lp", "OMPQ's linear program rounded to the closest cost under the budget; one budget", 1,
     false, solve_lp},
    {"brute", "exhaustive enumeration (tiny problems, tests); any number of budgets", -1, true,
     solve_brute},
};

constexpr bool same_name(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

constexpr bool names_unique() {
  constexpr size_t n = sizeof(kSolvers) / sizeof(kSolvers[0]);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (same_name(kSolvers[i].name, kSolvers[j].name)) return false;
    }
  }
  return true;
}
static_assert(names_unique(), "two rows of kSolvers share a name");

}  // namespace

const std::vector<SolverInfo>& solver_table() {
  static const std::vector<SolverInfo> table(std::begin(kSolvers), std::end(kSolvers));
  return table;
}

const SolverInfo& find_solver(const std::string& name) {
  std::string known;
  for (const SolverInfo& s : solver_table()) {
    if (name == s.name) return s;
    known += known.empty() ? "" : ", ";
    known += s.name;
  }
  MPQ_FAIL("unknown solver '", name, "': expected one of ", known);
}

Solution solve(const std::string& solver, const Problem& p, const SolverOptions& options) {
  const SolverInfo& info = find_solver(solver);
  check_problem(p);
  const int budgets = static_cast<int>(p.budgets.size());
  if (info.max_budgets >= 0 && budgets > info.max_budgets) {
    MPQ_FAIL("solver '", info.name, "' handles ",
             info.max_budgets == 1 ? std::string("one budget")
                                   : std::to_string(info.max_budgets) + " budgets",
             ", found ", budgets, ": use --solver ilp");
  }
  check_budgets_achievable(p);
  auto start = std::chrono::steady_clock::now();
  Solution s = info.solve(p, options);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (s.status != SolveStatus::kInfeasible && s.choice.size() == p.groups.size()) {
    Solution e = evaluate_choice(p, s.choice);
    s.cost = e.cost;
    s.binding = e.binding;
  }
  return s;
}

}  // namespace mpq
