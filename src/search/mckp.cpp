// Exact multiple-choice knapsack for one budget, and the (cost, omega) Pareto frontier (methods.md
// §1 "exact alternatives: DP over a discretised cost, branch and bound"; §2's frontier).
//
// The DP runs over the groups on lists of non-dominated (cost, sum omega) states, sorted by cost
// with omega strictly decreasing; costs stay exact. Stage g merges the K lists "states + item i"
// (O(K n) per stage for n states). States that cannot fit the cheapest completion are dropped.
// When a stage has more than SolverOptions::mckp_states states, the cost range is cut into that
// many buckets and each bucket keeps its cheapest state: every completion stays feasible, and a
// state it replaces is worse by at most the bucket's omega spread, so the answer is within the
// sum of the stages' largest spreads of the optimum. pareto_frontier() is this DP with no limit.
//
// mckp searches below a threshold T, in rounds. Lagrangian reduced costs (multiplier from the LP
// relaxation, internal/hull.h) fix every item that cannot be in an allocation below T, which
// leaves a small core of groups; the DP over the core drops every state whose omega plus the LP
// bound of the remaining groups at its remaining room reaches T. A round that finds an answer has
// found the optimum (every better allocation's states were kept); one that finds none proves the
// optimum >= T. T starts just above the LP bound and rises towards the greedy answer, so few
// states survive (200 groups x 7 items: tens per stage). If a round merges states, a time-limited
// depth-first branch and bound (LP hull bound per node) takes over the same rounds.
// Choices are recorded per stage as (parent state, item) pairs and rebuilt by backtracking.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/error.h"
#include "search/internal/hull.h"
#include "search/solvers.h"

namespace mpq {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct State {
  double cost = 0;
  double omega = 0;
  int32_t parent = -1;  // index in the previous stage's list
  int32_t item = -1;    // index into Group::items
};

struct DpSettings {
  int budget = 0;
  double limit = kInf;  // the final total must not exceed it
  int64_t buckets = 4096;
  // mckp only: drop states whose bound is not below `threshold`. The Lagrangian bound for the
  // relaxation's multiplier is O(1) and screens first; the LP bound of the rest decides.
  const internal::HullRelaxation* relax = nullptr;
  double lambda = 0;
  std::vector<double> lagrangian;  // internal::lagrangian_suffix for lambda
  double threshold = kInf;
};

struct DpResult {
  std::vector<State> last;      // the final stage's states
  std::vector<int64_t> offset;  // stage g's (parent, item) pairs start at offset[g]
  std::vector<int32_t> parent;
  std::vector<int32_t> item;
  double loss = 0;   // the bound on the omega that merging may have given up
  double width = 0;  // the widest bucket used
  int64_t merged_stages = 0;
  int64_t most_states = 1;

  std::vector<int> choice(int32_t state) const {
    std::vector<int> c(offset.size());
    for (size_t g = offset.size(); g-- > 0;) {
      c[g] = item[offset[g] + state];
      state = parent[offset[g] + state];
    }
    return c;
  }
};

// Appends s unless a state already kept dominates it (list is built in cost order).
inline void push_state(std::vector<State>& list, const State& s) {
  if (list.empty() || s.omega < list.back().omega) list.push_back(s);
}

// The exact stage: merge(acc, previous + item) for each item in turn, dominance pruned.
template <typename Keep>
void exact_stage(const std::vector<State>& prev, const std::vector<internal::HullPoint>& items,
                 double cost_limit, const Keep& keep, std::vector<State>& acc,
                 std::vector<State>& scratch) {
  acc.clear();
  for (const internal::HullPoint& it : items) {
    scratch.clear();
    size_t a = 0, b = 0;
    State add;
    bool have = false;
    auto advance = [&]() {  // the next candidate of prev + it that passes the filters
      have = false;
      while (b < prev.size()) {
        const double c = prev[b].cost + it.cost;
        if (c > cost_limit) {  // sorted by cost: the rest is over too
          b = prev.size();
          break;
        }
        const double o = prev[b].omega + it.omega;
        const int32_t parent = static_cast<int32_t>(b++);
        if (keep(c, o)) {
          add = {c, o, parent, it.item};
          have = true;
          break;
        }
      }
    };
    advance();
    while (a < acc.size() || have) {
      if (a < acc.size() && (!have || acc[a].cost < add.cost ||
                             (acc[a].cost == add.cost && acc[a].omega <= add.omega))) {
        push_state(scratch, acc[a++]);
      } else {
        push_state(scratch, add);
        advance();
      }
    }
    acc.swap(scratch);
  }
}

int64_t bucket_of(double cost, double low, double width, int64_t buckets) {
  if (!(width > 0)) return 0;
  return std::min(buckets - 1, static_cast<int64_t>((cost - low) / width));
}

// Cuts an exact, dominance-pruned list into `buckets` cost buckets, keeping each bucket's cheapest
// state. Returns the largest omega spread given up (the list is omega-decreasing within a bucket).
double bucket_exact(const std::vector<State>& list, int64_t buckets, std::vector<State>& out,
                    double& width) {
  out.clear();
  const double low = list.front().cost;
  width = (list.back().cost - low) / static_cast<double>(buckets);
  double spread = 0;
  int64_t current = -1;
  for (const State& s : list) {
    const int64_t b = bucket_of(s.cost, low, width, buckets);
    if (b != current) {
      out.push_back(s);
      current = b;
    } else {
      spread = std::max(spread, out.back().omega - s.omega);
    }
  }
  return spread;
}

// A stage straight into buckets (O(1) per candidate), once merging has started: each bucket keeps
// its cheapest candidate and the smallest omega seen, which bounds what keeping the cheapest loses.
template <typename Keep>
double bucket_stage(const std::vector<State>& prev, const std::vector<internal::HullPoint>& items,
                    double cost_limit, const Keep& keep, int64_t buckets, std::vector<State>& out,
                    std::vector<State>& cheapest, std::vector<double>& smallest, double& width) {
  out.clear();
  const double low = prev.front().cost + items.front().cost;
  const double high = std::min(cost_limit, prev.back().cost + items.back().cost);
  if (high < low) return 0;
  width = (high - low) / static_cast<double>(buckets);
  cheapest.assign(buckets, State{kInf, kInf, -1, -1});
  smallest.assign(buckets, kInf);
  for (const internal::HullPoint& it : items) {
    for (size_t i = 0; i < prev.size(); ++i) {
      const double c = prev[i].cost + it.cost;
      if (c > cost_limit) break;
      const double o = prev[i].omega + it.omega;
      if (!keep(c, o)) continue;
      const int64_t b = bucket_of(c, low, width, buckets);
      State& k = cheapest[b];
      if (c < k.cost || (c == k.cost && o < k.omega)) k = {c, o, static_cast<int32_t>(i), it.item};
      smallest[b] = std::min(smallest[b], o);
    }
  }
  double spread = 0;
  for (int64_t b = 0; b < buckets; ++b) {
    if (cheapest[b].cost == kInf) continue;
    push_state(out, cheapest[b]);
    // Every candidate in bucket b is represented by the best kept state at most as costly.
    spread = std::max(spread, out.back().omega - smallest[b]);
  }
  return spread;
}

DpResult run_dp(const Problem& p, const DpSettings& set) {
  const size_t n = p.groups.size();
  std::vector<std::vector<internal::HullPoint>> items(n);
  std::vector<double> cheapest_rest(n + 1, 0.0);
  for (size_t g = n; g-- > 0;) {
    items[g] = internal::pareto_items(p.groups[g], set.budget);
    cheapest_rest[g] = cheapest_rest[g + 1] + items[g].front().cost;
  }
  const int64_t buckets = std::max<int64_t>(1, set.buckets);

  DpResult r;
  r.offset.resize(n);
  std::vector<State> list{State{0, 0, -1, -1}}, next, scratch, cheapest;
  std::vector<double> smallest;
  bool merging = false;
  for (size_t g = 0; g < n; ++g) {
    // Before the last stage a little slack keeps rounding in the suffix sums from dropping a
    // state that fits exactly; the last stage checks the limit itself.
    double cost_limit = set.limit;
    if (g + 1 < n) {
      cost_limit -= cheapest_rest[g + 1];
      cost_limit += 1e-12 * (std::abs(set.limit) + std::abs(cheapest_rest[g + 1]));
    }
    const bool prune = set.relax != nullptr;
    const double lagrangian_rest = prune ? set.lagrangian[g + 1] - set.lambda * set.limit : 0;
    const internal::SuffixBound rest =
        prune ? internal::SuffixBound(*set.relax, static_cast<int64_t>(g) + 1)
              : internal::SuffixBound();
    auto keep = [&](double c, double o) {
      return !prune || (o + set.lambda * c + lagrangian_rest < set.threshold &&
                        o + rest(set.limit - c) < set.threshold);
    };
    const int64_t candidates = static_cast<int64_t>(list.size() * items[g].size());
    double spread = 0, width = 0;
    if (!merging || candidates <= buckets) {
      exact_stage(list, items[g], cost_limit, keep, next, scratch);
      if (static_cast<int64_t>(next.size()) > buckets) {
        spread = bucket_exact(next, buckets, scratch, width);
        next.swap(scratch);
        merging = true;
      }
    } else {
      spread =
          bucket_stage(list, items[g], cost_limit, keep, buckets, next, cheapest, smallest, width);
    }
    if (spread > 0) {
      r.loss += spread;
      r.width = std::max(r.width, width);
      ++r.merged_stages;
    }
    r.offset[g] = static_cast<int64_t>(r.parent.size());
    for (const State& s : next) {
      r.parent.push_back(s.parent);
      r.item.push_back(s.item);
    }
    r.most_states = std::max<int64_t>(r.most_states, static_cast<int64_t>(next.size()));
    list.swap(next);
    if (list.empty()) break;
  }
  r.last = std::move(list);
  if (r.last.empty()) r.offset.clear();
  return r;
}

// The part of a problem that can still hold an allocation below `threshold`. An item whose
// Lagrangian bound L(lambda) + (omega + lambda cost - min_i(omega_i + lambda cost_i)) reaches the
// threshold is in no such allocation (reduced-cost fixing); a group left with one item is fixed,
// so the search only branches over the groups whose items are close in reduced cost.
struct Core {
  Problem problem;  // the groups left with two or more items; one budget, the room they have
  std::vector<int64_t> group;          // core group -> problem group
  std::vector<std::vector<int>> item;  // core group's item -> problem item
  std::vector<int> fixed;              // problem group -> its item, -1 for core groups
  bool empty_group = false;            // some group has no item left: nothing is better
};

Core reduce(const Problem& p, double limit, double lambda, double threshold, double slack) {
  Core core;
  const std::vector<double> lagrangian = internal::lagrangian_suffix(p, 0, lambda);
  const double value = lagrangian[0] - lambda * limit;
  core.fixed.assign(p.groups.size(), -1);
  std::vector<std::vector<internal::HullPoint>> kept(p.groups.size());
  std::vector<size_t> open;
  double fixed_cost = 0;
  for (size_t g = 0; g < p.groups.size(); ++g) {
    const double best = lagrangian[g] - lagrangian[g + 1];
    for (const internal::HullPoint& it : internal::pareto_items(p.groups[g], 0)) {
      if (value + (it.omega + lambda * it.cost - best) < threshold - slack) kept[g].push_back(it);
    }
    if (kept[g].empty()) {
      core.empty_group = true;
      return core;
    }
    if (kept[g].size() == 1) {
      core.fixed[g] = kept[g].front().item;
      fixed_cost += kept[g].front().cost;
    } else {
      open.push_back(g);
    }
  }
  // The groups whose choice moves the cost most go first: the search's bounds tighten early
  // (on network-like instances this cut the branch and bound's nodes ~1000x).
  auto spread = [&](size_t g) { return kept[g].back().cost - kept[g].front().cost; };
  std::stable_sort(open.begin(), open.end(),
                   [&](size_t a, size_t b) { return spread(a) > spread(b); });
  core.problem.budgets.push_back({"core", limit - fixed_cost});
  for (size_t g : open) {
    Group group{p.groups[g].name, {}, {}};
    std::vector<int> index;
    for (const internal::HullPoint& it : kept[g]) {
      const Item& item = p.groups[g].items[it.item];
      group.items.push_back({item.weight_bits, item.act_bits, it.omega, {it.cost}});
      index.push_back(it.item);
    }
    core.problem.groups.push_back(std::move(group));
    core.group.push_back(static_cast<int64_t>(g));
    core.item.push_back(std::move(index));
  }
  return core;
}

// Depth-first branch and bound over the groups in the given order, each group's non-dominated
// items best omega first; a node is cut by the O(1) Lagrangian bound, then by the LP hull bound.
class BranchAndBound {
 public:
  BranchAndBound(const Problem& p, const internal::HullRelaxation& relax, double limit,
                 double lambda, std::vector<double> lagrangian)
      : relax_(relax), limit_(limit), lambda_(lambda), lagrangian_(std::move(lagrangian)) {
    const size_t n = p.groups.size();
    items_.resize(n);
    cheapest_rest_.assign(n + 1, 0.0);
    double scale = 0;
    for (size_t g = n; g-- > 0;) {
      items_[g] = internal::pareto_items(p.groups[g], 0);
      cheapest_rest_[g] = cheapest_rest_[g + 1] + items_[g].front().cost;
      double largest = 0;
      for (const internal::HullPoint& it : items_[g])
        largest = std::max(largest, std::abs(it.omega));
      scale += largest;
      std::sort(items_[g].begin(), items_[g].end(),
                [](const internal::HullPoint& a, const internal::HullPoint& b) {
                  return a.omega < b.omega;
                });
    }
    slack_ = 1e-12 * scale;
    current_.assign(n, 0);
  }

  // Looks for an allocation below `incumbent` (found(), best()). False when the deadline came
  // first: then not finding one proves nothing.
  bool run(std::chrono::steady_clock::time_point deadline, double incumbent) {
    deadline_ = deadline;
    incumbent_ = incumbent;
    visit(0, 0.0, 0.0);
    return !stopped_;
  }
  bool found() const { return found_; }
  const std::vector<int>& best() const { return best_; }
  int64_t nodes() const { return nodes_; }

 private:
  void visit(size_t g, double cost, double omega) {
    if (stopped_) return;
    if ((nodes_++ & 1023) == 0 && std::chrono::steady_clock::now() > deadline_) {
      stopped_ = true;
      return;
    }
    if (g == items_.size()) {
      if (omega < incumbent_ && cost <= limit_) {
        incumbent_ = omega;
        best_ = current_;
        found_ = true;
      }
      return;
    }
    if (omega + lambda_ * cost + lagrangian_[g] - lambda_ * limit_ >= incumbent_ - slack_) return;
    if (omega + relax_.bound(static_cast<int64_t>(g), limit_ - cost) >= incumbent_ - slack_) return;
    for (const internal::HullPoint& it : items_[g]) {
      const double c = cost + it.cost;
      if (c + cheapest_rest_[g + 1] > limit_ + slack_) continue;
      if (g + 1 == items_.size() && c > limit_) continue;
      current_[g] = it.item;
      visit(g + 1, c, omega + it.omega);
    }
  }

  const internal::HullRelaxation& relax_;
  double limit_, lambda_;
  std::vector<double> lagrangian_;
  std::vector<std::vector<internal::HullPoint>> items_;
  std::vector<double> cheapest_rest_;
  double slack_ = 0;  // cuts nodes that could improve only by rounding noise, so proofs end
  std::chrono::steady_clock::time_point deadline_;
  double incumbent_ = kInf;
  std::vector<int> best_, current_;
  int64_t nodes_ = 0;
  bool stopped_ = false;
  bool found_ = false;
};

// A core allocation as an allocation of the whole problem, and its objective summed in group
// order (as evaluate_choice does).
double expand(const Problem& p, const Core& core, const std::vector<int>& core_choice,
              std::vector<int>& choice) {
  choice = core.fixed;
  for (size_t k = 0; k < core.group.size(); ++k) {
    choice[core.group[k]] = core.item[k][core_choice[k]];
  }
  double objective = 0;
  for (size_t g = 0; g < p.groups.size(); ++g) objective += p.groups[g].items[choice[g]].omega;
  return objective;
}

}  // namespace

Solution solve_mckp(const Problem& p, const SolverOptions& options) {
  MPQ_CHECK(p.budgets.size() <= 1, "solver 'mckp' handles one budget, found ", p.budgets.size(),
            ": use --solver ilp");
  MPQ_CHECK(options.mckp_states >= 1, "mckp_states is ", options.mckp_states,
            ", expected at least 1");
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(options.time_limit_s));
  const double limit =
      p.budgets.empty() ? kInf : internal::effective_limit(p.budgets[0].limit, options.tolerance);
  const internal::HullRelaxation relax(p, 0);
  const internal::RelaxedPoint root = relax.solve(limit);
  Solution s;
  if (!root.feasible) {
    s.detail = "the cheapest candidates already exceed the budget";
    return s;
  }
  SolverOptions greedy_options = options;
  greedy_options.one_swap = true;
  const Solution greedy = solve_greedy(p, greedy_options);
  s.choice = greedy.choice;
  s.objective = greedy.objective;
  s.bound = std::min(root.objective, s.objective);

  // Rounds with a threshold T from just above the bound towards the incumbent, the distance x2
  // each round: fix the items that cannot be in an allocation below T, then search the core
  // that is left below T. Finding one proves it optimal (the round kept every better state);
  // finding none proves the optimum >= T. The DP searches until a round merges states; from then
  // on the branch and bound does, at the same T.
  const double lambda = root.multiplier;
  const double slack = 1e-12 * (std::abs(s.objective) + std::abs(root.objective));
  double step = (s.objective - s.bound) / 256;
  bool proved = s.objective <= s.bound, use_dp = true, timed_out = false;
  int rounds = 0;
  int64_t most_states = 0, core_groups = 0, nodes = 0;
  std::ostringstream merged;
  while (!proved) {
    const double threshold = std::min(s.objective, s.bound + step);
    ++rounds;
    const Core core = reduce(p, limit, lambda, threshold, slack);
    bool found = false, complete = true;
    double loss = 0;
    if (!core.empty_group) {
      core_groups = std::max<int64_t>(core_groups, static_cast<int64_t>(core.group.size()));
      double fixed_omega = 0;
      for (size_t g = 0; g < p.groups.size(); ++g) {
        if (core.fixed[g] >= 0) fixed_omega += p.groups[g].items[core.fixed[g]].omega;
      }
      const internal::HullRelaxation core_relax(core.problem, 0);
      std::vector<double> lagrangian = internal::lagrangian_suffix(core.problem, 0, lambda);
      std::vector<int> core_choice;
      if (use_dp) {
        DpSettings set;
        set.limit = core.problem.budgets[0].limit;
        set.buckets = options.mckp_states;
        set.relax = &core_relax;
        set.lambda = lambda;
        set.lagrangian = std::move(lagrangian);
        set.threshold = threshold - fixed_omega;
        const DpResult dp = run_dp(core.problem, set);
        most_states = std::max(most_states, dp.most_states);
        // The last state has the smallest omega, and every state is below the threshold.
        found = !dp.last.empty();
        if (found) core_choice = dp.choice(static_cast<int32_t>(dp.last.size()) - 1);
        if (dp.loss > 0) {
          complete = false;
          use_dp = false;
          loss = dp.loss;
          merged << "; states merged in " << dp.merged_stages << " stages (cost buckets up to "
                 << dp.width << " wide, objective loss <= " << dp.loss << ")";
        }
      } else {
        BranchAndBound bb(core.problem, core_relax, core.problem.budgets[0].limit, lambda,
                          std::move(lagrangian));
        complete = bb.run(deadline, threshold - fixed_omega);
        nodes += bb.nodes();
        found = bb.found();
        if (found) core_choice = bb.best();
        timed_out = !complete;
      }
      if (found) {
        std::vector<int> choice;
        const double objective = expand(p, core, core_choice, choice);
        if (objective < s.objective) {
          s.choice = choice;
          s.objective = objective;
        }
      }
    }
    if (timed_out) break;
    if (!complete) {
      // The merged round's answer is within `loss` of the best below the threshold.
      s.bound = std::max(s.bound, std::min(threshold, s.objective) - loss);
      s.bound = std::min(s.bound, s.objective);
      continue;  // the same threshold again, by branch and bound
    }
    if (found) {
      proved = true;
    } else {
      s.bound = std::max(s.bound, threshold);
      proved = threshold >= s.objective;
      step *= 2;
    }
  }

  std::ostringstream detail;
  if (rounds == 0) detail << "the greedy answer meets the LP bound; ";
  detail << rounds << " round(s), core of up to " << core_groups << " groups, DP kept at most "
         << most_states << " states per stage" << merged.str();
  if (!use_dp) detail << "; branch and bound " << nodes << " nodes";
  if (proved) {
    s.status = SolveStatus::kOptimal;
    s.bound = s.objective;
  } else {
    s.status = SolveStatus::kFeasible;
    s.bound = std::min(s.bound, s.objective);
    detail << ", stopped at the time limit";
  }
  s.gap = s.objective - s.bound;
  s.detail = detail.str();
  return s;
}

std::vector<FrontierPoint> pareto_frontier(const Problem& p, int budget, int points,
                                           const SolverOptions& options) {
  check_problem(p);
  MPQ_CHECK(budget >= 0 && budget < static_cast<int>(p.budgets.size()), "pareto frontier: budget ",
            budget, " is out of range, the problem has ", p.budgets.size(), " budgets");
  MPQ_CHECK(points >= 2, "pareto frontier: ", points, " points requested, expected at least 2");
  DpSettings set;
  set.budget = budget;
  set.buckets = options.mckp_states;
  const DpResult dp = run_dp(p, set);
  const std::vector<State>& all = dp.last;

  // Thin to the points nearest to evenly spaced costs (ties to the cheaper); both ends stay.
  std::vector<int32_t> picked;
  const int64_t n = static_cast<int64_t>(all.size());
  if (n <= points) {
    for (int32_t i = 0; i < n; ++i) picked.push_back(i);
  } else {
    const double low = all.front().cost, high = all.back().cost;
    int64_t at = 0;
    for (int k = 0; k < points; ++k) {
      const double target = k + 1 == points ? high : low + (high - low) * k / (points - 1);
      while (at + 1 < n && std::abs(all[at + 1].cost - target) < std::abs(all[at].cost - target)) {
        ++at;
      }
      if (picked.empty() || picked.back() != at) picked.push_back(static_cast<int32_t>(at));
    }
  }
  std::vector<FrontierPoint> out;
  out.reserve(picked.size());
  for (int32_t i : picked) out.push_back({all[i].cost, all[i].omega, dp.choice(i)});
  return out;
}

}  // namespace mpq
