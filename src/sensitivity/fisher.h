// The `fisher` metric (methods.md §1, MPQCO): the second-order Taylor term of the loss change
// with the Hessian replaced by the (empirical) Fisher, Omega_l(b) = 1/(2N) sum_n
// <grad_{W_l} loss_n, dW_l(b)>^2, N samples, loss_n the sample's loss (cross-entropy; label-free:
// cross-entropy to a label drawn from the float model's softmax, the true Fisher).
// Batched: one forward and one backward per batch give every sample's gradient with respect to
// each layer's output; <grad_W loss_n, dW> = <grad_y loss_n, layer(x_n; dW)> (the layer is linear
// in its weight, bias left out), so each (layer, bit) costs one extra layer evaluation on the
// batch, never a batch-size-1 loop. parts {dw_sq, mean_inner}; std_error over samples.
#pragma once

#include "sensitivity/sensitivity.h"

namespace mpq {

SensitivityResult fisher_sensitivity(const SensitivityContext& context);

}  // namespace mpq
