#include "quant/multipoint.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/scheme.h"
#include "quant/weight_scale.h"

namespace mpq {
namespace {

// Gaussian rows with a few outliers, so that clipping matters.
at::Tensor test_weight(int64_t c, int64_t k, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor w = at::randn({c, k}) * (at::rand({c, 1}) + 0.1);
  w[0][0].fill_(6.0);
  if (c > 2) w[2][k - 1].fill_(-4.0);
  return w;
}

// A random symmetric positive definite [groups, K, K] gram.
at::Tensor test_gram(int64_t groups, int64_t k, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({groups, 3 * k, k}, at::kDouble);
  return (at::bmm(x.transpose(1, 2), x) / double(3 * k)).to(at::kFloat);
}

at::Tensor squared_error_rows(const at::Tensor& w, const at::Tensor& w_hat) {
  return (w.to(at::kDouble) - w_hat.to(at::kDouble)).square().sum(1);
}

void set_count(MultipointLayer* l, int64_t n) {
  l->count = at::full({l->points.size(1)}, n, at::kLong);
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    return;
  }
  ADD_FAILURE() << "expected an mpq::Error mentioning '" << part << "'";
}

TEST(Multipoint, OnePointIsPerChannelQuantization) {
  for (int bits : {2, 3, 4, 8}) {
    SCOPED_TRACE("bits " + std::to_string(bits));
    at::Tensor w = test_weight(12, 40, 1);
    MultipointLayer l = build_points(w, bits, 3);
    EXPECT_EQ(extra_points(l), 0);
    IntRange g = int_range(bits, true);
    EXPECT_GE(l.points.min().item<int64_t>(), g.qmin);
    EXPECT_LE(l.points.max().item<int64_t>(), g.qmax);
    EXPECT_GT(l.scales.min().item<float>(), 0.0f);
    at::Tensor w_hat = reconstruct(l);
    EXPECT_TRUE(at::equal(w_hat, l.scales[0].unsqueeze(1) * l.points[0].to(at::kFloat)));

    const SchemeInfo& sym = find_scheme("sym-channel");
    at::Tensor m = w.abs().amax(1, true);
    QParams maxabs = params_from_range(-m, m, bits, sym);
    at::Tensor err_maxabs = squared_error_rows(w, dequantize(quantize_to_int(w, maxabs), maxabs));
    WeightScaleOptions mse_options;
    mse_options.method = "mse";
    QParams mse = weight_params(w, bits, sym, mse_options);
    at::Tensor err_mse = squared_error_rows(w, dequantize(quantize_to_int(w, mse), mse));
    at::Tensor err = squared_error_rows(w, w_hat);
    EXPECT_TRUE((err <= err_maxabs * (1 + 1e-6)).all().item<bool>());
    EXPECT_TRUE((err <= err_mse * (1 + 1e-6)).all().item<bool>());
    // Clipping and the least-squares scale pay off somewhere.
    EXPECT_TRUE((err < 0.95 * err_maxabs).any().item<bool>());
  }
}

TEST(Multipoint, ErrorDecreasesWithMorePoints) {
  for (int bits : {2, 4}) {
    SCOPED_TRACE("bits " + std::to_string(bits));
    at::Tensor w = test_weight(16, 75, 2);
    MultipointLayer l = build_points(w, bits, 8);
    compute_errors(w, {}, &l);
    at::Tensor e = l.errors;
    ASSERT_EQ(e.sizes(), at::IntArrayRef({16, 8}));
    // Each point takes at least a constant fraction of the residual: strictly decreasing.
    EXPECT_TRUE((e.narrow(1, 1, 7) < e.narrow(1, 0, 7)).all().item<bool>()) << e;
    at::Tensor relative = e.select(1, 7) / w.to(at::kDouble).square().sum(1);
    EXPECT_LT(relative.max().item<double>(), bits == 4 ? 1e-12 : 1e-4);
  }
}

TEST(Multipoint, FirstPointBeatsFineGridSearch) {
  // K = 3 at 2 bits (grid -2..1): the error as a function of a has few pieces, so a fine grid
  // over a comes within ~1e-9 of the true optimum.
  at::manual_seed(3);
  const int64_t rows = 100;
  at::Tensor w = at::randn({rows, 3}) * at::rand({rows, 1}) * 3;
  MultipointLayer l = build_points(w, 2, 1);
  at::Tensor err = squared_error_rows(w, reconstruct(l));

  at::Tensor r = w.to(at::kDouble).unsqueeze(1);  // [rows, 1, 3]
  at::Tensor top = r.abs().amax(-1, true);        // [rows, 1, 1]
  at::Tensor a = at::linspace(1e-4, 2.0, 20000, at::kDouble).view({1, -1, 1}) * top;
  at::Tensor q = at::round(r / a).clamp(-2, 1);
  at::Tensor brute = (r - a * q).square().sum(-1).amin(1);  // [rows]
  EXPECT_TRUE((err <= brute + 1e-12).all().item<bool>())
      << "worst gap " << (err - brute).max().item<double>();
  // Least-squares scales reach the optimum itself, which the grid only comes close to.
  EXPECT_GT((err < brute - 1e-12).sum().item<int64_t>(), 0);
}

// Points built under a gram minimise the output error: with G = I they are the paper's points,
// and under a correlated G the first two beat the paper's on d^T G d. (Greedy under G is not
// ahead at every count: here the third paper point catches up, as its residuals stay small in
// every direction.)
TEST(Multipoint, GramPointsLowerTheOutputError) {
  at::Tensor w = test_weight(12, 16, 5);
  MultipointLayer plain = build_points(w, 3, 3);
  MultipointLayer identity = build_points(w, 3, 3, at::eye(16).unsqueeze(0));
  EXPECT_TRUE(at::equal(plain.points, identity.points));
  EXPECT_TRUE(at::equal(plain.scales, identity.scales));
  at::manual_seed(6);
  at::Tensor x = at::randn({2, 64, 16});
  x = x + x.narrow(2, 0, 1) * 3;
  at::Tensor gram = (at::bmm(x.transpose(1, 2), x) / 64.0);
  MultipointLayer aware = build_points(w, 3, 3, gram);
  compute_errors(w, gram, &plain);
  compute_errors(w, gram, &aware);
  for (int64_t n = 0; n < 3; ++n) {
    SCOPED_TRACE("points " + std::to_string(n + 1));
    if (n < 2) {
      EXPECT_LT(aware.errors.select(1, n).sum().item<double>(),
                0.5 * plain.errors.select(1, n).sum().item<double>());
    }
    if (n > 0) {
      EXPECT_TRUE((aware.errors.select(1, n) <= aware.errors.select(1, n - 1)).all().item<bool>());
    }
  }
  // Point 1 is no worse under G than max-abs per-channel quantization with its best G scale.
  at::Tensor wd = w.to(at::kDouble), g = gram.to(at::kDouble);
  IntRange grid = int_range(3, true);
  at::Tensor q = at::round(wd / (wd.abs().amax(1, true) / grid.qmax)).clamp(grid.qmin, grid.qmax);
  at::Tensor qg = at::bmm(q.reshape({2, 6, 16}), g).reshape({12, 16});
  at::Tensor a = (wd * qg).sum(1) / (q * qg).sum(1);
  at::Tensor d = (wd - a.unsqueeze(1) * q).reshape({2, 6, 16});
  at::Tensor maxabs = (at::bmm(d, g) * d).sum(-1).reshape({12});
  EXPECT_TRUE((aware.errors.select(1, 0) <= maxabs * (1 + 1e-6)).all().item<bool>());
}

TEST(Multipoint, ErrorsWithoutGramAreSquaredError) {
  at::Tensor w = test_weight(10, 30, 4);
  MultipointLayer l = build_points(w, 3, 4);
  compute_errors(w, {}, &l);
  for (int64_t n = 1; n <= 4; ++n) {
    set_count(&l, n);
    at::Tensor expected = squared_error_rows(w, reconstruct(l));
    EXPECT_TRUE(at::allclose(l.errors.select(1, n - 1), expected, 1e-5, 1e-9)) << "n " << n;
  }
}

// Direct double loop: e_j(n) = sum_kl d_k G_kl d_l with G the channel's group.
double direct_error(const MultipointLayer& l, const at::Tensor& w, const at::Tensor& gram,
                    int64_t j, int64_t n) {
  int64_t k = w.size(1), c = w.size(0);
  auto wa = w.accessor<float, 2>();
  auto sa = l.scales.accessor<float, 2>();
  auto qa = l.points.accessor<int8_t, 3>();
  auto ga = gram.accessor<float, 3>();
  int64_t group = j / (c / gram.size(0));
  std::vector<double> d(size_t(k), 0.0);
  for (int64_t x = 0; x < k; ++x) {
    d[size_t(x)] = wa[j][x];
    for (int64_t i = 0; i < n; ++i) d[size_t(x)] -= double(sa[i][j]) * double(qa[i][j][x]);
  }
  double e = 0;
  for (int64_t x = 0; x < k; ++x) {
    for (int64_t y = 0; y < k; ++y) e += d[size_t(x)] * double(ga[group][x][y]) * d[size_t(y)];
  }
  return e;
}

TEST(Multipoint, ErrorsWithGramMatchDirectLoop) {
  const int64_t c = 6, k = 10, p = 3;
  at::Tensor w = test_weight(c, k, 5);
  for (int64_t groups : {1, 3, 6}) {
    SCOPED_TRACE("groups " + std::to_string(groups));
    at::Tensor gram = test_gram(groups, k, 6);
    MultipointLayer l = build_points(w, 4, int(p));
    compute_errors(w, gram, &l);
    auto ea = l.errors.accessor<double, 2>();
    double energy = 0;
    for (int64_t j = 0; j < c; ++j) {
      energy += direct_error(l, w, gram, j, 0);
      for (int64_t n = 1; n <= p; ++n) {
        double expected = direct_error(l, w, gram, j, n);
        EXPECT_NEAR(ea[j][n - 1], expected, 1e-9 * (1 + std::abs(expected))) << j << " " << n;
      }
    }
    EXPECT_NEAR(output_energy(w, gram), energy, 1e-9 * energy);
  }
}

// Errors [C, P] whose reductions are positive and non-increasing (concave), as a layer that only
// allocate_points reads.
MultipointLayer concave_layer(int64_t c, int64_t p, std::mt19937* rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  at::Tensor e = at::empty({c, p}, at::kDouble);
  auto ea = e.accessor<double, 2>();
  for (int64_t j = 0; j < c; ++j) {
    std::vector<double> drops(size_t(p - 1));
    for (double& d : drops) d = 0.05 + u(*rng);
    std::sort(drops.rbegin(), drops.rend());
    ea[j][0] = 1.0 + double(p) + 5 * u(*rng);
    for (int64_t n = 1; n < p; ++n) ea[j][n] = ea[j][n - 1] - drops[size_t(n - 1)];
  }
  MultipointLayer l;
  l.errors = e;
  return l;
}

double total_error(const std::vector<MultipointLayer>& layers, const std::vector<double>& norm) {
  double t = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    auto e = layers[l].errors.accessor<double, 2>();
    auto n = layers[l].count.accessor<int64_t, 1>();
    for (int64_t j = 0; j < layers[l].errors.size(0); ++j) t += e[j][n[j] - 1] / norm[l];
  }
  return t;
}

// The best total error over every count vector with at most `budget` extra points in all layers
// (network) or per layer; counts 1..P.
double brute_force(std::vector<MultipointLayer> layers, const std::vector<int64_t>& budgets,
                   bool network, const std::vector<double>& norm) {
  std::vector<std::pair<size_t, int64_t>> slots;
  for (size_t l = 0; l < layers.size(); ++l) {
    layers[l].count = at::ones({layers[l].errors.size(0)}, at::kLong);
    for (int64_t j = 0; j < layers[l].errors.size(0); ++j) slots.push_back({l, j});
  }
  double best = std::numeric_limits<double>::infinity();
  std::function<void(size_t)> visit = [&](size_t s) {
    if (s == slots.size()) {
      int64_t all = 0;
      for (size_t l = 0; l < layers.size(); ++l) {
        int64_t extra = extra_points(layers[l]);
        all += extra;
        if (!network && extra > budgets[l]) return;
      }
      if (network && all > budgets[0]) return;
      best = std::min(best, total_error(layers, norm));
      return;
    }
    MultipointLayer& l = layers[slots[s].first];
    for (int64_t n = 1; n <= l.errors.size(1); ++n) {
      l.count.accessor<int64_t, 1>()[slots[s].second] = n;
      visit(s + 1);
    }
  };
  visit(0);
  return best;
}

TEST(Multipoint, AllocationMatchesBruteForceOnConcaveErrors) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<MultipointLayer> layers = {concave_layer(2, 3, &rng), concave_layer(3, 4, &rng)};
    std::vector<MultipointLayer*> ptrs = {&layers[0], &layers[1]};
    std::vector<double> energy = {1.0 + trial, 20.0};
    const int64_t capacity = 2 * 2 + 3 * 3;
    for (int64_t budget = 0; budget <= capacity + 1; ++budget) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " budget " + std::to_string(budget));
      allocate_points(ptrs, {budget}, PointScope::kNetwork, energy);
      EXPECT_EQ(extra_points(layers[0]) + extra_points(layers[1]), std::min(budget, capacity));
      EXPECT_LE(layers[0].count.max().item<int64_t>(), 3);
      EXPECT_LE(layers[1].count.max().item<int64_t>(), 4);
      EXPECT_NEAR(total_error(layers, energy), brute_force(layers, {budget}, true, energy), 1e-12);

      std::vector<int64_t> per_layer = {budget % 3, budget / 2};
      allocate_points(ptrs, per_layer, PointScope::kLayer, {});
      EXPECT_EQ(extra_points(layers[0]), std::min<int64_t>(per_layer[0], 4));
      EXPECT_EQ(extra_points(layers[1]), std::min<int64_t>(per_layer[1], 9));
      EXPECT_NEAR(total_error(layers, {1, 1}), brute_force(layers, per_layer, false, {1, 1}),
                  1e-12);
    }
  }
}

TEST(Multipoint, NetworkScopeNormalisesByEnergy) {
  std::mt19937 rng(8);
  std::vector<MultipointLayer> a = {concave_layer(3, 3, &rng), concave_layer(3, 3, &rng)};
  std::vector<MultipointLayer> b = a;
  b[1].errors = a[1].errors * 1000.0;  // the same layer with 1000x larger activations
  allocate_points({&a[0], &a[1]}, {4}, PointScope::kNetwork, {1.0, 1.0});
  allocate_points({&b[0], &b[1]}, {4}, PointScope::kNetwork, {1.0, 1000.0});
  EXPECT_TRUE(at::equal(a[0].count, b[0].count));
  EXPECT_TRUE(at::equal(a[1].count, b[1].count));
  EXPECT_GT(extra_points(a[0]), 0);
  // Without the normalisation the larger layer would take the whole budget.
  allocate_points({&b[0], &b[1]}, {4}, PointScope::kNetwork, {1.0, 1.0});
  EXPECT_EQ(extra_points(b[0]), 0);
}

TEST(Multipoint, NetworkBudgetCountsWeightElements) {
  // Equal reductions per point; a point of the second layer costs 10 elements, of the first 1.
  MultipointLayer x, y;
  x.errors = at::tensor({4.0, 2.0, 1.0, 4.0, 2.0, 1.0}, at::kDouble).view({2, 3});
  y.errors = x.errors.clone();
  x.points = at::zeros({3, 2, 1}, at::kChar);
  y.points = at::zeros({3, 2, 10}, at::kChar);
  for (int64_t budget : {0, 3, 9, 14, 25, 100}) {
    allocate_points({&x, &y}, {budget}, PointScope::kNetwork, {1.0, 1.0});
    int64_t spent = extra_points(x) * 1 + extra_points(y) * 10;
    EXPECT_LE(spent, budget) << budget;
    // The cheap layer fills first (ten times the reduction per element).
    EXPECT_EQ(extra_points(x), std::min<int64_t>(budget, 4)) << budget;
  }
  allocate_points({&x, &y}, {14}, PointScope::kNetwork, {1.0, 1.0});
  EXPECT_EQ(extra_points(y), 1);  // 4 cheap points, then one 10-element point fits exactly
}

TEST(Multipoint, AllocationTieBreakAndStop) {
  MultipointLayer x, y;
  x.errors = at::tensor({4.0, 2.0, 1.0, 4.0, 2.0, 1.0}, at::kDouble).view({2, 3});
  y.errors = x.errors.clone();
  allocate_points({&x, &y}, {3}, PointScope::kNetwork, {1.0, 1.0});
  EXPECT_TRUE(at::equal(x.count, at::tensor({2, 2}, at::kLong)));
  EXPECT_TRUE(at::equal(y.count, at::tensor({2, 1}, at::kLong)));
  // Recomputed from scratch, not added to the earlier counts.
  allocate_points({&x, &y}, {1}, PointScope::kNetwork, {1.0, 1.0});
  EXPECT_EQ(extra_points(x) + extra_points(y), 1);
  EXPECT_EQ(x.count[0].item<int64_t>(), 2);
  // No reduction left: the budget stays unspent.
  MultipointLayer flat;
  flat.errors = at::ones({3, 4}, at::kDouble);
  allocate_points({&flat}, {5}, PointScope::kLayer, {});
  EXPECT_EQ(extra_points(flat), 0);
}

TEST(Multipoint, AllocationLowersOutputError) {
  at::Tensor w = test_weight(16, 27, 9);
  at::Tensor gram = test_gram(1, 27, 10);
  MultipointLayer l = build_points(w, 3, 4);
  compute_errors(w, gram, &l);
  const int64_t budget = 8;  // half the channels
  allocate_points({&l}, {budget}, PointScope::kLayer, {});
  EXPECT_EQ(extra_points(l), budget);
  at::Tensor d = (w - reconstruct(l)).to(at::kDouble);
  at::Tensor g = gram.to(at::kDouble)[0];
  double output_error = (d.matmul(g) * d).sum().item<double>();
  double expected = l.errors.gather(1, (l.count - 1).unsqueeze(1)).sum().item<double>();
  EXPECT_NEAR(output_error, expected, 1e-5 * expected);
  EXPECT_LT(output_error, l.errors.select(1, 0).sum().item<double>());
}

TEST(Multipoint, BadInput) {
  at::Tensor w = test_weight(4, 6, 11);
  expect_error([&] { build_points(w, 1, 2); }, "bits: expected 2-8, found 1");
  expect_error([&] { build_points(w, 9, 2); }, "bits: expected 2-8, found 9");
  expect_error([&] { build_points(w, 4, 0); }, "max points: expected >= 1, found 0");
  expect_error([&] { build_points(w.flatten(), 4, 2); }, "expected per-channel rows [C, K]");
  expect_error([&] { build_points(w.view({2, 2, 6}), 4, 2); }, "found shape [2, 2, 6]");
  expect_error([&] { build_points(at::Tensor(), 4, 2); }, "found none");

  MultipointLayer l = build_points(w, 4, 2);
  expect_error(
      [&] {
        compute_errors(w, at::eye(6).unsqueeze(0).repeat({3, 1, 1}), &l);
      },
      "3 groups do not divide the 4 channels");
  expect_error([&] { compute_errors(w, at::eye(5).unsqueeze(0), &l); },
               "gram: expected [groups, K, K] with K = 6, found shape [1, 5, 5]");
  expect_error([&] { compute_errors(w, at::eye(6), &l); }, "found shape [6, 6]");
  expect_error([&] { compute_errors(w.narrow(1, 0, 5), {}, &l); }, "found shape [4, 5]");
  expect_error([&] { allocate_points({&l}, {1}, PointScope::kLayer, {}); },
               "call compute_errors first");
  compute_errors(w, {}, &l);
  expect_error(
      [&] {
        allocate_points({&l}, {1, 1}, PointScope::kLayer, {});
      },
      "expected 1 budgets (one per layer), found 2");
  expect_error([&] { allocate_points({&l}, {-1}, PointScope::kLayer, {}); },
               "expected >= 0 extra points, found -1");
  expect_error([&] { allocate_points({&l}, {1}, PointScope::kNetwork, {}); },
               "one output energy per layer");
  l.count = at::full({4}, 3, at::kLong);
  expect_error([&] { reconstruct(l); }, "count: expected 1..2 points per channel");
}

}  // namespace
}  // namespace mpq
