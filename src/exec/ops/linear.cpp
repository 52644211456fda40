// Op family: matrix products (Gemm, MatMul, Einsum). Each maps onto one ATen call (addmm, matmul,
// einsum) so that BLAS does the work and autograd sees an ordinary product.
#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"

namespace mpq {
namespace {

void check_numeric(OpContext& ctx, const at::Tensor& t, const char* name) {
  ctx.check(t.scalar_type() != at::kBool && !at::isComplexType(t.scalar_type()), "input ", name,
            ": expected a numeric tensor, found ", t.scalar_type());
}

std::vector<at::Tensor> gemm(OpContext& ctx) {
  const at::Tensor& a_in = ctx.input(0);
  check_numeric(ctx, a_in, "A");
  at::ScalarType type = compute_type(a_in);
  at::Tensor a = a_in.to(type), b = ctx.input(1).to(type);
  ctx.check(a.dim() == 2 && b.dim() == 2, "inputs A and B: expected 2-D matrices, found ",
            a.sizes(), " and ", b.sizes());
  if (ctx.attr_int("transA", 0)) a = a.t();
  if (ctx.attr_int("transB", 0)) b = b.t();
  ctx.check(a.size(1) == b.size(0), "inputs A and B: inner dimensions differ (", a.sizes(), " x ",
            b.sizes(), " after transA/transB)");
  double alpha = ctx.attr_float("alpha", 1.0), beta = ctx.attr_float("beta", 1.0);
  at::Tensor y;
  if (!ctx.has_input(2) || beta == 0.0) {
    y = at::mm(a, b);
    if (alpha != 1.0) y = at::isFloatingType(type) ? y * alpha : (y * alpha).to(type);
  } else {
    at::Tensor c = ctx.input(2).to(type);
    ctx.check(c.dim() <= 2, "input C: expected at most 2-D, found ", c.sizes());
    if (at::isFloatingType(type) || (alpha == 1.0 && beta == 1.0)) {
      y = at::addmm(c, a, b, beta, alpha);
    } else {
      // Integer Gemm with fractional alpha/beta: ATen wants integral scalars, ONNX does not.
      y = (at::mm(a, b).to(at::kDouble) * alpha + c.to(at::kDouble) * beta).to(type);
    }
  }
  return {y.to(a_in.scalar_type())};
}

std::vector<at::Tensor> matmul(OpContext& ctx) {
  const at::Tensor& a = ctx.input(0);
  check_numeric(ctx, a, "A");
  at::ScalarType type = compute_type(a);
  at::Tensor b = ctx.input(1);
  ctx.check(a.dim() >= 1 && b.dim() >= 1, "inputs A and B: expected at least 1-D, found ",
            a.sizes(), " and ", b.sizes());
  return {at::matmul(a.to(type), b.to(type)).to(a.scalar_type())};
}

std::vector<at::Tensor> einsum(OpContext& ctx) {
  std::string equation = ctx.attr_string("equation", "");
  ctx.check(!equation.empty(), "attribute 'equation' is required but missing");
  // ONNX allows blanks around terms; ATen's parser does not.
  equation.erase(std::remove(equation.begin(), equation.end(), ' '), equation.end());
  std::vector<at::Tensor> operands;
  at::ScalarType out_type = at::kFloat;
  for (int64_t i = 0; i < ctx.num_inputs(); ++i) {
    const at::Tensor& t = ctx.input(i);
    check_numeric(ctx, t, "Inputs");
    out_type = t.scalar_type();
    operands.push_back(t.to(compute_type(t)));
  }
  ctx.check(!operands.empty(), "expected at least one input");
  return {at::einsum(equation, operands).to(out_type)};
}

}  // namespace

void register_linear_ops(OpRegistry& r) {
  // Gemm before 7 had a 'broadcast' attribute; 7..13 only widened types and made C optional.
  r.add("Gemm", 7, 1000, gemm);
  r.add("MatMul", 1, 1000, matmul);
  r.add("Einsum", 12, 1000, einsum);
}

}  // namespace mpq
