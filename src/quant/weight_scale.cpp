#include "quant/weight_scale.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace mpq {
namespace {

constexpr std::array<WeightScaleInfo, kNumWeightScaleMethods> kMethods = {{
    {"maxabs", "the row's full range (max |w| for symmetric schemes): no clipping"},
    {"mse", "per-row clipping ratio minimising the Lp quantization error (p = 2: MSE)"},
    {"percentile", "the row's range clipped at a percentile of its values"},
}};

QParams mse_params(const at::Tensor& rows, const at::Tensor& lo, const at::Tensor& hi, int bits,
                   const SchemeInfo& scheme, const WeightScaleOptions& o,
                   const ErrorWeights& weights) {
  MPQ_CHECK(o.grid >= 1, "weight scale 'mse': grid: expected >= 1, found ", o.grid);
  MPQ_CHECK(o.min_ratio > 0 && o.min_ratio <= 1,
            "weight scale 'mse': min ratio: expected a value in (0, 1], found ", o.min_ratio);
  MPQ_CHECK(o.p > 0, "weight scale 'mse': p: expected > 0, found ", o.p);
  bool weighted = weights.gram.defined() || weights.element.defined();
  MPQ_CHECK(!weighted || o.p == 2.0, "weight scale 'mse': output-aware errors need p = 2, found ",
            o.p);
  at::Tensor gram = weights.gram.defined() ? weights.gram.to(at::kFloat) : at::Tensor();
  int64_t groups = gram.defined() ? gram.size(0) : 1;
  MPQ_ASSERT(!gram.defined() || (rows.size(0) % groups == 0 && gram.size(1) == rows.size(1)),
             "gram shape");
  at::Tensor best_err;
  at::Tensor best_lo = lo.clone(), best_hi = hi.clone();
  for (int64_t k = 0; k < o.grid; ++k) {
    double alpha = o.grid == 1 ? 1.0 : 1.0 - (1.0 - o.min_ratio) * double(k) / double(o.grid - 1);
    at::Tensor l = lo * alpha, h = hi * alpha;
    QParams p = params_from_range(l, h, bits, scheme);
    at::Tensor diff = dequantize(quantize_to_int(rows, p), p) - rows;
    at::Tensor err;
    if (gram.defined()) {
      at::Tensor d = diff.reshape({groups, -1, diff.size(1)});
      err = (at::bmm(d, gram) * d).sum(2).reshape({-1, 1});
    } else if (weights.element.defined()) {
      err = (diff.square() * weights.element).sum(1, true);
    } else {
      err = (o.p == 2.0 ? diff.square() : diff.abs().pow(o.p)).sum(1, true);
    }
    if (!best_err.defined()) {
      best_err = err;
      continue;
    }
    at::Tensor better = err < best_err;
    best_err = at::where(better, err, best_err);
    best_lo = at::where(better, l, best_lo);
    best_hi = at::where(better, h, best_hi);
  }
  return params_from_range(best_lo, best_hi, bits, scheme);
}

}  // namespace

const std::array<WeightScaleInfo, kNumWeightScaleMethods>& weight_scale_table() { return kMethods; }

QParams weight_params(const at::Tensor& rows_in, int bits, const SchemeInfo& scheme,
                      const WeightScaleOptions& o, const ErrorWeights& weights) {
  MPQ_ASSERT(rows_in.dim() == 2, "rows must be 2-D");
  at::NoGradGuard no_grad;
  at::Tensor rows = rows_in.detach().to(at::kFloat);
  at::Tensor lo = std::get<0>(rows.min(1, true));
  at::Tensor hi = std::get<0>(rows.max(1, true));
  if (o.method == "maxabs") return params_from_range(lo, hi, bits, scheme);
  if (o.method == "mse") return mse_params(rows, lo, hi, bits, scheme, o, weights);
  if (o.method == "percentile") {
    MPQ_CHECK(o.percentile > 0 && o.percentile <= 100,
              "weight scale 'percentile': expected a percentile in (0, 100], found ", o.percentile);
    double q = o.percentile / 100.0;
    if (scheme.symmetric && scheme.is_signed) {
      at::Tensor t = at::quantile(rows.abs(), q, 1, true);
      return params_from_range(-t, t, bits, scheme);
    }
    return params_from_range(at::quantile(rows, 1.0 - q, 1, true), at::quantile(rows, q, 1, true),
                             bits, scheme);
  }
  std::string names;
  for (const auto& m : kMethods) names += std::string(names.empty() ? "" : ", ") + m.name;
  MPQ_FAIL("weight scale method '", o.method, "': expected one of ", names);
}

RoundedWeight round_weight(const at::Tensor& w, const RowLayout& layout, const QuantSpec& spec,
                           const WeightScaleOptions& o, const ErrorWeights& weights) {
  at::NoGradGuard no_grad;
  at::Tensor rows = to_rows(w.detach().to(at::kFloat), layout);
  RoundedWeight r;
  r.params = weight_params(rows, spec.bits, spec.info(), o, weights);
  r.ints = quantize_to_int(rows, r.params);
  r.hat = from_rows(dequantize(r.ints, r.params), layout).to(w.scalar_type());
  return r;
}

}  // namespace mpq
