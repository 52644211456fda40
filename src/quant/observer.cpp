#include "quant/observer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/error.h"

namespace mpq {

// ---------------------------------------------------------------------------------------------
// StreamingHistogram

namespace {

constexpr int64_t kMaxBins = int64_t(1) << 24;
// Bin indices i + j < B * f stay exact integers in double below this.
constexpr int64_t kMaxIndexSpan = int64_t(1) << 52;

}  // namespace

StreamingHistogram::StreamingHistogram(int64_t bins, bool anchor_zero) : anchor_zero_(anchor_zero) {
  MPQ_CHECK(bins >= 1 && bins <= kMaxBins, "histogram: bins: expected 1 to ", kMaxBins, ", found ",
            bins);
  counts_.assign(size_t(bins), 0);
}

void StreamingHistogram::set_range(double lo, double hi) {
  MPQ_ASSERT(hi >= lo, "histogram range [", lo, ", ", hi, "]");
  lo_ = lo;
  width_ = (hi - lo) / double(bins());
  // Rounding must not leave hi outside the last bin (a later batch would widen for nothing).
  while (lo_ + width_ * double(bins()) < hi) {
    width_ = std::nextafter(width_, std::numeric_limits<double>::infinity());
  }
}

at::Tensor StreamingHistogram::bin_index(const at::Tensor& x) const {
  MPQ_ASSERT(width_ > 0, "bin_index of a point histogram");
  // Values are >= lo_ up to rounding, so truncation is floor; the clamp catches rounding at both
  // ends.
  return ((x - lo_) / width_).to(at::kLong).clamp_(0, bins() - 1);
}

int64_t StreamingHistogram::bin_of(double value) const {
  if (width_ == 0) return 0;
  // Through the tensor path, so a value lands exactly where add() put it.
  return bin_index(at::full({1}, value, at::TensorOptions().dtype(at::kDouble))).item<int64_t>();
}

void StreamingHistogram::cover(double lo, double hi) {
  const int64_t b = bins();
  if (width_ == 0) {  // one point so far: spread out now that a second value exists
    const int64_t n = counts_[0];
    const double point = lo_;
    set_range(anchor_zero_ ? 0.0 : lo, hi);
    std::fill(counts_.begin(), counts_.end(), 0);
    const int64_t at = bin_of(point);
    counts_[size_t(at)] = n;
    zero_bin_ = at;  // meaningful only when the point is 0
    return;
  }
  if (lo >= lo_ && hi <= this->hi()) return;
  const double w = width_;
  for (int64_t f = 2; f <= kMaxIndexSpan / b; f *= 2) {
    // lo' = lo_ - j w must be <= lo and lo' + B f w >= hi, with 0 <= j <= B (f - 1) so that
    // (i + j) / f < B.
    const double jmin = std::max(0.0, std::ceil((lo_ - lo) / w));
    const double jmax =
        std::min(double(b) * double(f - 1), std::floor((lo_ + double(b) * double(f) * w - hi) / w));
    if (jmin > jmax) continue;
    double j = std::floor((jmin + jmax) / 2);
    if (lo >= lo_) j = jmin;         // growing upward only: keep lo
    if (hi <= this->hi()) j = jmax;  // growing downward only: keep hi
    const int64_t shift = int64_t(j);
    std::vector<int64_t> merged(counts_.size(), 0);
    for (int64_t i = 0; i < b; ++i) merged[size_t((i + shift) / f)] += counts_[size_t(i)];
    counts_ = std::move(merged);
    zero_bin_ = (zero_bin_ + shift) / f;
    lo_ -= j * w;
    width_ = w * double(f);
    return;
  }
  // The range grew by more than kMaxIndexSpan / B: the old range is far inside one new bin, so
  // placing each old bin by its centre moves counts by at most one bin.
  const std::vector<int64_t> old = counts_;
  const double old_lo = lo_;
  set_range(anchor_zero_ ? 0.0 : lo, hi);
  std::fill(counts_.begin(), counts_.end(), 0);
  for (int64_t i = 0; i < b; ++i) {
    if (old[size_t(i)] != 0) {
      counts_[size_t(bin_of(old_lo + (double(i) + 0.5) * w))] += old[size_t(i)];
    }
  }
  zero_bin_ = bin_of(old_lo + (double(zero_bin_) + 0.5) * w);
}

void StreamingHistogram::add(const at::Tensor& values) {
  at::NoGradGuard no_grad;
  at::Tensor x = values.detach().to(at::kCPU, at::kDouble).reshape({-1});
  if (x.numel() == 0) return;
  auto [tmin, tmax] = at::aminmax(x);
  const double bmin = tmin.item<double>(), bmax = tmax.item<double>();
  MPQ_CHECK(std::isfinite(bmin) && std::isfinite(bmax), "histogram: expected finite values, found ",
            std::isnan(bmin) || std::isnan(bmax) ? "NaN" : "Inf");
  MPQ_CHECK(!anchor_zero_ || bmin >= 0, "histogram anchored at 0: expected values >= 0, found ",
            bmin);
  if (total_ == 0) {
    set_range(anchor_zero_ ? 0.0 : bmin, bmax);
    min_ = bmin;
    max_ = bmax;
  } else {
    min_ = std::min(min_, bmin);
    max_ = std::max(max_, bmax);
    cover(min_, max_);
  }
  const int64_t batch_zeros = (x == 0).sum().item<int64_t>();
  if (width_ == 0) {
    counts_[0] += x.numel();  // every value so far equals lo_
    zero_bin_ = 0;
  } else {
    at::Tensor hist = at::bincount(bin_index(x), {}, bins()).contiguous();
    MPQ_ASSERT(hist.numel() == bins(), "bincount gave ", hist.numel(), " bins");
    const int64_t* h = hist.data_ptr<int64_t>();
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += h[i];
    if (batch_zeros > 0 && zeros_ == 0) zero_bin_ = bin_of(0.0);
  }
  zeros_ += batch_zeros;
  total_ += x.numel();
}

double StreamingHistogram::quantile(double q) const {
  MPQ_CHECK(total_ > 0, "histogram: quantile: expected values, found an empty histogram");
  MPQ_CHECK(q >= 0 && q <= 1, "histogram: quantile: expected q in [0, 1], found ", q);
  if (width_ == 0) return lo_;
  const double target = q * double(total_);
  double below = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    const double c = double(counts_[i]);
    if (c == 0) continue;
    if (below + c >= target) {
      const double v = lo_ + (double(i) + (target - below) / c) * width_;
      return std::clamp(v, min_, max_);
    }
    below += c;
  }
  return max_;
}

// ---------------------------------------------------------------------------------------------
// KL threshold search

namespace {

// Floor for Q where P has mass that Q cannot represent (all of a group's mass is outliers): a
// large, finite penalty, as TensorRT's smoothing gives.
constexpr double kMinProbability = 1e-12;

}  // namespace

int64_t kl_threshold_bins(const std::vector<int64_t>& counts, int64_t levels) {
  MPQ_ASSERT(levels >= 1, "levels ", levels);
  int64_t nb = int64_t(counts.size());
  while (nb > 0 && counts[size_t(nb - 1)] <= 0) --nb;
  if (nb <= levels) return nb;
  // Prefix sums over bins [0, k): mass, sum of c log c, and non-empty bins.
  std::vector<double> mass(size_t(nb + 1), 0.0), clogc(size_t(nb + 1), 0.0);
  std::vector<int64_t> nonzero(size_t(nb + 1), 0);
  for (int64_t k = 0; k < nb; ++k) {
    const double c = double(std::max<int64_t>(counts[size_t(k)], 0));
    mass[size_t(k + 1)] = mass[size_t(k)] + c;
    clogc[size_t(k + 1)] = clogc[size_t(k)] + (c > 0 ? c * std::log(c) : 0.0);
    nonzero[size_t(k + 1)] = nonzero[size_t(k)] + (c > 0 ? 1 : 0);
  }
  const double total = mass[size_t(nb)];
  int64_t best = nb;
  double best_kl = std::numeric_limits<double>::infinity();
  for (int64_t i = levels; i <= nb; ++i) {
    const double kept = mass[size_t(i)];
    const double outliers = total - kept;
    const double last_count = double(std::max<int64_t>(counts[size_t(i - 1)], 0));
    const double last = last_count + outliers;  // P[i - 1]
    // sum_k P_k log P_k, P unnormalised.
    const double plogp = clogc[size_t(i - 1)] + (last > 0 ? last * std::log(last) : 0.0);
    double cross = 0;  // sum_k P_k log q_k
    for (int64_t g = 0; g < levels; ++g) {
      const int64_t s = g * i / levels, e = (g + 1) * i / levels;
      const double group = mass[size_t(e)] - mass[size_t(s)];
      int64_t nnz = nonzero[size_t(e)] - nonzero[size_t(s)];
      double p_mass = group;
      if (g == levels - 1) {
        p_mass += outliers;
        if (last_count == 0 && last > 0) ++nnz;
      }
      if (p_mass == 0) continue;
      const double q = group > 0 ? group / (double(nnz) * kept) : 0.0;
      cross += p_mass * std::log(std::max(q, kMinProbability));
    }
    // KL = sum p log p - sum p log q, p = P / total.
    const double kl = (plogp - cross) / total - std::log(total);
    if (kl <= best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Observers

namespace {

using Range = std::pair<double, double>;

// What every observer shares: input checks, the exact running [min, max] and the count.
class ObserverBase : public Observer {
 public:
  explicit ObserverBase(const char* name) : name_(name) {}

  void observe(const at::Tensor& x) final {
    if (!x.defined() || x.numel() == 0) return;
    at::NoGradGuard no_grad;
    at::Tensor v = x.detach();
    if (v.scalar_type() != at::kFloat && v.scalar_type() != at::kDouble) v = v.to(at::kFloat);
    auto [tmin, tmax] = at::aminmax(v);  // propagates NaN
    const double lo = tmin.item<double>(), hi = tmax.item<double>();
    MPQ_CHECK(!std::isnan(lo) && !std::isnan(hi), "observer '", name_,
              "': expected finite values, found NaN in a batch of ", v.numel(), " values");
    MPQ_CHECK(std::isfinite(lo) && std::isfinite(hi), "observer '", name_,
              "': expected finite values, found Inf in a batch of ", v.numel(), " values");
    update(v, lo, hi);
    min_ = count_ == 0 ? lo : std::min(min_, lo);
    max_ = count_ == 0 ? hi : std::max(max_, hi);
    count_ += v.numel();
  }

  Range range(int bits, const SchemeInfo& scheme) const final {
    MPQ_CHECK(count_ > 0, "observer '", name_,
              "': range: expected observed values, found none (call observe() first)");
    MPQ_CHECK(bits >= 2 && bits <= 16, "observer '", name_, "': bits: expected 2 to 16, found ",
              bits);
    if (!scheme.quantized) return {min_, max_};
    Range r = compute_range(bits, scheme);
    MPQ_ASSERT(std::isfinite(r.first) && std::isfinite(r.second) && r.first <= r.second,
               "observer ", name_, " range [", r.first, ", ", r.second, "]");
    return r;
  }

  int64_t count() const final { return count_; }
  std::string name() const final { return name_; }

 protected:
  // x: detached, float or double, non-empty, finite, with min lo and max hi.
  virtual void update(const at::Tensor& x, double lo, double hi) = 0;
  // Called with count() > 0 and a quantized scheme.
  virtual Range compute_range(int bits, const SchemeInfo& scheme) const = 0;

  const char* name_;
  double min_ = 0, max_ = 0;
  int64_t count_ = 0;
};

class MinMaxObserver : public ObserverBase {
 public:
  explicit MinMaxObserver(const ObserverOptions&) : ObserverBase("minmax") {}
  int64_t state_size() const override { return 3; }

 protected:
  void update(const at::Tensor&, double, double) override {}
  Range compute_range(int, const SchemeInfo&) const override { return {min_, max_}; }
};

class EmaObserver : public ObserverBase {
 public:
  explicit EmaObserver(const ObserverOptions& o) : ObserverBase("ema"), momentum_(o.ema_momentum) {
    MPQ_CHECK(momentum_ >= 0 && momentum_ < 1,
              "observer 'ema': momentum: expected a value in [0, 1), found ", momentum_);
  }
  int64_t state_size() const override { return 6; }

 protected:
  void update(const at::Tensor&, double lo, double hi) override {
    if (count_ == 0) {
      lo_ = lo;
      hi_ = hi;
      return;
    }
    lo_ = momentum_ * lo_ + (1 - momentum_) * lo;
    hi_ = momentum_ * hi_ + (1 - momentum_) * hi;
  }
  Range compute_range(int, const SchemeInfo&) const override { return {lo_, hi_}; }

 private:
  double momentum_;
  double lo_ = 0, hi_ = 0;
};

// Keeps a histogram of x and/or one of |x| (anchored at 0), as the subclass needs.
class HistogramObserver : public ObserverBase {
 public:
  HistogramObserver(const char* name, const ObserverOptions& o, bool values, bool magnitudes)
      : ObserverBase(name) {
    MPQ_CHECK(o.bins >= 2 && o.bins <= kMaxBins, "observer '", name, "': bins: expected 2 to ",
              kMaxBins, ", found ", o.bins);
    if (values) values_.emplace(o.bins);
    if (magnitudes) magnitudes_.emplace(o.bins, /*anchor_zero=*/true);
  }
  int64_t state_size() const override {
    return (values_ ? values_->bins() : 0) + (magnitudes_ ? magnitudes_->bins() : 0) + 16;
  }

 protected:
  void update(const at::Tensor& x, double, double) override {
    at::Tensor v = x.to(at::kCPU, at::kDouble).reshape({-1});
    if (values_) values_->add(v);
    if (magnitudes_) magnitudes_->add(v.abs());
  }

  std::optional<StreamingHistogram> values_, magnitudes_;
};

class PercentileObserver : public HistogramObserver {
 public:
  explicit PercentileObserver(const ObserverOptions& o)
      : HistogramObserver("percentile", o, true, true), q_(o.percentile / 100) {
    MPQ_CHECK(o.percentile > 50 && o.percentile <= 100,
              "observer 'percentile': percentile: expected a value in (50, 100], found ",
              o.percentile);
  }

 protected:
  Range compute_range(int, const SchemeInfo& scheme) const override {
    if (scheme.symmetric && scheme.is_signed) {
      const double t = magnitudes_->quantile(q_);
      return {-t, t};
    }
    return {values_->quantile(1 - q_), values_->quantile(q_)};
  }

 private:
  double q_;
};

// The grid a candidate range gets: points g0, g0 + s, ..., g1.
struct Grid {
  double g0, g1, s;
};

// Count n spread uniformly over [a, b] (a point when b == a).
struct Mass {
  double a, b, n;
};

// integral_u^v (x - c)^2 dx
double square_integral(double u, double v, double c) {
  return ((v - c) * (v - c) * (v - c) - (u - c) * (u - c) * (u - c)) / 3;
}

// integral from g0 - s/2 to x of (y - nearest grid point)^2 dy: whole steps give s^3 / 12 each.
double sawtooth_integral(double x, const Grid& g) {
  const double t = (x - g.g0) / g.s + 0.5;
  const double steps = std::floor(t);
  const double r = (t - steps) * g.s - g.s / 2;
  return steps * g.s * g.s * g.s / 12 + (r * r * r + g.s * g.s * g.s / 8) / 3;
}

double point_error(double x, const Grid& g) {
  if (x < g.g0) return (x - g.g0) * (x - g.g0);
  if (x > g.g1) return (x - g.g1) * (x - g.g1);
  const double r = x - g.g0 - std::nearbyint((x - g.g0) / g.s) * g.s;
  return r * r;
}

// E = sum_j n_j / (b_j - a_j) * integral_{a_j}^{b_j} (x - Q(x))^2 dx (header formula).
double expected_error(const std::vector<Mass>& masses, const Grid& g) {
  double total = 0;
  for (const Mass& m : masses) {
    if (m.b <= m.a) {
      total += m.n * point_error(m.a, g);
      continue;
    }
    double e = 0;
    if (m.a < g.g0) e += square_integral(m.a, std::min(m.b, g.g0), g.g0);
    if (m.b > g.g1) e += square_integral(std::max(m.a, g.g1), m.b, g.g1);
    const double u = std::max(m.a, g.g0), v = std::min(m.b, g.g1);
    if (v > u) e += sawtooth_integral(v, g) - sawtooth_integral(u, g);
    total += m.n * e / (m.b - m.a);
  }
  return total;
}

class MseObserver : public HistogramObserver {
 public:
  explicit MseObserver(const ObserverOptions& o) : HistogramObserver("mse", o, true, false) {}

 protected:
  Range compute_range(int bits, const SchemeInfo& scheme) const override {
    const StreamingHistogram& h = *values_;
    if (h.bin_width() == 0) return {min_, max_};
    std::vector<Mass> masses;
    for (int64_t i = 0; i < h.bins(); ++i) {
      double n = double(h.counts()[size_t(i)]);
      if (h.zeros() > 0 && i == h.zero_bin()) n = std::max(0.0, n - double(h.zeros()));
      if (n <= 0) continue;
      const double a = h.lo() + double(i) * h.bin_width();
      const double lo = std::clamp(a, min_, max_);
      const double hi = std::clamp(a + h.bin_width(), min_, max_);
      masses.push_back({lo, std::max(lo, hi), n});
    }
    const double lo0 = std::min(min_, 0.0), hi0 = std::max(max_, 0.0);
    if (masses.empty() || hi0 == lo0) return {min_, max_};

    // Candidates [a lo0, b hi0], tried from the widest down: a strict improvement keeps the wider
    // range on ties, and the fine stage only replaces the coarse best when it does better.
    Range best{lo0, hi0};
    double best_err = std::numeric_limits<double>::infinity();
    using Factors = std::vector<std::pair<double, double>>;
    auto search = [&](const Factors& factors) {
      std::vector<double> los, his;
      for (const auto& [a, b] : factors) {
        los.push_back(a * lo0);
        his.push_back(b * hi0);
      }
      const auto opts = at::TensorOptions().dtype(at::kDouble);
      QParams p = params_from_range(at::tensor(los, opts), at::tensor(his, opts), bits, scheme);
      at::Tensor scale = p.scale.to(at::kDouble).contiguous();
      at::Tensor zero = p.zero_point.to(at::kDouble).contiguous();
      const double* s = scale.data_ptr<double>();
      const double* z = zero.data_ptr<double>();
      for (size_t k = 0; k < los.size(); ++k) {
        const Grid g{(double(p.qmin) - z[k]) * s[k], (double(p.qmax) - z[k]) * s[k], s[k]};
        const double err = expected_error(masses, g);
        if (err < best_err) {
          best_err = err;
          best = {los[k], his[k]};
        }
      }
    };
    Factors factors;
    if (scheme.symmetric || lo0 == 0 || hi0 == 0) {
      // One factor: symmetric grids depend on max(|lo|, |hi|) or on hi alone; one-sided data has
      // one end to move.
      for (int64_t k = kLine; k >= 1; --k) {
        const double a = double(k) / double(kLine);
        factors.push_back({a, a});
      }
      search(factors);
      return best;
    }
    // Both ends move: a coarse 2-D grid, then the 0.01 steps around its best.
    for (int64_t i = kCoarse; i >= 1; --i) {
      for (int64_t j = kCoarse; j >= 1; --j) {
        factors.push_back({double(i) / double(kCoarse), double(j) / double(kCoarse)});
      }
    }
    search(factors);
    const int64_t a0 = std::lround(best.first / lo0 * double(kLine));
    const int64_t b0 = std::lround(best.second / hi0 * double(kLine));
    const int64_t reach = kLine / kCoarse;
    factors.clear();
    for (int64_t i = std::min(a0 + reach, kLine); i >= std::max<int64_t>(a0 - reach, 1); --i) {
      for (int64_t j = std::min(b0 + reach, kLine); j >= std::max<int64_t>(b0 - reach, 1); --j) {
        factors.push_back({double(i) / double(kLine), double(j) / double(kLine)});
      }
    }
    search(factors);
    return best;
  }

 private:
  static constexpr int64_t kLine = 100;   // factors k / 100 for one end, and the fine steps
  static constexpr int64_t kCoarse = 20;  // factors k / 20 per end for the 2-D grid
};

class KlObserver : public HistogramObserver {
 public:
  explicit KlObserver(const ObserverOptions& o) : HistogramObserver("kl", o, false, true) {}

 protected:
  Range compute_range(int bits, const SchemeInfo& scheme) const override {
    const StreamingHistogram& h = *magnitudes_;
    if (h.bin_width() == 0) return {min_, max_};
    const bool one_sided = !(scheme.symmetric && scheme.is_signed) && min_ >= 0;
    const int64_t levels = int64_t(1) << (one_sided ? bits : bits - 1);
    std::vector<int64_t> counts = h.counts();
    if (h.zeros() > 0) {
      int64_t& c = counts[size_t(h.zero_bin())];
      c = std::max<int64_t>(0, c - h.zeros());
    }
    const int64_t i = kl_threshold_bins(counts, levels);
    if (i == 0) return {min_, max_};  // only zeros
    const double t = double(i) * h.bin_width();
    double lo = std::max(-t, min_), hi = std::min(t, max_);
    if (lo > hi) {  // all data on one side, beyond t
      if (min_ >= 0) {
        lo = hi;
      } else {
        hi = lo;
      }
    }
    return {lo, hi};
  }
};

template <typename T>
std::unique_ptr<Observer> make(const ObserverOptions& options) {
  return std::make_unique<T>(options);
}

// One row per observer; kNumObservers makes a missing or extra row a build error.
constexpr std::array<ObserverInfo, kNumObservers> kObservers = {{
    {"minmax", "running min and max of everything observed", make<MinMaxObserver>},
    {"ema", "moving average (momentum) of each batch's min and max", make<EmaObserver>},
    {"percentile", "(100-p)th and p-th percentiles (|x| for symmetric signed) from a histogram",
     make<PercentileObserver>},
    {"mse", "clipping range minimising the expected squared quantization error of a histogram",
     make<MseObserver>},
    {"kl", "TensorRT entropy calibration: threshold minimising KL(P||Q) on a histogram of |x|",
     make<KlObserver>},
}};

}  // namespace

const std::array<ObserverInfo, kNumObservers>& observer_table() { return kObservers; }

std::unique_ptr<Observer> make_observer(const std::string& name, const ObserverOptions& options) {
  std::string names;
  for (const auto& row : kObservers) {
    if (name == row.name) return row.make(options);
    names += names.empty() ? row.name : std::string(", ") + row.name;
  }
  MPQ_FAIL("observer '", name, "': expected one of ", names);
}

}  // namespace mpq
