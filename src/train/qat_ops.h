// The differentiable pieces of quantization-aware training and SDQ (methods.md §5), each a
// composition of ATen operations whose backward is the estimator named below (tests check every
// one against finite differences of the function it claims to differentiate):
//   lsq_fake_quantize   LSQ (Esser et al., 2020): x_hat = (clamp(round(x/s + z), qmin, qmax) - z)
//   s;
//                       d/dx = 1 inside the grid's range, 0 outside (straight-through);
//                       d/ds = round(v) - v inside (v = x/s), qmin - z or qmax - z outside, times
//                       the gradient scale g (LSQ's 1/sqrt(N qmax)); z is not learned.
//   st_gumbel_choice    SDQ's stochastic choice: h = 1 with probability beta (the logistic noise
//                       u decides: h = [logit(beta) + u > 0]); the forward value is exactly 0 or
//                       1, the gradient that of sigmoid((logit(beta) + u) / tau) (straight-
//                       through Gumbel-softmax with two classes).
//   curvature_correction  the second-order part of that estimator: h * (-c if h = 1, +c
//                       otherwise), added to the loss. With f(h) = L(low + h delta) the straight-
//                       through gradient is f'(h) at the sampled h only; f(1) - f(0) = f'(1) - c =
//                       f'(0) + c for a quadratic f, c = delta' H delta / 2, so the correction is
//                       -c at h = 1 and +c at h = 0 (its value is not part of the reported loss).
//   distillation_loss   soft cross-entropy to the teacher at temperature T, times T^2 (Hinton).
//   bin_regularization  SDQ's entropy-aware bin regularization of one weight: in grid units
//                       v = w/s + z, for every occupied level k the squared distance of the mean
//                       of the weights that round to k from k plus their variance, averaged over
//                       the occupied levels; with `entropy`, plus 1 - H(p)/log(levels), p the
//                       levels' occupancy with each weight split linearly between its two
//                       neighbouring levels (so it has a gradient): minimal when the levels are
//                       used evenly.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq {

// `scale` (and `zero_point`) broadcast against x; `grad_scale` multiplies the gradient that
// reaches `scale` (1 = the plain LSQ derivative).
at::Tensor lsq_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                             const at::Tensor& zero_point, int64_t qmin, int64_t qmax,
                             double grad_scale);

// `beta` in (0, 1), `noise` a logistic sample log(r) - log(1 - r), r ~ U(0, 1), of beta's shape.
at::Tensor st_gumbel_choice(const at::Tensor& beta, const at::Tensor& noise, double tau);
// Logistic noise of `like`'s shape from the global generator.
at::Tensor logistic_noise(const at::Tensor& like);

// h: a choice from st_gumbel_choice (0-d, exactly 0 or 1); c: delta' H delta / 2 >= 0.
at::Tensor curvature_correction(const at::Tensor& h, double c);

// Mean over the batch; logits [N, C] (or [N, C, ...] with classes on axis 1).
at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                             double temperature);

// rows: the weight's row view [R, S]; scale, zero_point: per row [R, 1] (or 0-d). The level each
// weight belongs to is taken without gradient; the loss's gradient reaches `rows` only.
at::Tensor bin_regularization(const at::Tensor& rows, const at::Tensor& scale,
                              const at::Tensor& zero_point, int64_t qmin, int64_t qmax,
                              bool entropy);

}  // namespace mpq
