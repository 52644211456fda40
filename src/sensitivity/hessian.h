// The `hessian` metric (methods.md §2; HAWQ-V2/V3, LCPAQ): per-layer Hessian trace of the loss by
// Hutchinson's estimator, Tr(H_l) = E_v[v_l^T H_ll v_l] with Rademacher v, each Hessian-vector
// product by double backward through mpq's executor, the loss averaged over the options' samples.
//   probe "global": one v over all layers; one H v per probe gives every layer's v_l^T (H v)_l
//                   (cross-layer blocks have zero mean under independent signs);
//   probe "layer":  a separate v per layer, H v restricted to it (one double backward per layer).
// Probes continue until every layer's standard error is below tolerance * |mean| (after
// min_probes) or max_probes. Omega_l(b) = Tr(H_l) / n_l * ||dW_l(b)||^2, parts {trace, dw_sq};
// std_error from the trace's standard error. extra per layer: trace, trace_std_error, probes.
// granularity "channel": the same probes summed per output channel, Omega_l(b) =
// sum_c Tr(H_c) / n_c * ||dW_c(b)||^2 (H_c the channel's diagonal block). Folding
// BatchNormalization scales each channel's weights by gamma / sigma, so channels differ by orders
// of magnitude in ||dW_c|| and, inversely squared, in their curvature; one isotropic trace per
// layer then pairs the largest errors with the average curvature.
#pragma once

#include "sensitivity/sensitivity.h"

namespace mpq {

SensitivityResult hessian_sensitivity(const SensitivityContext& context);

// v^T H v over the context's data for a given probe set (one tensor per layer weight, or
// undefined tensors for layers left out), and H v itself; for tests and the benchmark.
struct HessianProduct {
  std::vector<at::Tensor> hv;  // per layer, undefined where the probe was
  double loss = 0;             // the mean loss
};
HessianProduct hessian_vector_product(const SensitivityContext& context,
                                      const std::vector<at::Tensor>& probe);

}  // namespace mpq
