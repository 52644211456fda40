// SDQ stage 1 (methods.md §5; Huang et al., ICML 2022): the bit widths are learned during
// training. Every group of layers (a layer, or layers tied to one choice) holds a current width
// b_i from its ascending candidates and a Differentiable Bitwidth Parameter beta in (0, 1). Each
// step samples, per group, whether its weights are quantized at b_i (probability beta) or at
// b_{i-1}: one genuine quantized network per step, its weights Q_{b_{i-1}}(W) + h (Q_{b_i}(W) -
// Q_{b_{i-1}}(W)) with h from st_gumbel_choice (qat_ops.h), so the task loss reaches beta through
// the straight-through Gumbel estimator while rounding uses STE. The loss adds
//   cost_weight * G * sum over unmet budgets k of E[cost_k] / limit_k   (G groups),
//   E[cost_k] = sum_g beta_g c_g(b_i, k) + (1 - beta_g) c_g(b_{i-1}, k),
// the expected size, BitOps or latency of the sampled network (G makes a group's pull about
// one over its average bits, whatever the network's size); cost_weight grows by
// `cost_growth` per step while a budget is unmet (so stage 1 ends), as in a Lagrangian
// relaxation whose multiplier rises. Two additions to the paper's estimator, both on by default:
//  - curvature: the straight-through gradient is first order, and near a trained optimum it is
//    mostly noise; curvature_correction (qat_ops.h) adds the second-order part with the
//    diagonal empirical Fisher (a running mean of batch * (dL/dW)^2), exact for a quadratic loss.
//  - normalize: a group's beta gradient is divided by its share of the cost derivative (its cost
//    step times G / limit, summed over unmet budgets), at least the groups' mean share. Without
//    it the cost pull is proportional to a group's size, so the largest groups reach the
//    threshold first whatever their loss; with it every group at least the mean size feels the
//    same pull, and the loss per unit of cost decides the order, as in a knapsack.
// beta follows gradient descent with momentum (learning rate beta_lr) and is kept in
// [0.01, 0.99]. When a group's beta falls below
// `threshold` the group drops to b_{i-1} for good and beta restarts at beta_init; drops are taken
// lowest beta first and stop as soon as every budget holds with each group at its current width,
// which ends stage 1. If `max_epochs` pass first, the groups with the lowest beta drop until the
// budgets hold (reported). Weights train alongside (QAT with distillation, qat.h), starting from
// the PTQ model at the start widths; the activations keep one width for the whole model.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "train/qat.h"

namespace mpq {

struct SdqGroup {
  std::vector<std::string> layers;
  std::vector<int> bits;                  // ascending candidate weight widths
  std::vector<std::vector<double>> cost;  // [width index][budget]
};

struct SdqProblem {
  std::vector<SdqGroup> groups;
  std::vector<std::string> budgets;  // names, for messages
  std::vector<double> limits;        // per budget, for the groups' costs (fixed parts removed)
  int act_bits = 8;                  // every quantized layer's input
};

struct SdqOptions {
  QatOptions qat;  // loss (distillation), optimiser, batch, augmentation, PTQ starting point
  // Start width: the largest candidate at most start_bits (0: the largest candidate whose
  // every-group cost is at most twice every limit).
  int start_bits = 0;
  double beta_init = 0.99, beta_lr = 0.1, beta_momentum = 0.9, threshold = 0.4, tau = 1.0;
  double cost_weight = 0.005, cost_growth = 1.005;
  // Weight of the second-order correction to beta's straight-through gradient (0: none).
  double curvature = 1.0;
  // Divide each beta's gradient by its group's share of the cost (see above).
  bool normalize = true;
  int64_t max_epochs = 4;
};

struct SdqDrop {
  int64_t step = 0;
  std::string group;  // its first layer
  int from = 0, to = 0;
  bool forced = false;  // dropped after max_epochs to meet the budgets
};

struct SdqResult {
  std::vector<int> bits;     // chosen weight width per group
  std::vector<double> beta;  // final beta per group
  std::vector<SdqDrop> drops;
  std::vector<double> cost;  // per budget at the chosen widths
  int64_t steps = 0;
  int start_bits = 0;
  bool met_by_training = false;  // false: forced drops completed it
  double seconds = 0;
};

// Throws when no group has a candidate, a group's bits are not ascending, or the budgets cannot
// be met with every group at its lowest width.
SdqResult sdq_search(const Graph& model, const SdqProblem& problem, const Dataset& train_data,
                     const Dataset& calibration, const SdqOptions& options);

}  // namespace mpq
