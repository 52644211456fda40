#include "quant/observer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "support/error_of.h"

namespace mpq {
namespace {

using Range = std::pair<double, double>;

std::unique_ptr<Observer> observed(const std::string& name, const std::vector<at::Tensor>& batches,
                                   const ObserverOptions& options = {}) {
  std::unique_ptr<Observer> obs = make_observer(name, options);
  for (const at::Tensor& b : batches) obs->observe(b);
  return obs;
}

// The actual mean squared error of quantizing x with the parameters of range r.
double quant_mse(const at::Tensor& x, const Range& r, int bits, const SchemeInfo& scheme) {
  QParams p = params_from_range(at::scalar_tensor(r.first, at::kDouble),
                                at::scalar_tensor(r.second, at::kDouble), bits, scheme);
  return (fake_quantize(x, p) - x).square().mean().item<double>();
}

// The k-th smallest value, k = ceil(q n): the order statistic a histogram quantile shares a bin
// with.
double order_statistic(const at::Tensor& x, double q) {
  at::Tensor sorted = std::get<0>(x.reshape({-1}).to(at::kDouble).sort());
  int64_t k = std::max<int64_t>(1, int64_t(std::ceil(q * double(sorted.numel()))));
  return sorted[k - 1].item<double>();
}

std::vector<const SchemeInfo*> tensor_schemes() {
  std::vector<const SchemeInfo*> out;
  for (const SchemeInfo& s : scheme_table()) {
    if (s.quantized && s.granularity == Granularity::kTensor) out.push_back(&s);
  }
  return out;
}

// A standard normal sample with `outliers` values of +-size.
at::Tensor gaussian_with_outliers(int64_t n, int64_t outliers, double size) {
  at::Tensor x = at::randn({n}, at::kFloat);
  for (int64_t i = 0; i < outliers; ++i) x[i * 7] = (i % 2 == 0 ? size : -size);
  return x;
}

using testing::error_of;

TEST(ObserverTable, RowsAreUniqueAndMakeTheirObserver) {
  const auto& table = observer_table();
  for (size_t i = 0; i < table.size(); ++i) {
    for (size_t j = i + 1; j < table.size(); ++j) EXPECT_STRNE(table[i].name, table[j].name);
    EXPECT_GT(std::string(table[i].description).size(), 10u);
    EXPECT_EQ(table[i].make({})->name(), table[i].name);
    EXPECT_EQ(make_observer(table[i].name)->name(), table[i].name);
  }
}

TEST(ObserverTable, EveryRowGivesAValidRange) {
  at::manual_seed(1);
  const std::vector<at::Tensor> signed_data = {at::rand({3000}) * 3 - 1, at::rand({2, 500}) - 0.5};
  const std::vector<at::Tensor> relu_data = {at::relu(at::randn({3000})),
                                             at::relu(at::randn({40, 20}) * 2)};
  for (const auto& data : {signed_data, relu_data}) {
    at::Tensor all = at::cat({data[0].reshape({-1}), data[1].reshape({-1})});
    const double mn = all.min().item<double>(), mx = all.max().item<double>();
    ObserverOptions o;
    o.bins = 256;  // validity, not accuracy: keeps 2 x 5 x 37 range() calls fast
    for (const ObserverInfo& row : observer_table()) {
      std::unique_ptr<Observer> obs = observed(row.name, data, o);
      EXPECT_EQ(obs->count(), all.numel());
      for (const SchemeInfo& scheme : scheme_table()) {
        for (int bits : {2, 4, 8, 16}) {
          if (!scheme.quantized && bits != 8) continue;
          SCOPED_TRACE(std::string(row.name) + " " + scheme.name + " " + std::to_string(bits));
          Range r = obs->range(bits, scheme);
          EXPECT_TRUE(std::isfinite(r.first) && std::isfinite(r.second));
          EXPECT_LT(r.first, r.second);
          if (scheme.symmetric && scheme.is_signed) {  // only max(|lo|, |hi|) matters
            EXPECT_LE(std::max(-r.first, r.second), std::max(-mn, mx) + 1e-6);
          } else {
            EXPECT_GE(r.first, std::min(mn, 0.0) - 1e-6);
            EXPECT_LE(r.second, std::max(mx, 0.0) + 1e-6);
          }
          if (!scheme.quantized) {
            EXPECT_EQ(r, Range(mn, mx));
          }
          Range again = obs->range(bits, scheme);  // range() does not change the observer
          EXPECT_EQ(r, again);
        }
      }
    }
  }
}

TEST(Observer, MinMaxIsExact) {
  at::manual_seed(2);
  at::Tensor a = at::randn({100}), b = at::randn({10, 10}) * 5, c = at::rand({7}) + 100;
  auto obs = observed("minmax", {a, b, at::empty({0}), c});
  at::Tensor all = at::cat({a, b.reshape({-1}), c});
  Range expected(all.min().item<double>(), all.max().item<double>());
  EXPECT_EQ(obs->range(4, find_scheme("affine-tensor")), expected);
  EXPECT_EQ(obs->range(8, find_scheme("sym-tensor")), expected);
  EXPECT_EQ(obs->count(), 207);
}

TEST(Observer, EmaMatchesHandComputation) {
  std::vector<at::Tensor> batches = {at::tensor({-1.0f, 0.0f, 2.0f}), at::tensor({-3.0f, 1.0f}),
                                     at::tensor({0.5f, 4.0f, 1.0f})};
  auto obs = observed("ema", batches);  // momentum 0.9
  Range r = obs->range(8, find_scheme("affine-tensor"));
  EXPECT_NEAR(r.first, 0.9 * (0.9 * -1 + 0.1 * -3) + 0.1 * 0.5, 1e-12);
  EXPECT_NEAR(r.second, 0.9 * (0.9 * 2 + 0.1 * 1) + 0.1 * 4, 1e-12);
  ObserverOptions half;
  half.ema_momentum = 0.5;
  r = observed("ema", batches, half)->range(8, find_scheme("affine-tensor"));
  EXPECT_NEAR(r.first, -0.75, 1e-12);
  EXPECT_NEAR(r.second, 2.75, 1e-12);
  r = observed("ema", {batches[1]})->range(8, find_scheme("affine-tensor"));  // first initialises
  EXPECT_EQ(r, Range(-3, 1));
}

TEST(Observer, PercentileIsWithinABinOfTheSampleQuantile) {
  at::manual_seed(3);
  at::Tensor x = at::randn({200000}) * 2 + 0.5;
  ObserverOptions o;
  o.percentile = 99.9;
  auto obs = observed("percentile", {x}, o);
  const double mn = x.min().item<double>(), mx = x.max().item<double>();
  const double width = (mx - mn) / double(o.bins);  // one batch: the histogram spans [min, max]
  Range r = obs->range(8, find_scheme("affine-tensor"));
  EXPECT_NEAR(r.first, order_statistic(x, 0.001), width);
  EXPECT_NEAR(r.second, order_statistic(x, 0.999), width);
  // Symmetric signed: the percentile of |x| over [0, max |x|].
  at::Tensor mag = x.abs();
  const double t = order_statistic(mag, 0.999);
  r = obs->range(8, find_scheme("sym-tensor"));
  EXPECT_NEAR(r.second, t, mag.max().item<double>() / double(o.bins));
  EXPECT_EQ(r.first, -r.second);
  // p = 100 is the full range.
  o.percentile = 100;
  EXPECT_EQ(observed("percentile", {x}, o)->range(4, find_scheme("affine-tensor")), Range(mn, mx));
}

TEST(Observer, PercentileDoesNotDependOnBatching) {
  at::manual_seed(4);
  std::vector<at::Tensor> batches;
  for (int k = 0; k < 10; ++k) {  // ranges that grow, shrink and shift
    double scale = k % 3 == 0 ? 0.5 + 0.4 * k : 1.0;
    batches.push_back(at::randn({20000}) * scale + 0.3 * (k % 4) - 0.4);
  }
  at::Tensor all = at::cat(batches);
  ObserverOptions o;
  o.percentile = 99.9;
  auto streamed = observed("percentile", batches, o);
  auto whole = observed("percentile", {all}, o);
  // Each estimate shares a bin with the same order statistic; streamed bins are at most 4 times
  // as wide as the single batch's.
  const double span = (all.max() - all.min()).item<double>();
  const double tol = 5 * span / double(o.bins);
  for (const char* scheme : {"affine-tensor", "sym-tensor", "usym-tensor"}) {
    Range a = streamed->range(8, find_scheme(scheme)), b = whole->range(8, find_scheme(scheme));
    EXPECT_NEAR(a.first, b.first, tol) << scheme;
    EXPECT_NEAR(a.second, b.second, tol) << scheme;
  }
  EXPECT_NEAR(streamed->range(8, find_scheme("affine-tensor")).second, order_statistic(all, 0.999),
              4 * span / double(o.bins));
}

// Streaming equals binning everything added so far at once on the current edges, up to values
// that rounding puts on the other side of an edge (each first-batch maximum sits on one).
int64_t mismatch_with_direct(const StreamingHistogram& h, const at::Tensor& all) {
  at::Tensor direct = at::bincount(
      ((all - h.lo()) / h.bin_width()).floor().to(at::kLong).clamp(0, h.bins() - 1), {}, h.bins());
  int64_t mismatch = 0;
  for (int64_t i = 0; i < h.bins(); ++i) {
    mismatch += std::abs(direct[i].item<int64_t>() - h.counts()[size_t(i)]);
  }
  return mismatch;
}

TEST(StreamingHistogram, RebinningIsExact) {
  at::manual_seed(5);
  const int64_t bins = 64;
  std::vector<at::Tensor> batches = {
      at::rand({1000}, at::kDouble),             // [0, 1]
      at::rand({1000}, at::kDouble) * 3.5 - 3,   // grows downward
      at::rand({1000}, at::kDouble) * 10,        // upward
      at::rand({1000}, at::kDouble) * 60 - 20,   // both ways
      at::rand({1000}, at::kDouble) * 0.01 + 5,  // inside
      at::rand({1000}, at::kDouble) * 1e4,       // far upward
      at::rand({1000}, at::kDouble) * -3e4,      // far downward
  };
  StreamingHistogram h(bins);
  h.add(batches[0]);
  const double w0 = h.bin_width();
  for (size_t i = 1; i < batches.size(); ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    h.add(batches[i]);
    ASSERT_EQ(int64_t(h.counts().size()), bins);
    at::Tensor all = at::cat(at::TensorList(batches).slice(0, i + 1));
    EXPECT_EQ(h.total(), all.numel());
    EXPECT_EQ(h.min(), all.min().item<double>());
    EXPECT_EQ(h.max(), all.max().item<double>());
    EXPECT_LE(h.lo(), h.min());
    EXPECT_GE(h.hi(), h.max());
    const double ratio = std::log2(h.bin_width() / w0);
    EXPECT_NEAR(ratio, std::round(ratio), 1e-9);  // widened by powers of two
    EXPECT_LE(h.bin_width(), 4 * (h.max() - h.min()) / double(bins));
    EXPECT_LE(mismatch_with_direct(h, all), 4);
  }
}

TEST(StreamingHistogram, AnchoredAtZeroAndHoldsAPoint) {
  StreamingHistogram h(16, /*anchor_zero=*/true);
  h.add(at::zeros({10}));
  EXPECT_EQ(h.bin_width(), 0);
  EXPECT_EQ(h.quantile(0.5), 0);
  h.add(at::tensor({1.0, 2.0, 4.0}));
  EXPECT_EQ(h.lo(), 0);
  EXPECT_GT(h.bin_width(), 0);
  EXPECT_EQ(h.total(), 13);
  EXPECT_EQ(h.zeros(), 10);
  EXPECT_EQ(h.zero_bin(), 0);
  EXPECT_EQ(h.counts()[0], 10);
  h.add(at::tensor({100.0}));
  EXPECT_EQ(h.lo(), 0);
  EXPECT_EQ(h.counts()[0], 13);  // 0, 1, 2 and 4 merged into the first of 16 bins of [0, 128]
  EXPECT_EQ(h.quantile(1), 100);

  StreamingHistogram p(8);
  p.add(at::full({5}, 3.0));
  p.add(at::full({3}, 3.0));
  EXPECT_EQ(p.bin_width(), 0);
  p.add(at::tensor({-1.0}));
  EXPECT_EQ(p.lo(), -1);
  EXPECT_GE(p.hi(), 3);
  EXPECT_EQ(p.counts()[size_t(p.bin_of(3.0))], 8);
  EXPECT_EQ(p.counts()[0], 1);
  EXPECT_EQ(p.zeros(), 0);
}

TEST(Observer, HistogramMemoryIsBounded) {
  at::manual_seed(6);
  ObserverOptions o;
  o.bins = 256;
  for (const char* name : {"percentile", "mse", "kl"}) {
    auto obs = make_observer(name, o);
    obs->observe(at::randn({100}));
    const int64_t size = obs->state_size();
    EXPECT_LE(size, 2 * o.bins + 16) << name;
    for (int k = 0; k < 200; ++k) obs->observe(at::randn({100}) * std::ldexp(1.0, k % 40) + k);
    EXPECT_EQ(obs->state_size(), size) << name;
    EXPECT_EQ(obs->count(), 20100) << name;
  }
}

TEST(Observer, MseBeatsMinMaxOnHeavyTails) {
  at::manual_seed(7);
  at::Tensor u = at::rand({50000}) * 0.999 + 0.0005;
  at::Tensor laplace = -at::log(u) * at::sign(at::rand({50000}) - 0.5);
  // Optimal clipping gains more on a few large outliers than on Laplace tails (ACIQ: about 2x).
  for (const auto& [x, gain] :
       {std::pair(gaussian_with_outliers(50000, 6, 20), 0.5), std::pair(laplace, 0.75)}) {
    auto mse = observed("mse", {x.narrow(0, 0, 25000), x.narrow(0, 25000, 25000)});
    auto minmax = observed("minmax", {x});
    for (const char* name : {"sym-tensor", "affine-tensor"}) {
      const SchemeInfo& scheme = find_scheme(name);
      const double e_mse = quant_mse(x, mse->range(4, scheme), 4, scheme);
      const double e_minmax = quant_mse(x, minmax->range(4, scheme), 4, scheme);
      EXPECT_LT(e_mse, gain * e_minmax) << name;
      EXPECT_LT(mse->range(4, scheme).second, 0.8 * x.max().item<double>()) << name;
    }
  }
}

TEST(Observer, MseIsNeverMuchWorseThanMinMax) {
  at::manual_seed(8);
  for (const at::Tensor& x : {at::rand({20000}) * 4 - 1, at::randn({20000}) + 0.5}) {
    auto mse = observed("mse", {x});
    auto minmax = observed("minmax", {x});
    for (const SchemeInfo* scheme : tensor_schemes()) {
      for (int bits : {2, 3, 4, 8}) {
        const double e_mse = quant_mse(x, mse->range(bits, *scheme), bits, *scheme);
        const double e_minmax = quant_mse(x, minmax->range(bits, *scheme), bits, *scheme);
        EXPECT_LE(e_mse, 1.02 * e_minmax + 1e-9) << scheme->name << " " << bits;
      }
    }
  }
}

TEST(Observer, MseIsNearTheBestClipOnTheData) {
  // Brute force: the actual error of alpha * [min, max] over alpha = k / 100 on the data itself.
  // ReLU data has exact zeros; with coarse bins, spreading them over bin 0 would cost ~2%.
  at::manual_seed(13);
  at::Tensor u = at::rand({20000}) * 0.999 + 0.0005;
  at::Tensor x = -at::log(u) * at::sign(at::rand({20000}) - 0.3);
  struct Case {
    at::Tensor data;
    int64_t bins;
  };
  for (const Case& c : {Case{x, 2048}, Case{at::rand({20000}) * 3 - 1, 2048},
                        Case{at::relu(x), 2048}, Case{at::relu(x), 32}}) {
    ObserverOptions o;
    o.bins = c.bins;
    auto mse = observed("mse", {c.data}, o);
    const double mn = c.data.min().item<double>(), mx = c.data.max().item<double>();
    for (const char* name : {"sym-tensor", "affine-tensor"}) {
      const SchemeInfo& scheme = find_scheme(name);
      for (int bits : {3, 4, 6, 8}) {
        double best = std::numeric_limits<double>::infinity();
        for (int k = 1; k <= 100; ++k) {
          const double a = k / 100.0;
          best = std::min(best, quant_mse(c.data, {a * mn, a * mx}, bits, scheme));
        }
        EXPECT_LE(quant_mse(c.data, mse->range(bits, scheme), bits, scheme), 1.01 * best)
            << name << " " << bits << " bits" << (mn < 0 ? "" : ", relu") << ", " << c.bins
            << " bins";
      }
    }
  }
}

TEST(Observer, MseMovesTheEndsOfAnAffineRangeSeparately) {
  // Dense values in [-1, 1] and a few outliers at 8: one factor for both ends either clips the
  // negative side away or keeps the outliers; moving the ends separately beats every joint one.
  at::manual_seed(15);
  at::Tensor x = at::cat({at::rand({20000}) * 2 - 1, at::full({4}, 8.0f)});
  const SchemeInfo& scheme = find_scheme("affine-tensor");
  const double mn = x.min().item<double>(), mx = x.max().item<double>();
  double best_joint = std::numeric_limits<double>::infinity();
  for (int k = 1; k <= 100; ++k) {
    best_joint = std::min(best_joint, quant_mse(x, {k / 100.0 * mn, k / 100.0 * mx}, 4, scheme));
  }
  Range r = observed("mse", {x})->range(4, scheme);
  EXPECT_LT(quant_mse(x, r, 4, scheme), 0.8 * best_joint);
  EXPECT_GT(r.first / mn, 0.9);  // the negative side is kept
  EXPECT_LT(r.second, 3);        // the outliers are clipped
}

TEST(Observer, KlClipsOutliers) {
  at::manual_seed(9);
  at::Tensor x = gaussian_with_outliers(50000, 10, 50);
  auto kl = observed("kl", {x});
  Range r = kl->range(8, find_scheme("sym-tensor"));
  EXPECT_LT(r.second, 10);
  EXPECT_GT(r.second, order_statistic(x.abs(), 0.99));  // the bulk is kept
  EXPECT_EQ(r.first, -r.second);
  // Non-negative data on an unsigned grid: [0, t].
  auto relu = observed("kl", {at::relu(x)});
  r = relu->range(8, find_scheme("affine-tensor"));
  EXPECT_EQ(r.first, 0);
  EXPECT_LT(r.second, 10);
  EXPECT_GT(r.second, 2);
  // Affine on signed data: [-t, t] cut to [min, max].
  r = observed("kl", {x.clamp_min(-1)})->range(8, find_scheme("affine-tensor"));
  EXPECT_EQ(r.first, -1);
  EXPECT_LT(r.second, 10);
}

TEST(Observer, KlIgnoresExactZeros) {
  // Half of ReLU's outputs are exactly 0, which every grid holds exactly: they must not pull the
  // threshold down (a spike in bin 0 otherwise favours groups of one bin, i.e. t = L bins).
  at::manual_seed(14);
  at::Tensor x = at::relu(at::randn({50000}));
  Range r = observed("kl", {x})->range(8, find_scheme("affine-tensor"));
  EXPECT_GT(r.second, order_statistic(x, 0.99));
}

TEST(Observer, KlKeepsUniformData) {
  at::manual_seed(10);
  at::Tensor x = at::rand({50000});
  Range r = observed("kl", {x})->range(8, find_scheme("affine-tensor"));
  EXPECT_GT(r.second, 0.9);
  EXPECT_LE(r.second, x.max().item<double>());
  // 16 bits have more levels than bins: no clipping at all.
  at::Tensor y = gaussian_with_outliers(5000, 2, 50);
  r = observed("kl", {y})->range(16, find_scheme("sym-tensor"));
  EXPECT_EQ(r.second, y.max().item<double>());
}

// KL(P_i || Q_i) built bin by bin, as the header states it.
double reference_kl(const std::vector<int64_t>& c, int64_t i, int64_t levels) {
  std::vector<double> p(c.begin(), c.begin() + i), q(size_t(i), 0.0);
  for (size_t k = size_t(i); k < c.size(); ++k) p[size_t(i - 1)] += double(c[k]);
  for (int64_t g = 0; g < levels; ++g) {
    int64_t s = g * i / levels, e = (g + 1) * i / levels;
    double total = 0;
    int64_t nnz = 0;
    for (int64_t k = s; k < e; ++k) {
      total += double(c[size_t(k)]);
      nnz += p[size_t(k)] > 0 ? 1 : 0;
    }
    for (int64_t k = s; k < e; ++k) {
      if (p[size_t(k)] > 0) q[size_t(k)] = total / double(nnz);
    }
  }
  double sp = 0, sq = 0;
  for (int64_t k = 0; k < i; ++k) {
    sp += p[size_t(k)];
    sq += q[size_t(k)];
  }
  double kl = 0;
  for (int64_t k = 0; k < i; ++k) {
    if (p[size_t(k)] == 0) continue;
    double pk = p[size_t(k)] / sp, qk = sq > 0 ? q[size_t(k)] / sq : 0.0;
    kl += pk * std::log(pk / std::max(qk, 1e-12));
  }
  return kl;
}

TEST(Observer, KlSearchMatchesDirectReference) {
  at::manual_seed(11);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t bins = 40;
    at::Tensor counts = at::randint(0, 20, {bins}, at::kLong);
    counts *= (at::rand({bins}) > 0.3).to(at::kLong);  // empty bins
    if (trial % 3 == 0) counts.narrow(0, bins - 5, 5).zero_();
    if (trial % 5 == 0) counts.narrow(0, 0, 6).zero_();  // nothing near 0
    std::vector<int64_t> c(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + bins);
    int64_t nb = bins;
    while (nb > 0 && c[size_t(nb - 1)] == 0) --nb;
    for (int64_t levels : {2, 4, 8}) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " levels " + std::to_string(levels));
      const int64_t i = kl_threshold_bins(c, levels);
      if (nb <= levels) {
        EXPECT_EQ(i, nb);
        continue;
      }
      ASSERT_GE(i, levels);
      ASSERT_LE(i, nb);
      double best = std::numeric_limits<double>::infinity();
      for (int64_t j = levels; j <= nb; ++j) best = std::min(best, reference_kl(c, j, levels));
      EXPECT_NEAR(reference_kl(c, i, levels), best, 1e-9);
    }
  }
  EXPECT_EQ(kl_threshold_bins({3, 0, 2, 0, 0}, 4), 3);  // fits in 4 levels: no clipping
  EXPECT_EQ(kl_threshold_bins({0, 0, 0}, 2), 0);
}

TEST(Observer, Errors) {
  std::string msg = error_of([] { make_observer("median"); });
  EXPECT_NE(msg.find("observer 'median'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("minmax, ema, percentile, mse, kl"), std::string::npos) << msg;
  for (const ObserverInfo& row : observer_table()) {
    const std::string name = std::string("observer '") + row.name + "'";
    auto obs = make_observer(row.name);
    obs->observe(at::empty({0, 3}));
    EXPECT_EQ(obs->count(), 0);
    msg = error_of([&] { obs->range(8, find_scheme("affine-tensor")); });
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find("found none"), std::string::npos) << msg;
    msg = error_of([&] { obs->observe(at::tensor({1.0f, NAN, 2.0f})); });
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
    msg = error_of([&] { obs->observe(at::tensor({1.0f, -INFINITY})); });
    EXPECT_NE(msg.find("Inf"), std::string::npos) << msg;
    EXPECT_EQ(obs->count(), 0);  // rejected batches leave no trace
    obs->observe(at::tensor({1.0f, 2.0f}));
    msg = error_of([&] { obs->range(1, find_scheme("affine-tensor")); });
    EXPECT_NE(msg.find("bits"), std::string::npos) << msg;
  }
  ObserverOptions o;
  o.percentile = 30;
  EXPECT_THROW(make_observer("percentile", o), Error);
  o = {};
  o.ema_momentum = 1;
  EXPECT_THROW(make_observer("ema", o), Error);
  o = {};
  o.bins = 1;
  EXPECT_THROW(make_observer("kl", o), Error);
}

TEST(Observer, AcceptsOtherDtypesLayoutsAndGradients) {
  at::manual_seed(12);
  at::Tensor x = at::randn({8, 16}, at::kFloat);
  at::Tensor with_grad = x.clone().requires_grad_(true) * 2;
  for (const ObserverInfo& row : observer_table()) {
    auto obs = make_observer(row.name);
    obs->observe(x.to(at::kHalf));
    obs->observe(x.to(at::kBFloat16).t());
    obs->observe(x.to(at::kDouble));
    obs->observe(with_grad);
    obs->observe(at::arange(5, at::kLong));
    EXPECT_EQ(obs->count(), 4 * 128 + 5) << row.name;
    Range r = obs->range(8, find_scheme("affine-tensor"));
    EXPECT_LT(r.first, r.second) << row.name;
  }
  auto minmax = observed("minmax", {x.to(at::kHalf)});
  EXPECT_EQ(minmax->range(8, find_scheme("affine-tensor")).second,
            x.to(at::kHalf).max().item<double>());
}

}  // namespace
}  // namespace mpq
