// The differentiable pieces of QAT and SDQ (methods.md §5); see qat_ops.h for the estimators.
#include "train/qat_ops.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace mpq {

at::Tensor lsq_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                             const at::Tensor& zero_point, int64_t qmin, int64_t qmax,
                             double grad_scale) {
  // The value is `scale`, the gradient that reaches it is multiplied by grad_scale.
  at::Tensor s = scale.to(x.scalar_type());
  if (grad_scale != 1.0) s = s * grad_scale + (s - s * grad_scale).detach();
  at::Tensor z = zero_point.to(x.scalar_type()).detach();
  at::Tensor v = x / s + z;
  at::Tensor clamped = at::clamp(v, double(qmin), double(qmax));
  at::Tensor rounded = clamped + (at::round(clamped) - clamped).detach();
  return (rounded - z) * s;
}

at::Tensor st_gumbel_choice(const at::Tensor& beta, const at::Tensor& noise, double tau) {
  MPQ_ASSERT(tau > 0, "tau ", tau);
  at::Tensor logit = at::log(beta) - at::log1p(-beta);
  at::Tensor a = logit + noise;
  at::Tensor soft = at::sigmoid(a / tau);
  at::Tensor hard = (a.detach() > 0).to(soft.scalar_type());
  return hard + (soft - soft.detach());
}

at::Tensor logistic_noise(const at::Tensor& like) {
  at::Tensor r = at::rand(like.sizes(), like.options().requires_grad(false)).clamp(1e-6, 1 - 1e-6);
  return at::log(r) - at::log1p(-r);
}

at::Tensor curvature_correction(const at::Tensor& h, double c) {
  MPQ_ASSERT(c >= 0, "curvature ", c);
  return h * (h.item<double>() > 0.5 ? -c : c);
}

at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                             double temperature) {
  MPQ_ASSERT(temperature > 0, "temperature ", temperature);
  at::Tensor target = at::softmax(teacher_logits.detach() / temperature, 1);
  at::Tensor log_p = at::log_softmax(student_logits / temperature, 1);
  return -(target * log_p).sum(1).mean() * (temperature * temperature);
}

at::Tensor bin_regularization(const at::Tensor& rows, const at::Tensor& scale,
                              const at::Tensor& zero_point, int64_t qmin, int64_t qmax,
                              bool entropy) {
  const int64_t levels = qmax - qmin + 1;
  at::Tensor z = zero_point.to(rows.scalar_type()).detach();
  at::Tensor v = (rows / scale.to(rows.scalar_type()).detach() + z).reshape({-1});
  const int64_t n = v.numel();
  at::Tensor level = at::clamp(at::round(v.detach()), double(qmin), double(qmax)) - double(qmin);
  at::Tensor index = level.to(at::kLong);
  at::Tensor zeros = at::zeros({levels}, v.options().requires_grad(false));
  at::Tensor count = zeros.index_add(0, index, at::ones_like(v.detach()));
  at::Tensor safe = count.clamp_min(1);
  at::Tensor mean = zeros.index_add(0, index, v) / safe;
  at::Tensor deviation = v - mean.index_select(0, index);
  at::Tensor variance = zeros.index_add(0, index, deviation * deviation) / safe;
  at::Tensor centre = at::arange(levels, v.options().requires_grad(false)) + double(qmin);
  at::Tensor occupied = (count > 0).to(v.scalar_type());
  at::Tensor per_level = ((mean - centre).pow(2) + variance) * occupied;
  at::Tensor loss = per_level.sum() / occupied.sum().clamp_min(1);
  if (entropy && levels > 1) {
    // Occupancy with each weight split between its two neighbouring levels.
    at::Tensor position = at::clamp(v, double(qmin), double(qmax)) - double(qmin);
    at::Tensor lower = at::clamp(at::floor(position.detach()), 0, double(levels - 2));
    at::Tensor fraction = position - lower;
    at::Tensor lower_index = lower.to(at::kLong);
    at::Tensor occupancy =
        zeros.index_add(0, lower_index, 1 - fraction).index_add(0, lower_index + 1, fraction) /
        double(n);
    at::Tensor used = occupancy > 0;
    at::Tensor plogp =
        at::where(used, occupancy * at::log(occupancy.clamp_min(1e-30)), at::zeros_like(occupancy));
    loss = loss + (1 + plogp.sum() / std::log(double(levels)));
  }
  return loss;
}

}  // namespace mpq
