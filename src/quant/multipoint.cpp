#include "quant/multipoint.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>
#include <utility>

#include "core/error.h"
#include "quant/scheme.h"

namespace mpq {
namespace {

// Scales are stored as float32 and stay positive; this floor is the scale of a channel whose
// residual is already zero (its points are all 0).
constexpr double kMinScale = 1e-30;
constexpr int kMaxRefineRounds = 10;
// Under a gram the ratio search scores every kCoarseStep-th ratio, then the neighbours of the best.
constexpr int64_t kCoarseStep = 5;
// build_points searches blocks of about this many float64 elements (512 KiB) at a time.
constexpr int64_t kBlockElements = int64_t(1) << 16;

// Clipping ratios t of max|r| / qmax for the 1-D search: weight_scale's "mse" grid at its defaults
// (100 values from 1 down to 0.2), so point 1 is never worse than that method, then 0.19..0.01 for
// heavy-tailed residuals at 2-3 bits.
const std::vector<double>& clip_ratios() {
  static const std::vector<double> ratios = [] {
    std::vector<double> t;
    for (int k = 0; k < 100; ++k) t.push_back(1.0 - 0.8 * double(k) / 99.0);
    for (int k = 19; k >= 1; --k) t.push_back(0.01 * double(k));
    return t;
  }();
  return ratios;
}

void check_bits(int bits, const char* where) {
  MPQ_CHECK(bits >= 2 && bits <= 8, "multipoint: ", where, ": bits: expected 2-8, found ", bits);
}

void check_rows(const at::Tensor& w, const char* where) {
  MPQ_CHECK(w.defined(), "multipoint: ", where, ": weight: expected a [C, K] tensor, found none");
  MPQ_CHECK(w.dim() == 2, "multipoint: ", where,
            ": weight: expected per-channel rows [C, K] (2-D), found shape ", w.sizes());
  MPQ_CHECK(at::isFloatingType(w.scalar_type()), "multipoint: ", where,
            ": weight: expected a float tensor, found ", w.scalar_type());
  MPQ_CHECK(w.size(0) > 0 && w.size(1) > 0, "multipoint: ", where,
            ": weight: expected at least one channel and one input, found shape ", w.sizes());
  MPQ_CHECK(at::isfinite(w).all().item<bool>(), "multipoint: ", where,
            ": weight: expected finite values, found inf or nan");
}

// The gram as float64 on `device`, or undefined for the identity.
at::Tensor checked_gram(const at::Tensor& gram, int64_t channels, int64_t k, at::Device device,
                        const char* where) {
  if (!gram.defined()) return {};
  MPQ_CHECK(gram.dim() == 3 && gram.size(0) >= 1 && gram.size(1) == k && gram.size(2) == k,
            "multipoint: ", where, ": gram: expected [groups, K, K] with K = ", k, ", found shape ",
            gram.sizes());
  MPQ_CHECK(channels % gram.size(0) == 0, "multipoint: ", where, ": gram: ", gram.size(0),
            " groups do not divide the ", channels, " channels");
  MPQ_CHECK(at::isFloatingType(gram.scalar_type()), "multipoint: ", where,
            ": gram: expected a float tensor, found ", gram.scalar_type());
  MPQ_CHECK(at::isfinite(gram).all().item<bool>(), "multipoint: ", where,
            ": gram: expected finite values, found inf or nan");
  return gram.detach().to(device, at::kDouble);
}

// d_j^T G_j d_j for every row of d (float64 [C, K]); G = I when gram is undefined.
at::Tensor quadratic(const at::Tensor& d, const at::Tensor& gram) {
  if (!gram.defined()) return d.square().sum(1);
  int64_t groups = gram.size(0), c = d.size(0), k = d.size(1);
  at::Tensor dg = d.reshape({groups, c / groups, k});
  return (at::bmm(dg, gram) * dg).sum(-1).reshape({c});
}

// Checks the tensors every step after build_points relies on; returns P.
int64_t check_layer(const MultipointLayer& l, const char* where) {
  check_bits(l.bits, where);
  MPQ_CHECK(l.scales.defined() && l.points.defined() && l.count.defined(), "multipoint: ", where,
            ": layer has no points: build it with build_points");
  MPQ_CHECK(l.points.dim() == 3 && l.points.scalar_type() == at::kChar, "multipoint: ", where,
            ": points: expected int8 [P, C, K], found ", l.points.scalar_type(), " ",
            l.points.sizes());
  int64_t p = l.points.size(0), c = l.points.size(1);
  MPQ_CHECK(p >= 1 && c >= 1, "multipoint: ", where, ": points: expected P, C >= 1, found ",
            l.points.sizes());
  MPQ_CHECK(l.scales.scalar_type() == at::kFloat && l.scales.sizes() == at::IntArrayRef({p, c}),
            "multipoint: ", where, ": scales: expected float32 [", p, ", ", c, "], found ",
            l.scales.scalar_type(), " ", l.scales.sizes());
  MPQ_CHECK(l.count.scalar_type() == at::kLong && l.count.sizes() == at::IntArrayRef({c}),
            "multipoint: ", where, ": count: expected int64 [", c, "], found ",
            l.count.scalar_type(), " ", l.count.sizes());
  MPQ_CHECK(l.count.min().item<int64_t>() >= 1 && l.count.max().item<int64_t>() <= p,
            "multipoint: ", where, ": count: expected 1..", p, " points per channel, found ",
            l.count.min().item<int64_t>(), "..", l.count.max().item<int64_t>());
  return p;
}

at::Tensor round_to_grid(const at::Tensor& r, const at::Tensor& a, const IntRange& g) {
  return at::round(r / a.unsqueeze(1)).clamp_(double(g.qmin), double(g.qmax));
}

// The metric the point search minimises: ||d||^2, or d^T G d with the rows of a block split evenly
// over the block's grams (consecutive rows share one).
struct Metric {
  at::Tensor gram;  // float64 [g, K, K], or undefined for the identity
  at::Tensor apply(const at::Tensor& d) const {
    if (!gram.defined()) return d;
    if (gram.size(0) == 1) return d.mm(gram[0]);
    return at::bmm(d.reshape({gram.size(0), -1, d.size(1)}), gram).reshape(d.sizes());
  }
  at::Tensor error(const at::Tensor& d) const { return (d * apply(d)).sum(1); }
};

// The least-squares scale <r,q>_G / ||q||_G^2 per row, rounded to float32 (the stored value);
// `fallback` where it is not positive (q all zero, or pointing away from r under G).
at::Tensor ls_scale(const at::Tensor& r, const at::Tensor& q, const at::Tensor& fallback,
                    const Metric& m) {
  at::Tensor gq = m.apply(q);
  at::Tensor qq = (q * gq).sum(1), rq = (r * gq).sum(1);
  at::Tensor ok = (qq > 0) & (rq > 0);
  at::Tensor a = at::where(ok, rq / at::where(ok, qq, 1.0), fallback);
  return a.clamp_min(kMinScale).to(at::kFloat).to(at::kDouble);
}

struct Point {
  at::Tensor scale;  // float64 [C] holding float32 values
  at::Tensor q;      // float64 [C, K] holding grid integers
};

// argmin over a > 0 and q on the grid of ||r_j - a q||_G^2 for every row of r (float64 [C, K]).
Point best_point(const at::Tensor& r, const IntRange& g, const Metric& m) {
  at::Tensor base = r.abs().amax(1) / double(g.qmax);
  at::Tensor rr = m.error(r);
  at::Tensor best_ls, best_start;  // the best least-squares error and the scale that found its q
  at::Tensor best_index;           // per row, the index into clip_ratios() of best_start
  const std::vector<double>& ratios = clip_ratios();
  const int64_t n_ratios = int64_t(ratios.size());
  at::Tensor ratio_table = at::tensor(ratios, at::kDouble);
  // Scores the grid vectors q_t at their least-squares scales for per-row ratio indices `index`.
  auto consider = [&](const at::Tensor& index) {
    at::Tensor start = (base * ratio_table.index_select(0, index)).clamp_min(kMinScale);
    at::Tensor q = round_to_grid(r, start, g);
    at::Tensor gq = m.apply(q);
    at::Tensor qq = (q * gq).sum(1), rq = (r * gq).sum(1);
    at::Tensor ls = at::where((qq > 0) & (rq > 0), rr - rq.square() / qq.clamp_min(1e-300), rr);
    if (!best_ls.defined()) {
      best_ls = ls;
      best_start = start;
      best_index = index;
      return;
    }
    at::Tensor better = ls < best_ls;
    best_ls = at::where(better, ls, best_ls);
    best_start = at::where(better, start, best_start);
    best_index = at::where(better, index, best_index);
  };
  auto all_rows = [&](int64_t i) { return at::full({r.size(0)}, i, at::kLong); };
  if (!m.gram.defined()) {
    for (int64_t i = 0; i < n_ratios; ++i) consider(all_rows(i));
  } else {
    // Under a gram each score costs a K x K product: every kCoarseStep-th ratio, then the ratios
    // around each row's best.
    for (int64_t i = 0; i < n_ratios; i += kCoarseStep) consider(all_rows(i));
    at::Tensor centre = best_index.clone();
    for (int64_t d = 1; d < kCoarseStep; ++d) {
      consider((centre + d).clamp_max(n_ratios - 1));
      consider((centre - d).clamp_min(0));
    }
  }
  at::Tensor q = round_to_grid(r, best_start, g);
  at::Tensor a = ls_scale(r, q, best_start, m);
  at::Tensor err = m.error(r - a.unsqueeze(1) * q);
  for (int round = 0; round < kMaxRefineRounds; ++round) {
    at::Tensor q_new = round_to_grid(r, a, g);
    at::Tensor a_new = ls_scale(r, q_new, a, m);
    at::Tensor err_new = m.error(r - a_new.unsqueeze(1) * q_new);
    at::Tensor better = err_new < err;
    if (!better.any().item<bool>()) break;
    a = at::where(better, a_new, a);
    q = at::where(better.unsqueeze(1), q_new, q);
    err = at::where(better, err_new, err);
  }
  return {a, q};
}

// One entry of the allocation queue: the reduction the channel's next point brings.
struct Candidate {
  double gain;
  int64_t layer;
  int64_t channel;
};

// Orders the max-heap: larger gain first, then lower layer, then lower channel.
struct RanksBelow {
  bool operator()(const Candidate& x, const Candidate& y) const {
    if (x.gain != y.gain) return x.gain < y.gain;
    if (x.layer != y.layer) return x.layer > y.layer;
    return x.channel > y.channel;
  }
};

struct LayerErrors {
  at::Tensor errors;  // float64 [C, P], contiguous, on the CPU
  at::Tensor count;   // int64 [C] on the CPU, written in place
  double norm = 1;    // reductions are divided by this (kNetwork: the output energy)
  int64_t cost = 1;   // budget units one point takes (kNetwork: the channel's K elements)
};

double gain(const LayerErrors& l, int64_t channel, int64_t n) {
  if (l.norm == 0) return 0;
  int64_t p = l.errors.size(1);
  const double* e = l.errors.data_ptr<double>() + channel * p;
  return (e[n - 1] - e[n]) / l.norm / double(l.cost);
}

// Gives up to `budget` extra points among layers[first, last); counts start at 1.
void allocate_greedy(std::vector<LayerErrors>& layers, size_t first, size_t last, int64_t budget) {
  std::vector<Candidate> start;
  for (size_t l = first; l < last; ++l) {
    if (layers[l].errors.size(1) < 2) continue;
    for (int64_t j = 0; j < layers[l].errors.size(0); ++j) {
      start.push_back({gain(layers[l], j, 1), int64_t(l), j});
    }
  }
  std::priority_queue<Candidate, std::vector<Candidate>, RanksBelow> queue(RanksBelow(),
                                                                           std::move(start));
  for (int64_t spent = 0; spent < budget && !queue.empty();) {
    Candidate c = queue.top();
    if (!(c.gain > 0)) break;
    queue.pop();
    LayerErrors& l = layers[size_t(c.layer)];
    if (spent + l.cost > budget) continue;  // does not fit; a cheaper point may
    spent += l.cost;
    int64_t& n = l.count.data_ptr<int64_t>()[c.channel];
    ++n;
    if (n < l.errors.size(1)) queue.push({gain(l, c.channel, n), c.layer, c.channel});
  }
}

}  // namespace

MultipointLayer build_points(const at::Tensor& w, int bits, int max_points,
                             const at::Tensor& gram) {
  check_bits(bits, "build_points");
  MPQ_CHECK(max_points >= 1, "multipoint: build_points: max points: expected >= 1, found ",
            max_points);
  check_rows(w, "build_points");
  at::NoGradGuard no_grad;
  IntRange g = int_range(bits, true);
  int64_t c = w.size(0), k = w.size(1);
  at::Tensor grams = checked_gram(gram, c, k, w.device(), "build_points");
  int64_t groups = grams.defined() ? grams.size(0) : 1, per_group = c / groups;
  MultipointLayer layer;
  layer.bits = bits;
  layer.scales = at::empty({max_points, c}, at::kFloat);
  layer.points = at::empty({max_points, c, k}, at::kChar);
  // Channels are independent: blocks of rows small enough to stay in cache through the many
  // passes of each point's search; a block holds part of one group or several whole groups.
  const int64_t rows = std::max<int64_t>(1, kBlockElements / k);
  const int64_t groups_per_block = rows / per_group;  // > 0: blocks of whole groups
  for (int64_t c0 = 0; c0 < c;) {
    int64_t group = c0 / per_group, n = 0, block_groups = 1;
    if (groups_per_block > 0) {
      block_groups = std::min(groups_per_block, groups - group);
      n = block_groups * per_group;
    } else {
      n = std::min(rows, (group + 1) * per_group - c0);
    }
    Metric m;
    if (grams.defined()) m.gram = grams.narrow(0, group, block_groups);
    at::Tensor r = w.detach().narrow(0, c0, n).to(at::kDouble).clone();
    for (int i = 0; i < max_points; ++i) {
      Point p = best_point(r, g, m);
      layer.scales[i].narrow(0, c0, n).copy_(p.scale);
      layer.points[i].narrow(0, c0, n).copy_(p.q);
      r.sub_(p.scale.unsqueeze(1) * p.q);
    }
    c0 += n;
  }
  layer.count = at::ones({c}, at::kLong);
  return layer;
}

void compute_errors(const at::Tensor& w, const at::Tensor& gram, MultipointLayer* layer) {
  MPQ_ASSERT(layer != nullptr, "compute_errors: null layer");
  int64_t p = check_layer(*layer, "compute_errors");
  check_rows(w, "compute_errors");
  int64_t c = layer->points.size(1), k = layer->points.size(2);
  MPQ_CHECK(w.size(0) == c && w.size(1) == k,
            "multipoint: compute_errors: weight: expected the [C, K] = [", c, ", ", k,
            "] rows the points were built from, found shape ", w.sizes());
  at::NoGradGuard no_grad;
  at::Tensor wd = w.detach().to(at::kDouble);
  at::Tensor g = checked_gram(gram, c, k, wd.device(), "compute_errors");
  at::Tensor scales = layer->scales.to(wd.device(), at::kDouble);
  at::Tensor w_hat = at::zeros_like(wd);
  at::Tensor errors = at::empty({c, p}, at::kDouble);
  for (int64_t i = 0; i < p; ++i) {
    w_hat.add_(scales[i].unsqueeze(1) * layer->points[i].to(wd.device(), at::kDouble));
    errors.select(1, i).copy_(quadratic(wd - w_hat, g));
  }
  layer->errors = errors;
}

double output_energy(const at::Tensor& w, const at::Tensor& gram) {
  check_rows(w, "output_energy");
  at::NoGradGuard no_grad;
  at::Tensor wd = w.detach().to(at::kDouble);
  at::Tensor g = checked_gram(gram, wd.size(0), wd.size(1), wd.device(), "output_energy");
  return quadratic(wd, g).sum().item<double>();
}

void allocate_points(const std::vector<MultipointLayer*>& layers,
                     const std::vector<int64_t>& extra_points, PointScope scope,
                     const std::vector<double>& energy) {
  bool network = scope == PointScope::kNetwork;
  size_t budgets = network ? 1 : layers.size();
  MPQ_CHECK(extra_points.size() == budgets, "multipoint: allocate_points: expected ", budgets,
            network ? " budget (network scope)" : " budgets (one per layer)", ", found ",
            extra_points.size());
  for (size_t l = 0; l < extra_points.size(); ++l) {
    MPQ_CHECK(extra_points[l] >= 0, "multipoint: allocate_points: budget ", l,
              ": expected >= 0 extra points, found ", extra_points[l]);
  }
  if (network) {
    MPQ_CHECK(energy.size() == layers.size(),
              "multipoint: allocate_points: network scope needs one output energy per layer: "
              "expected ",
              layers.size(), ", found ", energy.size());
    for (size_t l = 0; l < energy.size(); ++l) {
      MPQ_CHECK(std::isfinite(energy[l]) && energy[l] >= 0, "multipoint: allocate_points: layer ",
                l, ": output energy: expected a finite value >= 0, found ", energy[l]);
    }
  }
  std::vector<LayerErrors> views(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    MPQ_ASSERT(layers[l] != nullptr, "allocate_points: layer ", l, " is null");
    const MultipointLayer& layer = *layers[l];
    MPQ_CHECK(layer.errors.defined(), "multipoint: allocate_points: layer ", l,
              " has no errors: call compute_errors first");
    MPQ_CHECK(layer.errors.dim() == 2 && layer.errors.size(0) >= 1 && layer.errors.size(1) >= 1,
              "multipoint: allocate_points: layer ", l, ": errors: expected [C, P], found shape ",
              layer.errors.sizes());
    if (layer.points.defined()) {
      MPQ_CHECK(layer.points.dim() == 3 && layer.points.size(0) == layer.errors.size(1) &&
                    layer.points.size(1) == layer.errors.size(0),
                "multipoint: allocate_points: layer ", l, ": errors ", layer.errors.sizes(),
                " do not match points ", layer.points.sizes(), ": call compute_errors again");
    }
    views[l].errors = layer.errors.detach().to(at::kCPU, at::kDouble).contiguous();
    MPQ_CHECK(at::isfinite(views[l].errors).all().item<bool>(),
              "multipoint: allocate_points: layer ", l,
              ": errors: expected finite values, found inf or nan");
    views[l].count = at::ones({layer.errors.size(0)}, at::kLong);
    if (network) {
      views[l].norm = energy[l];
      views[l].cost = layer.points.defined() ? std::max<int64_t>(1, layer.points.size(2)) : 1;
    }
  }
  if (network) {
    allocate_greedy(views, 0, views.size(), extra_points[0]);
  } else {
    for (size_t l = 0; l < views.size(); ++l) allocate_greedy(views, l, l + 1, extra_points[l]);
  }
  for (size_t l = 0; l < layers.size(); ++l) layers[l]->count = views[l].count;
}

at::Tensor reconstruct(const MultipointLayer& layer) {
  int64_t p = check_layer(layer, "reconstruct");
  at::Tensor used = at::arange(p, at::kLong).unsqueeze(1) < layer.count.unsqueeze(0);  // [P, C]
  at::Tensor scales = at::where(used, layer.scales.to(at::kDouble), 0.0);
  at::Tensor w_hat = at::zeros({layer.points.size(1), layer.points.size(2)}, at::kDouble);
  for (int64_t i = 0; i < p; ++i) {
    w_hat.add_(scales[i].unsqueeze(1) * layer.points[i].to(at::kDouble));
  }
  return w_hat.to(at::kFloat);
}

int64_t extra_points(const MultipointLayer& layer) {
  MPQ_CHECK(layer.count.defined(), "multipoint: extra_points: layer has no count");
  MPQ_CHECK(layer.count.dim() == 1, "multipoint: extra_points: count: expected [C], found shape ",
            layer.count.sizes());
  return layer.count.sum().item<int64_t>() - layer.count.size(0);
}

}  // namespace mpq
