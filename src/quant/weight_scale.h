// How a weight's scales are chosen (issue 4, "weight scales"): one row per method of one table.
// All work on the row view of a weight (scheme.h, RowLayout: one scale per row) and vectorise over
// rows.
//   maxabs:     the row's [min, max] (symmetric schemes take max |w|): round-to-nearest, no
//   clipping. mse:        clipping ratio alpha per row from a grid of `grid` values in [min_ratio,
//   1],
//               minimising sum |w - Q(w; alpha * range)|^p (p = 2: MSE; other p: the Lp search of
//               Banner et al. / Nagel et al.). Cost O(grid * numel).
//   percentile: the row's p-th percentile of |w| (symmetric) or its (100-p)th and p-th
//               percentiles (affine). Cost O(numel log numel).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <string>

#include "quant/scheme.h"

namespace mpq {

struct WeightScaleOptions {
  std::string method = "maxabs";  // PtqOptions leaves it "" to follow the PTQ method
  double p = 2.0;
  int64_t grid = 100;
  double min_ratio = 0.05;
  double percentile = 99.9;
};

struct WeightScaleInfo {
  const char* name;
  const char* description;
};
inline constexpr size_t kNumWeightScaleMethods = 3;
const std::array<WeightScaleInfo, kNumWeightScaleMethods>& weight_scale_table();

// Output-aware error for the mse search: with `gram` ([groups, S, S], row r of R uses
// gram[r / (R / groups)]; rows must be channel rows) a row's error is d^T G d, the mean squared
// change of the layer's output when G is the input patches' second moment; with `element` (the
// rows' shape) it is sum_i h_i d_i^2 (G's diagonal, any layout). Both need p = 2. Empty: plain Lp.
struct ErrorWeights {
  at::Tensor gram;
  at::Tensor element;
};

// rows: [R, S] float (to_rows of the weight). Returns per-row parameters of shape [R, 1].
// Example: QParams p = weight_params(to_rows(w, layout), 4, find_scheme("sym-channel"), {});
QParams weight_params(const at::Tensor& rows, int bits, const SchemeInfo& scheme,
                      const WeightScaleOptions& options, const ErrorWeights& weights = {});

// A weight quantized on its row layout: the scales weight_params picks, the integer rows and the
// dequantized weight (w's shape and dtype). The one path PTQ and sensitivity's dW(b) share.
// Example: RoundedWeight r = round_weight(w, make_row_layout(shape, 0, spec), spec, {});
struct RoundedWeight {
  QParams params;   // per row of the layout
  at::Tensor ints;  // [rows, row_size] integers (float32)
  at::Tensor hat;   // the dequantized weight
};
RoundedWeight round_weight(const at::Tensor& w, const RowLayout& layout, const QuantSpec& spec,
                           const WeightScaleOptions& options, const ErrorWeights& weights = {});

}  // namespace mpq
