// Builds the solvers' Problem from sensitivities, shapes, a target and budgets (methods.md §1,
// §2, §4; see build.h). The objective is separable: a group's Omega is the sum of its layers'
// weight and activation Omegas, as in MPQCO's and HAWQ's additive models.
#include "search/build.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

#include "core/error.h"

namespace mpq {

namespace {

bool lossless(int bits) { return bits >= 16; }

// Union-find over layer indices.
struct Sets {
  std::vector<int64_t> parent;
  explicit Sets(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int64_t find(int64_t i) {
    return parent[size_t(i)] == i ? i : parent[size_t(i)] = find(parent[size_t(i)]);
  }
  void join(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[size_t(std::max(a, b))] = std::min(a, b);  // the earlier layer leads
  }
};

std::string join_bits(const std::vector<int>& bits) {
  std::ostringstream s;
  for (size_t i = 0; i < bits.size(); ++i) s << (i ? "," : "") << bits[i];
  return s.str();
}

}  // namespace

BuiltProblem build_problem(const SearchInput& in) {
  const size_t n = in.layers.size();
  MPQ_CHECK(n > 0, in.where, ": no layers to search");
  BuiltProblem out;
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < n; ++i) index[in.layers[i].info.name] = int64_t(i);

  // Candidates per layer: what the target allows and the sensitivity measured.
  bool has_act_omega = false;
  for (const auto& l : in.layers) has_act_omega = has_act_omega || !l.act_omega.empty();
  std::set<int> dropped_weight;
  bool fixed_act = false;
  std::set<int> dropped_act;
  for (const auto& l : in.layers) {
    LayerCandidates c = layer_candidates(in.target, l.info);
    std::vector<int> w;
    for (int b : c.weight_bits) {
      if (lossless(b) || l.weight_omega.count(b)) {
        w.push_back(b);
      } else if (c.reason == LayerCandidates::Reason::kSearched) {
        dropped_weight.insert(b);
      } else {
        MPQ_FAIL(in.where, ": layer '", l.info.name, "' is fixed at ", b,
                 " weight bits by the target's rule '", c.rule,
                 "' but the sensitivity has no Omega at ", b, " bits (measured: ", join_bits([&] {
                   std::vector<int> m;
                   for (const auto& [bits, omega] : l.weight_omega) m.push_back(bits);
                   return m;
                 }()),
                 "); re-run mpq sensitivity with --bits including ", b);
      }
    }
    MPQ_CHECK(!w.empty(), in.where, ": layer '", l.info.name, "': the target allows weight bits {",
              join_bits(c.weight_bits), "} but the sensitivity has Omega for none of them");
    c.weight_bits = w;
    // Pairs the target offers, restricted to measured weight widths. Without any activation
    // Omega, searching activation bits would always pick the cheapest (Omega 0): each weight
    // width keeps only its pair with the highest activation bits (for a target whose kernels
    // pair them, e.g. w4a4 / w8a8, that is the kernel itself, as in HAWQ-V3's ILP).
    std::vector<std::pair<int, int>> pairs;
    for (auto [wb, ab] : c.pairs) {
      if (!std::count(w.begin(), w.end(), wb)) continue;
      if (l.act_omega.empty()) {
        bool higher = false;
        for (auto [wb2, ab2] : c.pairs) higher = higher || (wb2 == wb && ab2 > ab);
        if (higher) {
          fixed_act = true;
          continue;
        }
      } else if (!lossless(ab) && !l.act_omega.count(ab)) {
        dropped_act.insert(ab);
        continue;
      }
      pairs.emplace_back(wb, ab);
    }
    MPQ_CHECK(!pairs.empty(), in.where, ": layer '", l.info.name,
              "': no (weight, activation) pair the target offers has a measured Omega");
    c.pairs = pairs;
    out.candidates.push_back(c);
  }
  if (!dropped_weight.empty()) {
    std::vector<int> d(dropped_weight.begin(), dropped_weight.end());
    out.notes.push_back("weight bits {" + join_bits(d) +
                        "} allowed by the target are left out: the sensitivity has no Omega there");
  }
  if (!dropped_act.empty()) {
    std::vector<int> d(dropped_act.begin(), dropped_act.end());
    out.notes.push_back("activation bits {" + join_bits(d) +
                        "} allowed by the target are left out: the sensitivity has no Omega there");
  }
  if (fixed_act) {
    out.notes.push_back(
        "each weight width takes its highest activation bits: the sensitivity has no activation "
        "Omega (mpq sensitivity --metric delta-loss --act-bits ...)");
  }

  // Tied sets: the caller's (automatic) ties and the target's patterns.
  Sets sets(n);
  auto tie = [&](const std::vector<int64_t>& members) {
    for (size_t k = 1; k < members.size(); ++k) sets.join(members[0], members[k]);
  };
  for (const auto& group : in.ties) {
    std::vector<int64_t> m;
    for (const auto& name : group) {
      auto it = index.find(name);
      if (it != index.end()) m.push_back(it->second);
    }
    tie(m);
  }
  for (const auto& patterns : in.target.ties) {
    std::vector<int64_t> m;
    for (size_t i = 0; i < n; ++i) {
      for (const auto& p : patterns) {
        if (glob_match(p, in.layers[i].info.name)) {
          m.push_back(int64_t(i));
          break;
        }
      }
    }
    tie(m);
  }
  std::map<int64_t, int64_t> group_of_root;
  out.group_of_layer.assign(n, -1);
  std::vector<std::vector<int64_t>> members;
  for (size_t i = 0; i < n; ++i) {
    int64_t r = sets.find(int64_t(i));
    auto it = group_of_root.find(r);
    if (it == group_of_root.end()) {
      it = group_of_root.emplace(r, int64_t(members.size())).first;
      members.emplace_back();
    }
    out.group_of_layer[i] = it->second;
    members[size_t(it->second)].push_back(int64_t(i));
  }

  // Budgets: which become knapsack rows, and the memory maximum.
  std::vector<CostKind> row_kinds;
  const BudgetSpec* memory = nullptr;
  for (const auto& spec : in.budgets) {
    BuiltBudget b;
    b.spec = spec;
    if (cost_kind_info(spec.kind).max_aggregate) {
      MPQ_CHECK(!memory, "--budget '", spec.text, "': only one memory budget can be given");
      memory = &spec;
    } else {
      b.row = int(row_kinds.size());
      row_kinds.push_back(spec.kind);
      out.problem.budgets.push_back({cost_kind_info(spec.kind).name, 0});
    }
    if (spec.kind == CostKind::kSize) b.fixed = in.fixed_size_bytes;
    out.budgets.push_back(b);
  }

  // Items: the cross product of the group's common candidates.
  double memory_lowest = 0, memory_highest = 0;
  std::vector<std::vector<double>> item_memory;
  for (const auto& m : members) {
    const SearchLayer& lead = in.layers[size_t(m[0])];
    std::vector<std::pair<int, int>> pairs = out.candidates[size_t(m[0])].pairs;
    for (int64_t i : m) {
      std::vector<std::pair<int, int>> common;
      const auto& other = out.candidates[size_t(i)].pairs;
      std::set_intersection(pairs.begin(), pairs.end(), other.begin(), other.end(),
                            std::back_inserter(common));
      pairs = common;
    }
    if (pairs.empty()) {
      std::ostringstream names;
      for (int64_t i : m) {
        names << (i == m[0] ? "" : ", ") << "'" << in.layers[size_t(i)].info.name << "' {";
        for (auto [wb, ab] : out.candidates[size_t(i)].pairs) names << " w" << wb << "a" << ab;
        names << " }";
      }
      MPQ_FAIL(in.where, ": tied layers have no bit widths in common: ", names.str());
    }
    Group g;
    g.name = lead.info.name;
    for (int64_t i : m) g.layers.push_back(in.layers[size_t(i)].info.name);
    std::vector<double> mem;
    for (auto [wb, ab] : pairs) {
      {
        Item item;
        item.weight_bits = wb;
        item.act_bits = ab;
        item.cost.assign(row_kinds.size(), 0.0);
        double peak = 0;
        for (int64_t i : m) {
          const SearchLayer& l = in.layers[size_t(i)];
          item.omega += lossless(wb) ? 0.0 : l.weight_omega.at(wb);
          if (!lossless(ab) && l.act_omega.count(ab)) item.omega += l.act_omega.at(ab);
          for (size_t k = 0; k < row_kinds.size(); ++k) {
            item.cost[k] += layer_cost(row_kinds[k], l.info, wb, ab, in.target);
          }
          peak = std::max(peak, layer_cost(CostKind::kMemory, l.info, wb, ab, in.target));
        }
        g.items.push_back(item);
        mem.push_back(peak);
      }
    }
    memory_lowest = std::max(memory_lowest, *std::min_element(mem.begin(), mem.end()));
    memory_highest = std::max(memory_highest, *std::max_element(mem.begin(), mem.end()));
    item_memory.push_back(mem);
    out.problem.groups.push_back(std::move(g));
  }

  // The memory maximum first: it removes items, which moves the other budgets' minimums.
  double total_weights = 0;
  for (const auto& l : in.layers) total_weights += double(l.info.weight_elems);
  if (memory) {
    double limit = resolve_limit(*memory, memory_lowest, memory_highest, total_weights);
    MPQ_CHECK(limit >= memory_lowest * (1 - 1e-9), "budgets cannot be met: memory limit ",
              format_cost(CostKind::kMemory, limit), " < minimum ",
              format_cost(CostKind::kMemory, memory_lowest),
              " (the largest activation at its layer's lowest activation bits)");
    for (size_t g = 0; g < out.problem.groups.size(); ++g) {
      Group& group = out.problem.groups[g];
      std::vector<Item> kept;
      for (size_t i = 0; i < group.items.size(); ++i) {
        if (item_memory[g][i] <= limit * (1 + 1e-9)) kept.push_back(group.items[i]);
      }
      MPQ_ASSERT(!kept.empty(), "a memory limit above the minimum leaves every group an item");
      group.items = std::move(kept);
    }
  }

  // Limits of the summed budgets.
  std::vector<double> lo = min_costs(out.problem), hi = max_costs(out.problem);
  std::ostringstream unmet;
  for (auto& b : out.budgets) {
    if (b.row >= 0) {
      b.lowest = lo[size_t(b.row)] + b.fixed;
      b.highest = hi[size_t(b.row)] + b.fixed;
    } else {
      b.lowest = memory_lowest;
      b.highest = memory_highest;
    }
    b.limit = resolve_limit(b.spec, b.lowest, b.highest, total_weights);
    if (b.row >= 0) out.problem.budgets[size_t(b.row)].limit = b.limit - b.fixed;
    // A relative margin absorbs rounding in r = 0 and in hand-typed limits equal to the minimum.
    if (b.limit < b.lowest * (1 - 1e-9)) {
      unmet << (unmet.tellp() > 0 ? "; " : "") << cost_kind_info(b.spec.kind).name << " limit "
            << format_cost(b.spec.kind, b.limit) << " < minimum "
            << format_cost(b.spec.kind, b.lowest);
    }
  }
  MPQ_CHECK(unmet.tellp() == 0, "budgets cannot be met: ", unmet.str(),
            " (the minimum is every layer at its cheapest allowed bits)");
  return out;
}

}  // namespace mpq
