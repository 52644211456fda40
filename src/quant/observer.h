// Activation observers for calibration (design.md, module quant): an observer streams batches of
// one tensor's values through observe() and then answers range(bits, scheme), the real range
// [lo, hi] that params_from_range (scheme.h) turns into a scale and a zero point. One calibration
// pass serves every bit width: sensitivity analysis asks one observer for 4, 6, 8 and 16 bits.
// Every observer is one row of one table; the histogram observers keep a StreamingHistogram of
// B = `bins` bins, so their memory does not grow with the number of values observed.
//
//   minmax:     [min x, max x] over everything observed.
//   ema:        per batch t [m_t, M_t]; lo <- mu lo + (1 - mu) m_t, hi likewise (batch 1 sets
//   them). percentile: [Q_x(1 - p/100), Q_x(p/100)]; symmetric signed schemes [-t, t], t =
//   Q_|x|(p/100).
//               Quantiles interpolate linearly inside a bin, so they are within one bin width of
//               the sample's order statistic.
//   mse:        the candidate [lo, hi] minimising the expected squared error of the histogram's
//               distribution (count spread uniformly over each bin, clipped to [min x, max x]) on
//               the grid params_from_range gives at `bits`:
//                 E(lo, hi) = sum_j n_j / |bin_j| * integral_{bin_j} (x - Q(x))^2 dx,
//               integrated exactly: clipping (x - g)^2 beyond the grid's ends g, rounding as the
//               sawtooth (x - nearest grid point)^2 inside (s^2 / 12 per unit length over whole
//               steps). Exact zeros cost nothing (0 is on every grid) and are left out.
//               Candidates [a lo0, b hi0], lo0 = min(x, 0), hi0 = max(x, 0): a = b = k / 100,
//               k = 1..100, for symmetric schemes and one-sided data; otherwise a 2-D grid of
//               a, b = k / 20, then a, b within 0.05 of its best in steps of 0.01 (521 candidates).
//   kl:         TensorRT entropy calibration (Migacz, "8-bit inference with TensorRT", 2017) on
//               the histogram of |x| (bin 0 starts at 0; exact zeros left out): for each i in
//               [L, B], P = bins [0, i) with the mass beyond added to bin i - 1; Q = bins [0, i)
//               merged into L groups and spread evenly over the bins where P > 0; keep the i
//               minimising KL(P || Q) (the largest i on ties). t = i * bin width; the range is
//               [-t, t] intersected with [min x, max x]. L = 2^bits levels when the grid puts all
//               its levels on one side (not symmetric-signed, and min x >= 0), else 2^(bits - 1).
//
// Cost per batch of n values: O(n) (the histogram observers re-bin in O(B) when a batch falls
// outside their range). range(): O(1) for minmax and ema, O(B) percentile, O(521 B) mse,
// O(B + (B - L) L) kl. The "float" scheme gets [min x, max x] from every observer.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "quant/scheme.h"

namespace mpq {

struct ObserverOptions {
  double percentile = 99.99;  // "percentile": p in (50, 100]
  double ema_momentum = 0.9;  // "ema": mu in [0, 1); new = mu * old + (1 - mu) * batch
  int64_t bins = 2048;        // histogram observers: B >= 2
};

class Observer {
 public:
  virtual ~Observer() = default;
  // One batch of values: any shape, any float dtype (others are converted), any device; no
  // gradient is recorded. Empty tensors are ignored; NaN or Inf is an error naming the observer.
  virtual void observe(const at::Tensor& x) = 0;
  // The real range to quantize to at `bits` (2-16) on the grid of `scheme`; hi >= lo. Callable any
  // number of times after observing. Throws when nothing was observed.
  // Example: auto [lo, hi] = obs->range(4, find_scheme("affine-tensor"));
  virtual std::pair<double, double> range(int bits, const SchemeInfo& scheme) const = 0;
  virtual int64_t count() const = 0;  // values observed
  virtual std::string name() const = 0;
  // Numbers of state held: fixed at construction, however much is observed.
  virtual int64_t state_size() const = 0;
};

struct ObserverInfo {
  const char* name;  // "percentile"
  const char* description;
  std::unique_ptr<Observer> (*make)(const ObserverOptions&);
};

inline constexpr size_t kNumObservers = 5;
// Rows: minmax, ema, percentile, mse, kl.
const std::array<ObserverInfo, kNumObservers>& observer_table();
// Throws listing the valid names, or naming a bad option. Example: make_observer("kl").
std::unique_ptr<Observer> make_observer(const std::string& name,
                                        const ObserverOptions& options = {});

// A histogram of B equal bins over [lo, lo + B w] that grows to hold every value added while
// keeping exactly B counts. The first batch sets the range to [min, max] ([0, max] when anchored
// at zero). A batch outside it widens the range: w' = f w, f the smallest power of two for which
// some whole number j of old bins gives lo' = lo - j w with [lo', lo' + B w'] covering both old
// range and batch (j = 0 when growing upward only; hi kept when growing downward only). Old bin i
// then lies inside new bin (i + j) / f, so re-binning moves whole counts and is exact. Values
// that are all equal are held as one point until a different value arrives. (A range growing
// more than 2^(52 - log2 B)-fold at once re-bins by bin centres instead.)
// Cost: O(n) per batch of n values, O(B) per widening; memory O(B).
class StreamingHistogram {
 public:
  explicit StreamingHistogram(int64_t bins, bool anchor_zero = false);
  // Any shape, finite (anchored histograms: >= 0); empty tensors are ignored.
  void add(const at::Tensor& values);

  int64_t bins() const { return int64_t(counts_.size()); }
  double lo() const { return lo_; }
  double bin_width() const { return width_; }  // 0 while every value added is the same
  double hi() const { return lo_ + width_ * double(bins()); }
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t total() const { return total_; }
  double min() const { return min_; }  // exact, of the values added
  double max() const { return max_; }
  int64_t zeros() const { return zeros_; }        // values exactly 0
  int64_t zero_bin() const { return zero_bin_; }  // the bin holding them, when zeros() > 0
  // The bin a value falls in (clamped to [0, B)). Example: h.counts()[h.bin_of(0.5)].
  int64_t bin_of(double value) const;
  // The q-quantile, q in [0, 1], interpolated inside its bin and clamped to [min, max].
  double quantile(double q) const;

 private:
  void set_range(double lo, double hi);
  void cover(double lo, double hi);
  at::Tensor bin_index(const at::Tensor& x) const;

  bool anchor_zero_ = false;
  std::vector<int64_t> counts_;
  double lo_ = 0, width_ = 0, min_ = 0, max_ = 0;
  int64_t total_ = 0, zeros_ = 0, zero_bin_ = 0;
};

// The kl observer's search on the counts of a histogram of |x| whose bin 0 starts at 0: the number
// of bins i in [levels, nb] minimising KL(P_i || Q_i) (formula above; the largest i on ties),
// nb = the last non-empty bin + 1. Returns nb when nb <= levels (no clipping), 0 when all are 0.
// Prefix sums make each candidate O(levels): O(B + (nb - levels) * levels) in all.
int64_t kl_threshold_bins(const std::vector<int64_t>& counts, int64_t levels);

}  // namespace mpq
