// Op family: elementwise arithmetic, comparison and logic, with ONNX's multidirectional
// broadcasting (numpy's rules, which ATen follows, for every opset from 7).
//
// Kernels are one ATen call each. ONNX requires both operands of a binary op to have one type, so
// ATen's type promotion leaves it unchanged; the exceptions are handled where they occur: integer
// Div truncates (the ONNX reference divides and casts back), and Pow's exponent may have another
// type than its base, whose type the output keeps.
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {

constexpr int64_t kOldest = 7;
constexpr int64_t kNewest = 1000;

using Unary = at::Tensor (*)(const at::Tensor&);
using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

template <Unary F>
std::vector<at::Tensor> unary(OpContext& ctx) {
  return {F(ctx.input(0))};
}

// ATen 1.13 has no CPU kernels for float16 Sqrt, Exp and Log; such inputs are computed in
// float32 and rounded back once.
template <Unary F>
std::vector<at::Tensor> float_math(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  if (x.scalar_type() != at::kHalf || !x.is_cpu()) return {F(x)};
  return {F(x.to(at::kFloat)).to(at::kHalf)};
}

template <Binary F>
std::vector<at::Tensor> binary(OpContext& ctx) {
  return {F(ctx.input(0), ctx.input(1))};
}

// Variadic ops (Min, Max, Sum) fold their inputs left to right, broadcasting as they go.
template <Binary F>
at::Tensor fold(OpContext& ctx) {
  at::Tensor acc = ctx.input(0);
  for (int64_t i = 1; i < ctx.num_inputs(); ++i) acc = F(acc, ctx.input(i));
  return acc;
}

template <Binary F>
std::vector<at::Tensor> variadic(OpContext& ctx) {
  return {fold<F>(ctx)};
}

at::Tensor add(const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }
at::Tensor sub(const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }

// Residual connections: the sum may go into an operand that nothing reads afterwards, when that
// operand already has the result's shape and type.
std::vector<at::Tensor> add_op(OpContext& ctx) {
  const at::Tensor &a = ctx.input(0), &b = ctx.input(1);
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor &dst = i == 0 ? a : b, &src = i == 0 ? b : a;
    if (ctx.can_overwrite(i) && dst.scalar_type() == src.scalar_type() && dst.dim() >= src.dim() &&
        at::infer_size(dst.sizes(), src.sizes()) == dst.sizes().vec()) {
      at::Tensor out = dst;
      return {out.add_(src)};
    }
  }
  return {at::add(a, b)};
}

std::vector<at::Tensor> mean(OpContext& ctx) { return {fold<add>(ctx) / double(ctx.num_inputs())}; }

bool is_integer(const at::Tensor& t) {
  return at::isIntegralType(t.scalar_type(), /*includeBool=*/false);
}

// ATen raises an untyped error on integer division by zero; say which node did it.
void check_divisor(OpContext& ctx, const at::Tensor& b) {
  ctx.check(!(b == 0).any().item<bool>(), "integer division by zero");
}

std::vector<at::Tensor> divide(OpContext& ctx) {
  const at::Tensor &a = ctx.input(0), &b = ctx.input(1);
  if (!is_integer(a)) return {at::div(a, b)};
  check_divisor(ctx, b);
  return {at::div(a, b, "trunc")};
}

std::vector<at::Tensor> power(OpContext& ctx) {
  const at::Tensor& base = ctx.input(0);
  return {at::pow(base, ctx.input(1)).to(base.scalar_type())};
}

// fmod=1 is C's fmod (sign of the dividend); fmod=0 is numpy's mod (sign of the divisor), which
// the spec allows only for integers but the reference computes for floats too.
std::vector<at::Tensor> modulo(OpContext& ctx) {
  const at::Tensor &a = ctx.input(0), &b = ctx.input(1);
  int64_t fmod = ctx.attr_int("fmod", 0);
  ctx.check(fmod == 0 || fmod == 1, "attribute 'fmod': expected 0 or 1, found ", fmod);
  if (is_integer(a)) check_divisor(ctx, b);
  return {fmod ? at::fmod(a, b) : at::remainder(a, b)};
}

std::vector<at::Tensor> select(OpContext& ctx) {
  const at::Tensor& cond = ctx.input(0);
  ctx.check(cond.scalar_type() == at::kBool, "condition: expected bool, found ",
            cond.scalar_type());
  return {at::where(cond, ctx.input(1), ctx.input(2))};
}

std::vector<at::Tensor> is_inf(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  bool neg = ctx.attr_int("detect_negative", 1) != 0;
  bool pos = ctx.attr_int("detect_positive", 1) != 0;
  if (neg && pos) return {at::isinf(x)};
  if (neg) return {at::isneginf(x)};
  if (pos) return {at::isposinf(x)};
  return {at::zeros_like(x, x.options().dtype(at::kBool))};
}

std::vector<at::Tensor> bit_shift(OpContext& ctx) {
  std::string direction = ctx.attr_string("direction", "");
  const at::Tensor &a = ctx.input(0), &b = ctx.input(1);
  if (direction == "LEFT") return {at::bitwise_left_shift(a, b)};
  if (direction == "RIGHT") return {at::bitwise_right_shift(a, b)};
  ctx.fail("attribute 'direction': expected LEFT or RIGHT, found '", direction, "'");
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  r.add("Add", kOldest, kNewest, add_op);
  r.add("Sub", kOldest, kNewest, binary<sub>);
  r.add("Mul", kOldest, kNewest, binary<at::mul>);
  r.add("Div", kOldest, kNewest, divide);
  r.add("Pow", kOldest, kNewest, power);
  r.add("Sqrt", kOldest, kNewest, float_math<at::sqrt>);
  r.add("Exp", kOldest, kNewest, float_math<at::exp>);
  r.add("Log", kOldest, kNewest, float_math<at::log>);
  r.add("Neg", kOldest, kNewest, unary<at::neg>);
  r.add("Abs", kOldest, kNewest, unary<at::abs>);
  r.add("Reciprocal", kOldest, kNewest, unary<at::reciprocal>);
  // The variadic ops before opset 8 required equal shapes, a special case of broadcasting.
  r.add("Min", kOldest, kNewest, variadic<at::minimum>);
  r.add("Max", kOldest, kNewest, variadic<at::maximum>);
  r.add("Sum", kOldest, kNewest, variadic<add>);
  r.add("Mean", kOldest, kNewest, mean);
  r.add("Equal", kOldest, kNewest, binary<at::eq>);
  r.add("Less", kOldest, kNewest, binary<at::lt>);
  r.add("Greater", kOldest, kNewest, binary<at::gt>);
  r.add("LessOrEqual", 12, kNewest, binary<at::le>);
  r.add("GreaterOrEqual", 12, kNewest, binary<at::ge>);
  r.add("Not", kOldest, kNewest, unary<at::logical_not>);
  r.add("And", kOldest, kNewest, binary<at::logical_and>);
  r.add("Or", kOldest, kNewest, binary<at::logical_or>);
  r.add("Xor", kOldest, kNewest, binary<at::logical_xor>);
  r.add("Where", 9, kNewest, select);
  r.add("Mod", 10, kNewest, modulo);
  r.add("IsNaN", 9, kNewest, unary<at::isnan>);
  r.add("IsInf", 10, kNewest, is_inf);
  r.add("BitShift", 11, kNewest, bit_shift);
}

}  // namespace mpq
