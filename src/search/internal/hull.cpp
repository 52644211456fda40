// Non-dominated items, lower convex hulls and the MCKP LP relaxation shared by greedy, mckp and
// lp (methods.md §1, §4). See hull.h for the maths.
#include "search/internal/hull.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace mpq::internal {

std::vector<HullPoint> pareto_items(const Group& g, int budget) {
  std::vector<HullPoint> all;
  all.reserve(g.items.size());
  for (size_t i = 0; i < g.items.size(); ++i) {
    all.push_back({item_cost(g.items[i], budget), g.items[i].omega, static_cast<int>(i)});
  }
  std::sort(all.begin(), all.end(), [](const HullPoint& a, const HullPoint& b) {
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.omega != b.omega) return a.omega < b.omega;
    return a.item < b.item;
  });
  std::vector<HullPoint> kept;
  for (const HullPoint& h : all) {
    if (kept.empty() || h.omega < kept.back().omega) kept.push_back(h);
  }
  return kept;
}

std::vector<HullPoint> lower_hull(const std::vector<HullPoint>& pareto) {
  std::vector<HullPoint> hull;
  for (const HullPoint& c : pareto) {
    while (hull.size() >= 2) {
      const HullPoint& a = hull[hull.size() - 2];
      const HullPoint& b = hull.back();
      // b lies above the chord a-c when (b.o - a.o)(c.c - a.c) > (c.o - a.o)(b.c - a.c). The
      // relative slack keeps points that are on the chord up to rounding (equally spaced bits).
      double chord = (c.omega - a.omega) * (b.cost - a.cost);
      double here = (b.omega - a.omega) * (c.cost - a.cost);
      if (here - chord > 1e-12 * (std::abs(here) + std::abs(chord))) {
        hull.pop_back();
      } else {
        break;
      }
    }
    hull.push_back(c);
  }
  return hull;
}

HullRelaxation::HullRelaxation(const Problem& p, int budget) {
  const int64_t n = static_cast<int64_t>(p.groups.size());
  hulls_.resize(n);
  suffix_cost_.assign(n + 1, 0.0);
  suffix_omega_.assign(n + 1, 0.0);
  for (int64_t g = 0; g < n; ++g) {
    hulls_[g] = lower_hull(pareto_items(p.groups[g], budget));
    const std::vector<HullPoint>& h = hulls_[g];
    double previous = std::numeric_limits<double>::infinity();
    for (size_t s = 1; s < h.size(); ++s) {
      HullStep step;
      step.group = g;
      step.to = static_cast<int64_t>(s);
      step.dcost = h[s].cost - h[s - 1].cost;
      step.domega = h[s].omega - h[s - 1].omega;
      // Points kept on an edge within rounding may raise the ratio by an ulp; clamping keeps a
      // group's steps in hull order once sorted.
      step.ratio = std::min(-step.domega / step.dcost, previous);
      previous = step.ratio;
      steps_.push_back(step);
    }
  }
  for (int64_t g = n - 1; g >= 0; --g) {
    suffix_cost_[g] = suffix_cost_[g + 1] + hulls_[g].front().cost;
    suffix_omega_[g] = suffix_omega_[g + 1] + hulls_[g].front().omega;
  }
  std::sort(steps_.begin(), steps_.end(), [this](const HullStep& a, const HullStep& b) {
    if (a.ratio != b.ratio) return a.ratio > b.ratio;
    if (a.group != b.group) return a.group < b.group;
    return hulls_[a.group][a.to].cost < hulls_[b.group][b.to].cost;
  });
}

double HullRelaxation::bound(int64_t first, double capacity) const {
  const double base = suffix_cost_[first];
  if (base > capacity) return std::numeric_limits<double>::infinity();
  double room = capacity - base;
  double value = suffix_omega_[first];
  for (const HullStep& s : steps_) {
    if (s.group < first) continue;
    if (s.dcost <= room) {
      room -= s.dcost;
      value += s.domega;
    } else {
      value += s.domega * (room / s.dcost);
      break;
    }
  }
  return value;
}

RelaxedPoint HullRelaxation::solve(double capacity) const {
  RelaxedPoint r;
  const int64_t n = groups();
  r.at.assign(n, 0);
  r.fraction.assign(n, 0.0);
  if (suffix_cost_[0] > capacity) return r;
  r.feasible = true;
  double room = capacity - suffix_cost_[0];
  r.objective = suffix_omega_[0];
  bool stopped = false;
  for (const HullStep& s : steps_) {
    if (s.dcost <= room) {
      room -= s.dcost;
      r.objective += s.domega;
      r.at[s.group] = s.to;
    } else {
      double f = room / s.dcost;
      r.objective += s.domega * f;
      r.fraction[s.group] = f;
      r.multiplier = s.ratio;
      stopped = true;
      break;
    }
  }
  if (stopped) {
    r.cost = capacity;
  } else {
    for (int64_t g = 0; g < n; ++g) r.cost += hulls_[g][r.at[g]].cost;
  }
  return r;
}

SuffixBound::SuffixBound(const HullRelaxation& relax, int64_t first)
    : base_cost_(relax.suffix_cost_[first]), base_omega_(relax.suffix_omega_[first]) {
  double reach = 0, value = 0;
  for (const HullStep& s : relax.steps_) {
    if (s.group < first) continue;
    reach += s.dcost;
    value += s.domega;
    reach_.push_back(reach);
    value_.push_back(value);
    slope_.push_back(s.domega / s.dcost);
  }
}

double SuffixBound::operator()(double capacity) const {
  const double room = capacity - base_cost_;
  if (room < 0) return std::numeric_limits<double>::infinity();
  // Steps 0..j-1 fit in full; step j (if any) takes the rest of the room.
  const size_t j = std::upper_bound(reach_.begin(), reach_.end(), room) - reach_.begin();
  if (j == reach_.size()) return base_omega_ + (j > 0 ? value_[j - 1] : 0.0);
  const double before = j > 0 ? reach_[j - 1] : 0.0;
  return base_omega_ + (j > 0 ? value_[j - 1] : 0.0) + slope_[j] * (room - before);
}

std::vector<double> lagrangian_suffix(const Problem& p, int budget, double lambda) {
  const size_t n = p.groups.size();
  std::vector<double> suffix(n + 1, 0.0);
  for (size_t g = n; g-- > 0;) {
    double best = std::numeric_limits<double>::infinity();
    for (const Item& item : p.groups[g].items) {
      best = std::min(best, item.omega + lambda * item_cost(item, budget));
    }
    suffix[g] = suffix[g + 1] + best;
  }
  return suffix;
}

}  // namespace mpq::internal
