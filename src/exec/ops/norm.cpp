// Op family: normalisations (BatchNormalization, LayerNormalization). Inference-form batch norm
// and layer norm go straight to at::batch_norm / at::layer_norm; the explicit formulas are kept
// for what those calls cannot express (statistics that need gradients, per-activation
// parameters, scales that only broadcast to the normalised shape).
#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <vector>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"

namespace mpq {
namespace {

// Shape [1, C, 1, ...] (or [1, C, D1, ...] for per-activation parameters) against an N-D input.
at::Tensor channel_view(const at::Tensor& p, int64_t rank) {
  std::vector<int64_t> shape(size_t(rank), 1);
  for (int64_t i = 0; i < p.dim(); ++i) shape[size_t(i + 1)] = p.size(i);
  return p.reshape(shape);
}

at::Tensor explicit_batch_norm(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& bias,
                               const at::Tensor& mean, const at::Tensor& var, double eps) {
  int64_t r = x.dim();
  return (x - channel_view(mean, r)) * at::rsqrt(channel_view(var, r) + eps) *
             channel_view(scale, r) +
         channel_view(bias, r);
}

std::vector<at::Tensor> batch_norm(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  ctx.check(at::isFloatingType(x_in.scalar_type()),
            "input X: expected a floating-point tensor, found ", x_in.scalar_type());
  ctx.check(x_in.dim() >= 2, "input X: expected at least 2-D (N, C, ...), found ", x_in.sizes());
  at::ScalarType type = compute_type(x_in);
  at::Tensor x = x_in.to(type);
  int64_t channels = x.size(1);
  const char* names[] = {"scale", "B", "input_mean", "input_var"};
  std::vector<at::Tensor> p;
  for (int64_t i = 1; i <= 4; ++i) {
    p.push_back(ctx.input(i).to(type));
    ctx.check(p.back().dim() >= 1 && p.back().size(0) == channels, "input ", names[i - 1],
              ": expected ", channels, " channels (dim 0), found shape ", p.back().sizes());
  }
  double eps = ctx.attr_float("epsilon", 1e-5);
  double momentum = ctx.attr_float("momentum", 0.9);
  // Opset 7 with spatial=0 gives parameters per activation (C x D1 x ...).
  bool per_activation = p[0].dim() > 1;
  // Before opset 14 a node asking for the statistics outputs is in training mode.
  bool training = ctx.opset() >= 14 ? ctx.attr_int("training_mode", 0) != 0 : ctx.num_outputs() > 1;
  if (!training && ctx.training()) {
    // Training the model (not an ONNX training-mode node): normalise with the batch statistics
    // and update the running statistics the graph holds, in place.
    at::Tensor running_mean = ctx.input(3), running_var = ctx.input(4);
    ctx.check(
        !per_activation && running_mean.scalar_type() == type && running_var.scalar_type() == type,
        "training: expected per-channel ", type, " statistics");
    at::Tensor y =
        at::batch_norm(x, p[0], p[1], running_mean, running_var, true, 1.0 - momentum, eps, true);
    return {y.to(x_in.scalar_type())};
  }
  if (!training) {
    bool stats_need_grad = p[2].requires_grad() || p[3].requires_grad();
    at::Tensor y = per_activation || stats_need_grad
                       ? explicit_batch_norm(x, p[0], p[1], p[2], p[3], eps)
                       : at::batch_norm(x, p[0], p[1], p[2], p[3], false, 0.0, eps, true);
    // Statistics outputs outside training mode are the unchanged running statistics.
    std::vector<at::Tensor> out = {y.to(x_in.scalar_type()), ctx.input(3), ctx.input(4)};
    out.resize(size_t(std::min<int64_t>(3, std::max<int64_t>(1, ctx.num_outputs()))));
    return out;
  }
  ctx.check(!per_activation, "training mode: expected per-channel parameters, found shape ",
            p[0].sizes());
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != 1) dims.push_back(i);
  // ONNX normalises with and reports the population (biased) variance of the batch.
  auto [batch_var, batch_mean] = at::var_mean(x, dims, /*unbiased=*/false, /*keepdim=*/false);
  at::Tensor y = at::batch_norm(x, p[0], p[1], at::Tensor(), at::Tensor(), true, 0.0, eps, true);
  at::ScalarType stat_type = ctx.input(3).scalar_type();
  std::vector<at::Tensor> out = {y.to(x_in.scalar_type()),
                                 (p[2] * momentum + batch_mean * (1 - momentum)).to(stat_type),
                                 (p[3] * momentum + batch_var * (1 - momentum)).to(stat_type)};
  if (ctx.opset() < 14) {  // saved_mean, saved_var
    out.push_back(batch_mean.to(stat_type));
    out.push_back(batch_var.to(stat_type));
  }
  out.resize(size_t(std::max<int64_t>(1, ctx.num_outputs())));
  return out;
}

at::ScalarType stash_scalar_type(OpContext& ctx) {
  int64_t stash = ctx.attr_int("stash_type", 1);
  switch (stash) {
    case 1:
      return at::kFloat;
    case 10:
      return at::kHalf;
    case 11:
      return at::kDouble;
    case 16:
      return at::kBFloat16;
    default:
      ctx.fail("attribute 'stash_type': expected 1 (float), 10, 11 or 16, found ", stash);
  }
}

std::vector<at::Tensor> layer_norm(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  ctx.check(at::isFloatingType(x_in.scalar_type()),
            "input X: expected a floating-point tensor, found ", x_in.scalar_type());
  int64_t rank = x_in.dim();
  int64_t axis = ctx.attr_int("axis", -1);
  ctx.check(axis >= -rank && axis < rank, "attribute 'axis': expected a value in [", -rank, ", ",
            rank - 1, "], found ", axis);
  if (axis < 0) axis += rank;
  at::ScalarType stash = stash_scalar_type(ctx);
  // Statistics are accumulated at least in the stash type; float64 inputs keep float64.
  at::ScalarType type = x_in.scalar_type() == at::kHalf || x_in.scalar_type() == at::kBFloat16
                            ? at::kFloat
                            : x_in.scalar_type();
  if (stash == at::kDouble) type = at::kDouble;
  at::Tensor x = x_in.to(type);
  at::IntArrayRef normalized = x.sizes().slice(size_t(axis));
  at::Tensor scale = ctx.input(1).to(type);
  at::Tensor bias = ctx.has_input(2) ? ctx.input(2).to(type) : at::Tensor();
  // ATen takes only parameters of exactly the normalised shape; others are applied by
  // broadcasting afterwards.
  bool fused_scale = scale.sizes() == normalized;
  bool fused_bias = !bias.defined() || (fused_scale && bias.sizes() == normalized);
  double eps = ctx.attr_float("epsilon", 1e-5);
  auto [y, mean, inv_std] =
      at::native_layer_norm(x, normalized, fused_scale ? scale : at::Tensor(),
                            fused_scale && fused_bias ? bias : at::Tensor(), eps);
  if (!fused_scale) y = y * scale;
  if (!(fused_scale && fused_bias) && bias.defined()) y = y + bias;
  std::vector<at::Tensor> out = {y.to(x_in.scalar_type()), mean.to(stash), inv_std.to(stash)};
  out.resize(size_t(std::max<int64_t>(1, ctx.num_outputs())));
  return out;
}

}  // namespace

void register_norm_ops(OpRegistry& r) {
  // Opset 7 has 'spatial', 9 drops it, 14 adds training_mode, 15 lets parameters differ in type.
  r.add("BatchNormalization", 7, 1000, batch_norm);
  r.add("LayerNormalization", 17, 1000, layer_norm);
}

}  // namespace mpq
