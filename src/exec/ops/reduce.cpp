// Op family: reductions (ReduceSum, ReduceMean, ReduceMax, ... ReduceLogSumExp). One kernel
// template serves all ten ops: it resolves the axes (an attribute before opset 18, before 13 for
// ReduceSum, and an optional input after), then applies the op's ATen reduction, which carries
// gradients for floating inputs. ONNX's corner cases are handled here rather than left to ATen:
// reducing an empty set of values gives the op's identity (0 for sums, 1 for the product, -inf for
// the maximum, ...), and noop_with_empty_axes reduces over no axes at all, which leaves only the
// op's elementwise part (|x| for ReduceL1, x^2 for ReduceSumSquare, ...).
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"

namespace mpq {
namespace {

enum class Reduction { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

// The value of a reduction over no elements.
at::Scalar empty_value(Reduction kind, at::ScalarType type) {
  bool fp = at::isFloatingType(type);
  double inf = std::numeric_limits<double>::infinity();
  auto extreme = [&](bool high) {
    if (fp) return at::Scalar(high ? inf : -inf);
    at::Scalar v;
    AT_DISPATCH_INTEGRAL_TYPES_AND(at::kBool, type, "empty_value", [&] {
      v = high ? std::numeric_limits<scalar_t>::max() : std::numeric_limits<scalar_t>::lowest();
    });
    return v;
  };
  switch (kind) {
    case Reduction::kProd:
      return 1;
    case Reduction::kMax:
    case Reduction::kLogSum:
    case Reduction::kLogSumExp:
      return extreme(false);
    case Reduction::kMin:
      return extreme(true);
    case Reduction::kMean:
      return fp ? std::numeric_limits<double>::quiet_NaN() : 0.0;
    default:
      return 0;
  }
}

// The type a reduction computes in: integer sums, products and extremes stay exact in their own
// type; the other reductions of integers go through double and are truncated back, as ONNX's
// reference does. Half types are widened on the CPU, where ATen lacks some of their kernels.
at::ScalarType work_type(Reduction kind, const at::Tensor& x) {
  at::ScalarType t = x.scalar_type();
  if (t == at::kHalf || t == at::kBFloat16) return x.is_cpu() ? at::kFloat : t;
  if (at::isFloatingType(t)) return t;
  if (t == at::kBool) return at::kByte;
  bool exact = kind == Reduction::kSum || kind == Reduction::kProd || kind == Reduction::kMax ||
               kind == Reduction::kMin;
  return exact ? t : at::kDouble;
}

// Reduction over no axes: only the elementwise part of the op remains.
at::Tensor elementwise_part(Reduction kind, const at::Tensor& x) {
  switch (kind) {
    case Reduction::kL1:
    case Reduction::kL2:
      return at::abs(x);
    case Reduction::kSumSquare:
      return x * x;
    case Reduction::kLogSum:
      return at::log(x);
    default:
      return x;
  }
}

// `dims` is non-empty, normalized and free of duplicates.
at::Tensor reduce_dims(Reduction kind, const at::Tensor& x, at::IntArrayRef dims, bool keep) {
  switch (kind) {
    case Reduction::kSum:
      return at::sum(x, dims, keep, x.scalar_type());
    case Reduction::kMean:
      return at::mean(x, dims, keep);
    case Reduction::kMax:
      return at::amax(x, dims, keep);
    case Reduction::kMin:
      return at::amin(x, dims, keep);
    case Reduction::kProd: {
      // ATen's prod takes one axis; going from the last keeps the earlier indices valid.
      std::vector<int64_t> order(dims.begin(), dims.end());
      std::sort(order.rbegin(), order.rend());
      at::Tensor y = x;
      for (int64_t d : order) y = at::prod(y, d, keep, x.scalar_type());
      return y;
    }
    case Reduction::kL1:
      return at::sum(at::abs(x), dims, keep);
    case Reduction::kL2:
      // Unlike sqrt(sum(x^2)), the norm's gradient is 0 rather than NaN at an all-zero slice.
      return at::linalg_vector_norm(x, 2, dims, keep);
    case Reduction::kSumSquare:
      return at::sum(x * x, dims, keep);
    case Reduction::kLogSum:
      return at::log(at::sum(x, dims, keep));
    case Reduction::kLogSumExp:
      return at::logsumexp(x, dims, keep);
  }
  return x;
}

template <Reduction kKind, int64_t kAxesInputSince>
std::vector<at::Tensor> reduce(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  bool keep = ctx.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> axes;
  bool noop = false;
  if (ctx.opset() < kAxesInputSince) {
    axes = ctx.attr_ints("axes");
  } else {
    if (ctx.has_input(1)) axes = ctx.input_ints(1);
    noop = ctx.attr_int("noop_with_empty_axes", 0) != 0;
  }
  int64_t rank = x.dim();
  std::vector<bool> reduced(size_t(rank), axes.empty() && !noop);
  for (int64_t a : normalize_axes(ctx, "axes", axes, rank)) reduced[size_t(a)] = true;
  std::vector<int64_t> dims, out_shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (reduced[size_t(d)]) dims.push_back(d);
    if (!reduced[size_t(d)] || keep) out_shape.push_back(reduced[size_t(d)] ? 1 : x.size(d));
  }
  at::ScalarType type = x.scalar_type();
  if (x.numel() == 0 && !dims.empty())
    return {at::full(out_shape, empty_value(kKind, type), x.options())};
  at::Tensor xw = x.to(work_type(kKind, x));
  // No axes to reduce (noop_with_empty_axes, or the "all axes" of a scalar): only the elementwise
  // part remains, which for a scalar is also the reduction of its one element.
  if (dims.empty()) return {elementwise_part(kKind, xw).to(type)};
  return {reduce_dims(kKind, xw, dims, keep).to(type)};
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  r.add("ReduceSum", 1, 1000, reduce<Reduction::kSum, 13>);
  r.add("ReduceMean", 1, 1000, reduce<Reduction::kMean, 18>);
  r.add("ReduceMax", 1, 1000, reduce<Reduction::kMax, 18>);
  r.add("ReduceMin", 1, 1000, reduce<Reduction::kMin, 18>);
  r.add("ReduceProd", 1, 1000, reduce<Reduction::kProd, 18>);
  r.add("ReduceL1", 1, 1000, reduce<Reduction::kL1, 18>);
  r.add("ReduceL2", 1, 1000, reduce<Reduction::kL2, 18>);
  r.add("ReduceSumSquare", 1, 1000, reduce<Reduction::kSumSquare, 18>);
  r.add("ReduceLogSum", 1, 1000, reduce<Reduction::kLogSum, 18>);
  r.add("ReduceLogSumExp", 1, 1000, reduce<Reduction::kLogSumExp, 18>);
}

}  // namespace mpq
