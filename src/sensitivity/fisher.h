// The `fisher` metric (methods.md §1, MPQCO): the second-order Taylor term of the loss change
// with the Hessian replaced by the (empirical) Fisher, Omega_l(b) = 1/(2N) sum_n
// <grad_{W_l} loss_n, dW_l(b)>^2, N samples, loss_n the sample's loss (cross-entropy; label-free:
// the true Fisher, loss_n the negative log-likelihood of a target drawn from the float model's
// predictive distribution, whose E[grad grad^T] is the Hessian of the label-free loss of
// output_kind.h at the float model):
//   scores     cross-entropy to a label drawn from softmax(y_float);
//   sequence   -1/sqrt(T) sum_t log y_t[c_t], c_t drawn from y_float,t per step;
//   map, embedding  1/2 ||y - t||^2 with t = y_float + N(0, I) (a unit Gaussian likelihood).
// Batched: one forward and one backward per batch give every sample's gradient with respect to
// each layer's output; <grad_W loss_n, dW> = <grad_y loss_n, layer(x_n; dW)> (the layer is linear
// in its weight, bias left out), so each (layer, bit) costs one extra layer evaluation on the
// batch, never a batch-size-1 loop. parts {dw_sq, mean_inner}; std_error over samples.
#pragma once

#include "sensitivity/sensitivity.h"

namespace mpq {

SensitivityResult fisher_sensitivity(const SensitivityContext& context);

// The label-free targets of a batch whose samples are first_sample, first_sample + 1, ... of the
// seeded order (each drawn from its own generator, seeded by seed and its position, so batching
// does not change them), from the float model's output `float_output`: labels [N], per-step
// labels [N, T], or y_float + noise.
at::Tensor fisher_targets(OutputKind kind, const at::Tensor& float_output, uint64_t seed,
                          uint64_t first_sample);
// The sum over the batch of the per-sample losses above. Example:
//   fisher_loss(kind, y, fisher_targets(kind, y.detach(), seed, 0)).backward();
at::Tensor fisher_loss(OutputKind kind, const at::Tensor& output, const at::Tensor& targets);

}  // namespace mpq
