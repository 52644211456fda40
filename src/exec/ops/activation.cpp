// Op family: activations (elementwise non-linearities and softmax-style normalisations).
//
// Every kernel is one ATen call where ATen has the function, so that autograd sees the fused
// backward and the hot path stays thin. Rows start at opset 7 (the oldest opset mpq runs); an op
// whose semantics changed between opsets reads ctx.opset() rather than registering a second row,
// except Clip, whose bounds moved from attributes to inputs.
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {

constexpr int64_t kOldest = 7;
constexpr int64_t kNewest = 1000;

using Unary = at::Tensor (*)(const at::Tensor&);
// A single-input kernel body: the node's context and its (possibly upcast) input.
using Body = at::Tensor (*)(OpContext& ctx, const at::Tensor& x);

// ATen 1.13 has no CPU kernels for most float16 math (nor for bfloat16 Mish), so reduced-precision
// inputs on the CPU are computed in float32 and rounded back once.
template <Body F>
std::vector<at::Tensor> activation(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  at::ScalarType type = x.scalar_type();
  if ((type != at::kHalf && type != at::kBFloat16) || !x.is_cpu()) return {F(ctx, x)};
  return {F(ctx, x.to(at::kFloat)).to(type)};
}

template <Unary F>
at::Tensor aten(OpContext&, const at::Tensor& x) {
  return F(x);
}

// ONNX allows integer inputs to Erf, which ATen computes in floating point; the output keeps the
// input's type.
at::Tensor erf(OpContext&, const at::Tensor& x) { return at::erf(x).to(x.scalar_type()); }

at::Tensor leaky_relu(OpContext& ctx, const at::Tensor& x) {
  return at::leaky_relu(x, ctx.attr_float("alpha", 0.01));
}

// True when `t` broadcasts to `shape` without growing it (ONNX "unidirectional" broadcasting).
bool broadcasts_to(const at::Tensor& t, at::IntArrayRef shape) {
  if (t.dim() > int64_t(shape.size())) return false;
  for (int64_t i = 1; i <= t.dim(); ++i) {
    int64_t d = t.size(-i);
    if (d != 1 && d != shape[shape.size() - size_t(i)]) return false;
  }
  return true;
}

at::Tensor prelu(OpContext& ctx, const at::Tensor& x) {
  const at::Tensor& slope = ctx.input(1);
  // at::prelu only takes one slope per channel; ONNX broadcasts slope like numpy.
  ctx.check(broadcasts_to(slope, x.sizes()), "slope of shape ", slope.sizes(),
            " does not broadcast to the input's shape ", x.sizes());
  return at::where(x < 0, x * slope, x);
}

// True when the kernel may write into its input: the executor allows it and `x` is the input
// itself (not an upcast copy).
bool reuses(OpContext& ctx, const at::Tensor& x) {
  return ctx.can_overwrite(0) && x.is_same(ctx.input(0));
}

// ReLU and HardSwish follow most convs: writing in place saves an allocation and a pass over
// memory per layer in inference.
at::Tensor relu(OpContext& ctx, const at::Tensor& x) {
  return reuses(ctx, x) ? ctx.input(0).relu_() : at::relu(x);
}
at::Tensor hardswish(OpContext& ctx, const at::Tensor& x) {
  if (!reuses(ctx, x)) return at::hardswish(x);
  at::Tensor out = ctx.input(0);
  return at::hardswish_(out);
}

// Opsets 7-10: bounds are float attributes.
at::Tensor clip_attrs(OpContext& ctx, const at::Tensor& x) {
  c10::optional<at::Scalar> lo, hi;
  if (ctx.has_attr("min")) lo = ctx.attr_float("min", 0);
  if (ctx.has_attr("max")) hi = ctx.attr_float("max", 0);
  if (!lo && !hi) return x;
  return reuses(ctx, x) ? ctx.input(0).clamp_(lo, hi) : at::clamp(x, lo, hi);
}

// Opset 11+: bounds are optional scalar inputs; on a GPU the tensor overload keeps them on the
// device (no host sync). Both overloads keep integer inputs integer.
at::Tensor clip(OpContext& ctx, const at::Tensor& x) {
  c10::optional<at::Tensor> bound[2];
  for (int64_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    const at::Tensor& b = ctx.input(i);
    ctx.check(b.numel() == 1, i == 1 ? "min" : "max", ": expected a scalar, found shape ",
              b.sizes());
    bound[i - 1] = b.reshape({});
  }
  if (!bound[0] && !bound[1]) return x;
  // Constant CPU bounds (the usual ReLU6) take the scalar kernel: the three-operand tensor
  // overload is several times slower on channels-last activations.
  auto constant_cpu = [](const c10::optional<at::Tensor>& b) {
    return !b || (b->is_cpu() && !b->requires_grad());
  };
  if (x.is_cpu() && constant_cpu(bound[0]) && constant_cpu(bound[1])) {
    c10::optional<at::Scalar> lo, hi;
    if (bound[0]) lo = bound[0]->item();
    if (bound[1]) hi = bound[1]->item();
    return reuses(ctx, x) ? ctx.input(0).clamp_(lo, hi) : at::clamp(x, lo, hi);
  }
  return at::clamp(x, bound[0], bound[1]);
}

at::Tensor hard_sigmoid(OpContext& ctx, const at::Tensor& x) {
  double alpha = ctx.attr_float("alpha", 0.2), beta = ctx.attr_float("beta", 0.5);
  return at::clamp(x * alpha + beta, 0, 1);
}

at::Tensor gelu(OpContext& ctx, const at::Tensor& x) {
  std::string mode = ctx.attr_string("approximate", "none");
  if (mode != "none" && mode != "tanh")
    ctx.fail("attribute 'approximate': expected none or tanh, found ", mode);
  return at::gelu(x, mode);
}

at::Tensor elu(OpContext& ctx, const at::Tensor& x) {
  return at::elu(x, ctx.attr_float("alpha", 1.0));
}

at::Tensor selu(OpContext& ctx, const at::Tensor& x) {
  // ONNX's defaults are the float32 roundings of the SELU constants.
  double alpha = ctx.attr_float("alpha", 1.67326319217681884765625);
  double gamma = ctx.attr_float("gamma", 1.05070102214813232421875);
  return at::elu(x, alpha, gamma);
}

// at::softplus switches to the identity above x = 20, where log(1 + e^x) - x < 3e-9.
at::Tensor softplus(OpContext&, const at::Tensor& x) { return at::softplus(x); }

at::Tensor softsign(OpContext&, const at::Tensor& x) { return x / (x.abs() + 1); }

at::Tensor thresholded_relu(OpContext& ctx, const at::Tensor& x) {
  return at::threshold(x, ctx.attr_float("alpha", 1.0), 0);
}

at::Tensor celu(OpContext& ctx, const at::Tensor& x) {
  return at::celu(x, ctx.attr_float("alpha", 1.0));
}

// Applies `fn(t, axis)` the way the opset defines the axis: before opset 13 the input is viewed
// as 2-D [prod(dims before axis), prod(dims from axis)] and normalised along the second
// dimension (axis defaults to 1); from opset 13 along the single axis (default -1).
template <typename Fn>
at::Tensor along_axis(OpContext& ctx, const at::Tensor& x, Fn fn) {
  bool coerce_2d = ctx.opset() < 13;
  int64_t rank = x.dim();
  int64_t axis = ctx.attr_int("axis", coerce_2d ? 1 : -1);
  ctx.check(-rank <= axis && axis < rank, "attribute 'axis': expected a value in [", -rank, ", ",
            rank - 1, "], found ", axis);
  if (axis < 0) axis += rank;
  if (!coerce_2d) return fn(x, axis);
  int64_t outer = c10::multiply_integers(x.sizes().slice(0, size_t(axis)));
  int64_t inner = c10::multiply_integers(x.sizes().slice(size_t(axis)));
  return fn(x.reshape({outer, inner}), 1).reshape(x.sizes());
}

at::Tensor softmax(OpContext& ctx, const at::Tensor& x) {
  return along_axis(ctx, x, [](const at::Tensor& t, int64_t axis) { return at::softmax(t, axis); });
}

at::Tensor log_softmax(OpContext& ctx, const at::Tensor& x) {
  return along_axis(ctx, x,
                    [](const at::Tensor& t, int64_t axis) { return at::log_softmax(t, axis); });
}

at::Tensor hardmax(OpContext& ctx, const at::Tensor& x) {
  return along_axis(ctx, x, [](const at::Tensor& t, int64_t axis) {
    // argmax picks the first of equal maxima, as ONNX requires.
    return at::zeros_like(t).scatter_(axis, t.argmax(axis, /*keepdim=*/true), 1);
  });
}

}  // namespace

void register_activation_ops(OpRegistry& r) {
  r.add("Relu", kOldest, kNewest, activation<relu>);
  r.add("LeakyRelu", kOldest, kNewest, activation<leaky_relu>);
  r.add("PRelu", kOldest, kNewest, activation<prelu>);
  r.add("Clip", kOldest, 10, activation<clip_attrs>);
  r.add("Clip", 11, kNewest, activation<clip>);
  r.add("Sigmoid", kOldest, kNewest, activation<aten<at::sigmoid>>);
  r.add("HardSigmoid", kOldest, kNewest, activation<hard_sigmoid>);
  r.add("HardSwish", 14, kNewest, activation<hardswish>);
  r.add("Tanh", kOldest, kNewest, activation<aten<at::tanh>>);
  r.add("Erf", 9, kNewest, activation<erf>);
  r.add("Gelu", 20, kNewest, activation<gelu>);
  r.add("Softmax", kOldest, kNewest, activation<softmax>);
  r.add("LogSoftmax", kOldest, kNewest, activation<log_softmax>);
  r.add("Hardmax", kOldest, kNewest, activation<hardmax>);
  r.add("Elu", kOldest, kNewest, activation<elu>);
  r.add("Selu", kOldest, kNewest, activation<selu>);
  r.add("Softplus", kOldest, kNewest, activation<softplus>);
  r.add("Softsign", kOldest, kNewest, activation<softsign>);
  r.add("ThresholdedRelu", 10, kNewest, activation<thresholded_relu>);
  r.add("Celu", 12, kNewest, activation<celu>);
  r.add("Mish", 18, kNewest, activation<aten<at::mish>>);
  r.add("Sign", 9, kNewest, activation<aten<at::sign>>);
  r.add("Floor", kOldest, kNewest, activation<aten<at::floor>>);
  r.add("Ceil", kOldest, kNewest, activation<aten<at::ceil>>);
  r.add("Round", 11, kNewest, activation<aten<at::round>>);
  r.add("Sin", kOldest, kNewest, activation<aten<at::sin>>);
  r.add("Cos", kOldest, kNewest, activation<aten<at::cos>>);
}

}  // namespace mpq
