// Multipoint quantization (methods.md §3; Liu, Ye, Zhou, Liu, AAAI 2021): mixed precision without
// mixed-precision kernels. Each output channel's weight row w_j in R^K (to_channel_rows, scheme.h)
// is approximated by a sum of n_j low-bit vectors, w_hat_j(n) = sum_{i<n} a_{i,j} q_{i,j}, with
// q_{i,j} on the symmetric signed b-bit grid [-2^(b-1), 2^(b-1) - 1] (zero point 0) and one float
// scale a_{i,j} > 0 per point (positive, as DequantizeLinear needs), so a channel with n points
// runs as n ordinary b-bit channels whose outputs are summed; n = 1 is per-channel quantization.
// Three steps: build_points makes up to P points for every channel, compute_errors measures each
// channel's output error with 1..P points, allocate_points spends an extra-point budget where it
// lowers the error most. C channels, K inputs per channel, P points, E extra points:
//
//   build, greedy on the residual, vectorised over channels:
//     r <- w_j;  for i = 1..P:
//       (a_i, q_i) = argmin_{a > 0, q on the grid} ||r - a q||^2;  r <- r - a_i q_i
//     The argmin: for each clipping ratio t (the 100 ratios in [0.2, 1] of weight_scale's "mse"
//     method, then 0.19, 0.18, ..., 0.01), q_t = clamp(round(r / (t max|r| / qmax))) scored at its
//     least-squares scale, ||r||^2 - <r,q_t>^2 / ||q_t||^2; from the best q_t alternate
//     a = <r,q> / ||q||^2 (rounded to float32), q = clamp(round(r / a)), keeping the best pair,
//     until no channel improves (at most 10 rounds). No step raises the error (up to the float32
//     rounding of a), so point 1 is never worse than max-abs (t = 1) or MSE-clipped per-channel
//     quantization. O(P (T + R) C K) with T = 119 ratios and R <= 10 rounds.
//     Output-aware variant (an mpq extension, PtqOptions::clip_error "output", the default): with
//     the layer's gram every norm above becomes ||d||_G^2 = d^T G d, the least-squares scale
//     <r,q>_G / ||q||_G^2 (kept > 0), so point 1 is the output-aware MSE-clipped quantization and
//     later points cut the output error directly. The ratio search scores every 5th ratio, then
//     the 8 around each channel's best (32 scores instead of 119). O(P (32 + R) C K^2).
//   errors:  e_j(n) = (w_j - w_hat_j(n))^T G_j (w_j - w_hat_j(n)),  G = X^T X / M from the layer's
//     calibration inputs (im2col order). O(P C K^2), or O(P C K) without a gram (G = I).
//   allocate: from one point per channel, repeatedly give one more point to the channel with the
//     largest reduction e_j(n) - e_j(n+1) > 0 (ties: lower layer, then lower channel), at most P
//     per channel, until the budget is spent. A priority queue: O(C + E log C) over the channels it
//     ranks. Exact (minimum total error for the budget) when every channel's reductions do not
//     increase with n, the usual case; otherwise greedy.
//     kLayer: each layer spends its own budget (the caller passes round(fraction * C_l)).
//     kNetwork: one budget for all layers; reductions are divided by the layer's float output
//     energy E_l = sum_j w_j^T G_j w_j (output_energy), so the greedy minimises sum_l e_l / E_l,
//     the sum of the layers' relative output errors. Each layer's G comes from its own inputs,
//     whose scales differ by orders of magnitude between layers, so raw errors would send the
//     whole budget to the layers with the largest activations. A layer with E_l = 0 gets nothing.
//     The budget counts weight elements: a point on a channel of K inputs costs K (so a network
//     budget of sum_l fraction * C_l * K_l spends the same bits as the per-layer fractions), the
//     queue ranks reductions per element, and a point that no longer fits is skipped.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mpq {

struct MultipointLayer {
  int bits = 4;
  at::Tensor scales;  // float32 [P, C]: a_{i,j} > 0, point i of channel j
  at::Tensor points;  // int8 [P, C, K]: q_{i,j} on the b-bit grid
  at::Tensor count;   // int64 [C]: points in use per channel, 1..P
  at::Tensor errors;  // float64 [C, P]: e_j(n) with n = 1..P points in column n - 1
};

// Builds max_points points for every row of w: [C, K] float, finite (to_channel_rows of the
// weight). count starts at 1 per channel and errors stay undefined until compute_errors. Computes
// on w's device; the layer's tensors are on the CPU. Throws for bits outside 2..8, max_points < 1,
// or a w that is not a non-empty 2-D float tensor.
// Example: MultipointLayer l = build_points(to_channel_rows(conv_weight, 0), 4, 4);
// gram (as for compute_errors; undefined: the paper's ||r - a q||^2): each point minimises the
// output error (r - a q)^T G (r - a q) instead, the objective the allocation ranks by.
MultipointLayer build_points(const at::Tensor& w, int bits, int max_points,
                             const at::Tensor& gram = {});

// Fills layer->errors. w: the rows build_points saw. gram: undefined (G = I, e is the plain
// squared error) or float [groups, K, K] with channel j using gram[j / (C / groups)] (grouped and
// depthwise convolutions); C must be a multiple of groups.
// Example: compute_errors(rows, gram, &l);
void compute_errors(const at::Tensor& w, const at::Tensor& gram, MultipointLayer* layer);

// sum_j w_j^T G_j w_j, the layer's float output energy (kNetwork's normaliser); gram as above.
double output_energy(const at::Tensor& w, const at::Tensor& gram);

enum class PointScope { kLayer, kNetwork };

// Sets every layer's count: 1 per channel plus the extra points given out (earlier counts are
// discarded). extra_points: one budget per layer in points (kLayer) or a single one in weight
// elements (kNetwork), each >= 0.
// energy: output_energy per layer, needed for kNetwork, ignored for kLayer (may be empty). Stops
// early when no channel can lower its error any more; extra_points(layer) tells what was spent.
// Example: allocate_points({&l1, &l2}, {20000}, PointScope::kNetwork, {e1, e2});
void allocate_points(const std::vector<MultipointLayer*>& layers,
                     const std::vector<int64_t>& extra_points, PointScope scope,
                     const std::vector<double>& energy);

// w_hat: [C, K] float32, each channel's sum over its first count_j points.
at::Tensor reconstruct(const MultipointLayer& layer);

// Extra points in use: sum(count) - C.
int64_t extra_points(const MultipointLayer& layer);

}  // namespace mpq
