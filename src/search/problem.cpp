// Validation and evaluation of bit-allocation problems (methods.md §1, §4): the checks every
// solver relies on, and the totals and binding budgets of a chosen allocation that reports and
// the plan's per-layer "reason" show.
#include "search/problem.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "search/internal/hull.h"

namespace mpq {

namespace {

// Totals per budget of `choice`, after checking its shape (it comes from callers, not solvers).
std::vector<double> checked_totals(const Problem& p, const std::vector<int>& choice) {
  MPQ_CHECK(choice.size() == p.groups.size(), "choice has ", choice.size(),
            " entries, expected one per group (", p.groups.size(), ")");
  std::vector<double> total(p.budgets.size(), 0.0);
  for (size_t g = 0; g < p.groups.size(); ++g) {
    const Group& group = p.groups[g];
    MPQ_CHECK(choice[g] >= 0 && choice[g] < static_cast<int>(group.items.size()),
              "choice for group '", group.name, "' (index ", g, ") is ", choice[g],
              ", expected 0..", static_cast<int>(group.items.size()) - 1);
    const Item& item = group.items[choice[g]];
    for (size_t k = 0; k < total.size(); ++k) total[k] += item.cost[k];
  }
  return total;
}

bool fits(const Problem& p, const std::vector<double>& total, double tolerance) {
  for (size_t k = 0; k < total.size(); ++k) {
    if (total[k] > internal::effective_limit(p.budgets[k].limit, tolerance)) return false;
  }
  return true;
}

// Budgets broken by some move of group g to an item with a smaller omega.
std::vector<int> blocked_by(const Problem& p, const std::vector<int>& choice,
                            const std::vector<double>& total, size_t g, double tolerance) {
  std::vector<bool> blocks(p.budgets.size(), false);
  const Group& group = p.groups[g];
  const Item& current = group.items[choice[g]];
  for (const Item& other : group.items) {
    if (!(other.omega < current.omega)) continue;
    for (size_t k = 0; k < total.size(); ++k) {
      double moved = total[k] - current.cost[k] + other.cost[k];
      if (moved > internal::effective_limit(p.budgets[k].limit, tolerance)) blocks[k] = true;
    }
  }
  std::vector<int> out;
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (blocks[k]) out.push_back(static_cast<int>(k));
  }
  return out;
}

// Six significant digits, more when that is what tells a limit from a minimum.
std::string format_pair(double limit, double minimum, const char* between) {
  for (int digits : {6, 17}) {
    std::ostringstream a, b;
    a.precision(digits);
    b.precision(digits);
    a << limit;
    b << minimum;
    if (a.str() != b.str() || digits == 17) return a.str() + between + b.str();
  }
  return "";
}

}  // namespace

const char* status_name(SolveStatus s) {
  switch (s) {
    case SolveStatus::kOptimal:
      return "optimal";
    case SolveStatus::kFeasible:
      return "feasible";
    case SolveStatus::kInfeasible:
      return "infeasible";
    case SolveStatus::kTimeLimit:
      return "time limit";
  }
  return "unknown";
}

void check_problem(const Problem& p) {
  const size_t budgets = p.budgets.size();
  for (const Budget& b : p.budgets) {
    // +infinity is allowed: a budget that does not constrain (a report-only cost).
    MPQ_CHECK(!std::isnan(b.limit), "budget '", b.name, "': limit is NaN, expected a number");
  }
  for (size_t g = 0; g < p.groups.size(); ++g) {
    const Group& group = p.groups[g];
    MPQ_CHECK(!group.items.empty(), "group '", group.name, "' (index ", g,
              ") has no candidate items, expected at least one");
    for (size_t i = 0; i < group.items.size(); ++i) {
      const Item& item = group.items[i];
      MPQ_CHECK(item.cost.size() == budgets, "group '", group.name, "' (index ", g, "): item ", i,
                " (w", item.weight_bits, "a", item.act_bits, ") has ", item.cost.size(),
                " costs, expected one per budget (", budgets, ")");
      MPQ_CHECK(std::isfinite(item.omega), "group '", group.name, "' (index ", g, "): item ", i,
                " (w", item.weight_bits, "a", item.act_bits, ") has omega ", item.omega,
                ", expected a finite value");
      for (size_t k = 0; k < budgets; ++k) {
        MPQ_CHECK(std::isfinite(item.cost[k]), "group '", group.name, "' (index ", g, "): item ", i,
                  " (w", item.weight_bits, "a", item.act_bits, ") has ", p.budgets[k].name,
                  " cost ", item.cost[k], ", expected a finite value");
      }
    }
  }
}

std::vector<double> min_costs(const Problem& p) {
  std::vector<double> total(p.budgets.size(), 0.0);
  for (const Group& group : p.groups) {
    for (size_t k = 0; k < total.size(); ++k) {
      double best = group.items.front().cost[k];
      for (const Item& item : group.items) best = std::min(best, item.cost[k]);
      total[k] += best;
    }
  }
  return total;
}

std::vector<double> max_costs(const Problem& p) {
  std::vector<double> total(p.budgets.size(), 0.0);
  for (const Group& group : p.groups) {
    for (size_t k = 0; k < total.size(); ++k) {
      double worst = group.items.front().cost[k];
      for (const Item& item : group.items) worst = std::max(worst, item.cost[k]);
      total[k] += worst;
    }
  }
  return total;
}

void check_budgets_achievable(const Problem& p) {
  const std::vector<double> lowest = min_costs(p);
  std::string violated;
  for (size_t k = 0; k < lowest.size(); ++k) {
    const Budget& b = p.budgets[k];
    if (lowest[k] <= internal::effective_limit(b.limit, 1e-9)) continue;
    if (!violated.empty()) violated += "; ";
    violated += b.name + " limit " + format_pair(b.limit, lowest[k], " < minimum ");
  }
  MPQ_CHECK(violated.empty(), "budgets cannot be met: ", violated,
            " (minimum is every layer at its cheapest candidate)");
}

Solution evaluate_choice(const Problem& p, const std::vector<int>& choice) {
  Solution s;
  s.cost = checked_totals(p, choice);
  s.choice = choice;
  for (size_t g = 0; g < p.groups.size(); ++g) s.objective += p.groups[g].items[choice[g]].omega;
  s.status = fits(p, s.cost, 1e-9) ? SolveStatus::kFeasible : SolveStatus::kInfeasible;
  s.binding.assign(p.budgets.size(), false);
  for (size_t g = 0; g < p.groups.size(); ++g) {
    for (int k : blocked_by(p, choice, s.cost, g, 1e-9)) s.binding[k] = true;
  }
  return s;
}

std::vector<int> blocking_budgets(const Problem& p, const std::vector<int>& choice, int64_t g,
                                  double tolerance) {
  std::vector<double> total = checked_totals(p, choice);
  MPQ_CHECK(g >= 0 && g < static_cast<int64_t>(p.groups.size()), "group index ", g,
            " is out of range, expected 0..", static_cast<int64_t>(p.groups.size()) - 1);
  return blocked_by(p, choice, total, static_cast<size_t>(g), tolerance);
}

bool is_feasible(const Problem& p, const std::vector<int>& choice, double tolerance) {
  return fits(p, checked_totals(p, choice), tolerance);
}

}  // namespace mpq
