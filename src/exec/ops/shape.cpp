// Op family: shape and data movement. These ops rearrange, select, convert or create tensors
// without arithmetic (Reshape, Transpose, Slice, Gather, Pad, Cast, ...). They run on every
// model's hot path, so each kernel maps onto one or two ATen view or indexing ops; the small
// integer operands (shapes, axes, pads, repeats) are read on the host with ctx.input_ints. The
// data path stays differentiable: views, cat, index_select, gather and constant_pad_nd all carry
// gradients to floating inputs. Shape and Size produce int64 tensors on the CPU, as ONNX Runtime
// does, because their consumers read them back on the host anyway; kernels that mix such a tensor
// with device data (Concat, Gather) move it to the data's device.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace {

using Tensors = std::vector<at::Tensor>;

std::vector<int64_t> all_axes(int64_t rank) {
  std::vector<int64_t> axes(static_cast<size_t>(rank));
  std::iota(axes.begin(), axes.end(), 0);
  return axes;
}

std::vector<int64_t> required_ints(const OpContext& ctx, const std::string& name) {
  ctx.check(ctx.has_attr(name), "attribute '", name, "' is required but missing");
  return ctx.attr_ints(name);
}

// An integer list that opsets before `since` carry as attribute `name` and later ones as the
// optional input `index`. Returns false when it is absent.
bool ints_operand(const OpContext& ctx, const std::string& name, int64_t index, int64_t since,
                  std::vector<int64_t>* out) {
  if (ctx.opset() < since) {
    if (!ctx.has_attr(name)) return false;
    *out = ctx.attr_ints(name);
    return true;
  }
  if (!ctx.has_input(index)) return false;
  *out = ctx.input_ints(index);
  return true;
}

// int64 indices into a dimension of size `dim`, negative ones counted from the end, on the data's
// device (indices computed from Shape live on the CPU). Out-of-range indices are checked here
// because ATen stops with a device-side assertion on accelerators.
at::Tensor normalized_indices(const OpContext& ctx, const at::Tensor& indices, int64_t dim,
                              const at::Tensor& data) {
  ctx.check(!at::isFloatingType(indices.scalar_type()) && indices.scalar_type() != at::kBool,
            "input 'indices': expected int32 or int64, found ", indices.scalar_type());
  at::Tensor i = indices.to(data.device(), at::kLong);
  if (i.numel() == 0) return i;
  int64_t lo = i.min().item<int64_t>(), hi = i.max().item<int64_t>();
  ctx.check(lo >= -dim && hi < dim, "input 'indices': expected values in [", -dim, ", ", dim - 1,
            "], found ", lo < -dim ? lo : hi);
  return lo < 0 ? at::where(i < 0, i + dim, i) : i;
}

Tensors identity(OpContext& ctx) { return {ctx.input(0)}; }

Tensors flatten(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t rank = x.dim(), axis = ctx.attr_int("axis", 1);
  ctx.check(axis >= -rank && axis <= rank, "attribute 'axis': expected a value in [", -rank, ", ",
            rank, "], found ", axis);
  if (axis < 0) axis += rank;
  return {x.reshape({c10::multiply_integers(x.sizes().slice(0, size_t(axis))),
                     c10::multiply_integers(x.sizes().slice(size_t(axis)))})};
}

Tensors reshape(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> shape = ctx.input_ints(1);
  bool allow_zero = ctx.opset() >= 14 && ctx.attr_int("allowzero", 0) != 0;
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allow_zero) {
      ctx.check(int64_t(i) < x.dim(), "input 'shape': 0 at position ", i,
                " copies an input dimension, but the input has rank ", x.dim());
      shape[i] = x.size(int64_t(i));
    }
    if (shape[i] == -1) {
      ctx.check(inferred < 0, "input 'shape': expected at most one -1, found ",
                at::IntArrayRef(shape));
      inferred = int64_t(i);
      continue;
    }
    ctx.check(shape[i] >= 0, "input 'shape': expected sizes >= -1, found ", shape[i]);
    known *= shape[i];
  }
  if (inferred >= 0) {
    ctx.check(known > 0 && x.numel() % known == 0, "input 'shape': cannot infer the -1 in ",
              at::IntArrayRef(shape), " for an input of shape ", x.sizes());
    shape[size_t(inferred)] = x.numel() / known;
  } else {
    ctx.check(known == x.numel(), "input 'shape': expected ", x.numel(), " elements to match ",
              x.sizes(), ", found shape ", at::IntArrayRef(shape));
  }
  return {x.reshape(shape)};
}

Tensors transpose(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (perm.empty()) {
    perm = all_axes(x.dim());
    std::reverse(perm.begin(), perm.end());
  }
  ctx.check(int64_t(perm.size()) == x.dim(), "attribute 'perm': expected ", x.dim(),
            " axes, found ", perm.size());
  return {x.permute(normalize_axes(ctx, "perm", perm, x.dim()))};
}

Tensors concat(OpContext& ctx) {
  std::vector<at::Tensor> xs;
  for (int64_t i = 0; i < ctx.num_inputs(); ++i) xs.push_back(ctx.input(i));
  ctx.check(!xs.empty(), "expected at least one input");
  // Shape pieces computed on the CPU join data on the accelerator.
  at::Device device = xs[0].device();
  for (const auto& x : xs)
    if (!x.is_cpu()) device = x.device();
  int64_t axis = normalize_axis(ctx, "axis", ctx.attr_int("axis"), xs[0].dim());
  for (auto& x : xs) {
    bool fits = x.dim() == xs[0].dim();
    for (int64_t d = 0; fits && d < x.dim(); ++d) fits = d == axis || x.size(d) == xs[0].size(d);
    ctx.check(fits, "expected inputs whose shapes differ only along axis ", axis, ", found ",
              xs[0].sizes(), " and ", x.sizes());
    if (x.device() != device) x = x.to(device);
  }
  return {at::cat(xs, axis)};
}

Tensors split(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t axis = normalize_axis(ctx, "axis", ctx.attr_int("axis", 0), x.dim());
  int64_t dim = x.size(axis), parts = ctx.num_outputs();
  std::vector<int64_t> sizes;
  ints_operand(ctx, "split", 1, 13, &sizes);
  if (sizes.empty()) {
    if (ctx.opset() >= 18 && ctx.has_attr("num_outputs")) {
      ctx.check(ctx.attr_int("num_outputs") == parts, "attribute 'num_outputs': expected ", parts,
                " (the node's outputs), found ", ctx.attr_int("num_outputs"));
    }
    // Equal parts; from opset 18 on the last one may be smaller.
    int64_t chunk = (dim + parts - 1) / std::max<int64_t>(parts, 1);
    for (int64_t i = 0, left = dim; i < parts; ++i, left -= chunk)
      sizes.push_back(std::clamp<int64_t>(left, 0, chunk));
  }
  ctx.check(int64_t(sizes.size()) == parts, "'split': expected ", parts, " sizes, found ",
            sizes.size());
  int64_t total = 0;
  for (int64_t s : sizes) {
    ctx.check(s >= 0, "'split': expected sizes >= 0, found ", s);
    total += s;
  }
  ctx.check(total == dim, "'split': sizes ", at::IntArrayRef(sizes), " add up to ", total,
            ", expected the axis size ", dim);
  return at::split_with_sizes(x, sizes, axis);
}

// Slice of one axis with ONNX's clamping: start to [0, dim] (positive step) or [0, dim-1]
// (negative step); end to [0, dim] or [-1, dim-1]. ATen slices only forwards, so a negative step
// takes the same elements forwards and flips them.
at::Tensor slice_axis(const at::Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  int64_t dim = x.size(axis);
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, start, dim);
    return x.slice(axis, start, end, step);
  }
  if (dim == 0) return x;
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  if (start <= end) return x.slice(axis, 0, 0);
  int64_t count = (start - end - 1) / -step + 1;
  return x.slice(axis, start + (count - 1) * step, start + 1, -step).flip(axis);
}

Tensors slice(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = required_ints(ctx, "starts");
    ends = required_ints(ctx, "ends");
    axes = ctx.attr_ints("axes");
  } else {
    starts = ctx.input_ints(1);
    ends = ctx.input_ints(2);
    if (ctx.has_input(3)) axes = ctx.input_ints(3);
    if (ctx.has_input(4)) steps = ctx.input_ints(4);
  }
  if (axes.empty()) axes = all_axes(int64_t(starts.size()));
  if (steps.empty()) steps.assign(starts.size(), 1);
  ctx.check(
      ends.size() == starts.size() && axes.size() == starts.size() && steps.size() == starts.size(),
      "expected starts, ends, axes and steps of equal length, found ", starts.size(), ", ",
      ends.size(), ", ", axes.size(), " and ", steps.size());
  axes = normalize_axes(ctx, "axes", axes, x.dim());
  at::Tensor y = x;
  for (size_t i = 0; i < axes.size(); ++i) {
    ctx.check(steps[i] != 0, "'steps': expected non-zero steps, found 0 for axis ", axes[i]);
    y = slice_axis(y, axes[i], starts[i], ends[i], steps[i]);
  }
  return {y};
}

Tensors squeeze(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> axes;
  std::vector<bool> drop(size_t(x.dim()), false);
  // An empty axes list squeezes every size-1 axis, as an omitted one does (ONNX Runtime agrees).
  if (ints_operand(ctx, "axes", 1, 13, &axes) && !axes.empty()) {
    for (int64_t a : normalize_axes(ctx, "axes", axes, x.dim())) {
      ctx.check(x.size(a) == 1, "'axes': cannot squeeze axis ", a, " of size ", x.size(a),
                " (input shape ", x.sizes(), ")");
      drop[size_t(a)] = true;
    }
  } else {
    for (int64_t d = 0; d < x.dim(); ++d) drop[size_t(d)] = x.size(d) == 1;
  }
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!drop[size_t(d)]) shape.push_back(x.size(d));
  return {x.reshape(shape)};
}

Tensors unsqueeze(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> axes;
  ctx.check(ints_operand(ctx, "axes", 1, 13, &axes), "'axes' is required but missing");
  int64_t rank = x.dim() + int64_t(axes.size());
  std::vector<bool> insert(size_t(rank), false);
  for (int64_t a : normalize_axes(ctx, "axes", axes, rank)) insert[size_t(a)] = true;
  std::vector<int64_t> shape;
  for (int64_t d = 0, src = 0; d < rank; ++d)
    shape.push_back(insert[size_t(d)] ? 1 : x.size(src++));
  return {x.reshape(shape)};
}

Tensors gather(OpContext& ctx) {
  const at::Tensor& data = ctx.input(0);
  const at::Tensor& indices = ctx.input(1);
  int64_t axis = normalize_axis(ctx, "axis", ctx.attr_int("axis", 0), data.dim());
  at::Tensor i = normalized_indices(ctx, indices, data.size(axis), data);
  std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + axis);
  shape.insert(shape.end(), indices.sizes().begin(), indices.sizes().end());
  shape.insert(shape.end(), data.sizes().begin() + axis + 1, data.sizes().end());
  return {at::index_select(data, axis, i.reshape({-1})).reshape(shape)};
}

Tensors gather_elements(OpContext& ctx) {
  const at::Tensor& data = ctx.input(0);
  const at::Tensor& indices = ctx.input(1);
  ctx.check(indices.dim() == data.dim(), "input 'indices': expected rank ", data.dim(),
            ", found shape ", indices.sizes());
  int64_t axis = normalize_axis(ctx, "axis", ctx.attr_int("axis", 0), data.dim());
  for (int64_t d = 0; d < data.dim(); ++d)
    ctx.check(d == axis || indices.size(d) <= data.size(d), "input 'indices': shape ",
              indices.sizes(), " exceeds the data shape ", data.sizes(), " outside axis ", axis);
  return {at::gather(data, axis, normalized_indices(ctx, indices, data.size(axis), data))};
}

Tensors shape_of(OpContext& ctx) {
  at::IntArrayRef sizes = ctx.input(0).sizes();
  int64_t rank = int64_t(sizes.size()), start = 0, end = rank;
  if (ctx.opset() >= 15) {
    start = ctx.attr_int("start", 0);
    end = ctx.attr_int("end", rank);
  }
  start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
  end = std::clamp<int64_t>(end < 0 ? end + rank : end, start, rank);
  return {at::tensor(sizes.slice(size_t(start), size_t(end - start)), at::kLong)};
}

Tensors size_of(OpContext& ctx) { return {at::scalar_tensor(ctx.input(0).numel(), at::kLong)}; }

at::ScalarType onnx_element_type(const OpContext& ctx, const char* what, int64_t type) {
  ctx.check(type != kOnnxString, what,
            ": casting to string is not supported (mpq runs numeric tensors only)");
  return scalar_type_from_onnx(int32_t(type), ctx.where() + ": " + what);
}

// ATen's conversions truncate floats towards zero and map non-zero to true, as ONNX's Cast does.
Tensors cast(OpContext& ctx) {
  return {ctx.input(0).to(onnx_element_type(ctx, "attribute 'to'", ctx.attr_int("to")))};
}

Tensors cast_like(OpContext& ctx) { return {ctx.input(0).to(ctx.input(1).scalar_type())}; }

// The importer folds most Constant nodes into initializers; this covers the ones it leaves.
Tensors constant(OpContext& ctx) {
  if (ctx.has_attr("value")) return {ctx.attr_tensor("value")};
  if (ctx.has_attr("value_float"))
    return {at::scalar_tensor(ctx.attr_float("value_float", 0), at::kFloat)};
  if (ctx.has_attr("value_floats")) {
    std::vector<double> v = ctx.attr_floats("value_floats");
    return {at::tensor(std::vector<float>(v.begin(), v.end()))};
  }
  if (ctx.has_attr("value_int")) return {at::scalar_tensor(ctx.attr_int("value_int"), at::kLong)};
  if (ctx.has_attr("value_ints")) return {at::tensor(ctx.attr_ints("value_ints"), at::kLong)};
  for (const char* name : {"value_string", "value_strings", "sparse_value"})
    ctx.check(!ctx.has_attr(name), "attribute '", name,
              "' is not supported (mpq runs dense numeric tensors only)");
  ctx.fail("expected one of the attributes value, value_float(s) or value_int(s), found none");
}

Tensors constant_of_shape(OpContext& ctx) {
  std::vector<int64_t> shape = ctx.input_ints(0);
  for (int64_t d : shape)
    ctx.check(d >= 0, "input 'input': expected sizes >= 0, found ", at::IntArrayRef(shape));
  at::Tensor value = ctx.has_attr("value") ? ctx.attr_tensor("value") : at::zeros({1});
  ctx.check(value.numel() == 1, "attribute 'value': expected one element, found shape ",
            value.sizes());
  return {at::full(shape, value.reshape({}).item(), value.options())};
}

// Inference dropout is the identity; a training-mode Dropout node with a non-zero ratio would be
// random, which mpq's deterministic evaluation cannot reproduce. When mpq trains the model
// (ctx.training()), Dropout drops.
Tensors dropout(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  if (ctx.opset() >= 12 && ctx.has_input(2) && ctx.input_ints(2).at(0) != 0) {
    double ratio = ctx.has_input(1) ? ctx.input_doubles(1).at(0) : 0.5;
    ctx.check(ratio == 0, "input 'training_mode': random dropout is not supported (expected ",
              "training_mode 0 or ratio 0, found ratio ", ratio, ")");
  }
  if (ctx.training() && ctx.num_outputs() < 2) {
    // Training the model: drop with the node's ratio (attribute before opset 12, input after).
    double ratio = ctx.opset() >= 12 ? (ctx.has_input(1) ? ctx.input_doubles(1).at(0) : 0.5)
                                     : ctx.attr_float("ratio", 0.5);
    return {at::dropout(x, ratio, true)};
  }
  if (ctx.num_outputs() < 2) return {x};
  // The mask became bool at opset 10; before, it had the data's type.
  return {x, at::ones_like(x, ctx.opset() >= 10 ? at::kBool : x.scalar_type())};
}

// Source index for each output position of a padded axis in the non-constant modes.
at::Tensor pad_source(int64_t dim, int64_t before, int64_t after, const std::string& mode) {
  at::Tensor i = at::arange(-before, dim + after, at::kLong);
  if (mode == "edge") return i.clamp(0, dim - 1);
  if (mode == "wrap") return i.remainder(dim);
  if (dim == 1) return at::zeros_like(i);
  int64_t period = 2 * (dim - 1);  // reflect without repeating the edge, as numpy's pad
  i = i.remainder(period);
  return at::where(i >= dim, period - i, i);
}

Tensors pad(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t rank = x.dim();
  std::string mode = ctx.attr_string("mode", "constant");
  std::vector<int64_t> pads, axes = all_axes(rank);
  at::Scalar value = 0;
  if (ctx.opset() < 11) {
    pads = required_ints(ctx, "pads");
    value = ctx.attr_float("value", 0);
  } else {
    pads = ctx.input_ints(1);
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) value = ctx.input(2).reshape({-1})[0].item();
    if (ctx.opset() >= 18 && ctx.has_input(3))
      axes = normalize_axes(ctx, "axes", ctx.input_ints(3), rank);
  }
  ctx.check(pads.size() == 2 * axes.size(), "'pads': expected ", 2 * axes.size(),
            " values (begin and end for each of ", axes.size(), " axes), found ", pads.size());
  std::vector<int64_t> before(size_t(rank), 0), after(size_t(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i];
    before[size_t(a)] = pads[i];
    after[size_t(a)] = pads[i + axes.size()];
    ctx.check(x.size(a) + pads[i] + pads[i + axes.size()] >= 0, "'pads': axis ", a, " of size ",
              x.size(a), " cannot be cropped by ", -pads[i], " and ", -pads[i + axes.size()]);
  }
  if (mode == "constant") {
    std::vector<int64_t> aten_pads;  // last axis first, as ATen wants
    for (int64_t d = rank - 1; d >= 0; --d) {
      aten_pads.push_back(before[size_t(d)]);
      aten_pads.push_back(after[size_t(d)]);
    }
    return {at::constant_pad_nd(x, aten_pads, value)};
  }
  bool known_mode = mode == "reflect" || mode == "edge" || (mode == "wrap" && ctx.opset() >= 19);
  ctx.check(known_mode, "attribute 'mode': expected constant, reflect, edge",
            ctx.opset() >= 19 ? " or wrap" : "", ", found ", mode);
  at::Tensor y = x;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t b = before[size_t(d)], e = after[size_t(d)];
    if (b == 0 && e == 0) continue;
    // Negative pads crop first; the mode then pads from what is left.
    y = y.slice(d, std::max<int64_t>(-b, 0), y.size(d) - std::max<int64_t>(-e, 0));
    b = std::max<int64_t>(b, 0);
    e = std::max<int64_t>(e, 0);
    if (b == 0 && e == 0) continue;
    ctx.check(y.size(d) > 0, "attribute 'mode': ", mode, " padding needs a non-empty axis ", d);
    y = at::index_select(y, d, pad_source(y.size(d), b, e, mode).to(y.device()));
  }
  return {y};
}

// Bidirectional broadcast of the input's shape with the requested one.
Tensors expand(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> want = ctx.input_ints(1);
  int64_t rank = std::max<int64_t>(x.dim(), int64_t(want.size()));
  std::vector<int64_t> shape(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) {
    int64_t xi = d - (rank - x.dim()), wi = d - (rank - int64_t(want.size()));
    int64_t a = xi >= 0 ? x.size(xi) : 1, b = wi >= 0 ? want[size_t(wi)] : 1;
    ctx.check(b >= 0 && (a == b || a == 1 || b == 1), "input 'shape': ", at::IntArrayRef(want),
              " does not broadcast with the input shape ", x.sizes());
    shape[size_t(d)] = a == 1 ? b : a;
  }
  return {x.expand(shape)};
}

Tensors tile(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  std::vector<int64_t> repeats = ctx.input_ints(1);
  ctx.check(int64_t(repeats.size()) == x.dim(), "input 'repeats': expected ", x.dim(),
            " values, found ", repeats.size());
  for (int64_t r : repeats)
    ctx.check(r >= 0, "input 'repeats': expected values >= 0, found ", at::IntArrayRef(repeats));
  return {x.repeat(repeats)};
}

// Range's output length is max(ceil((limit - start) / delta), 0); integers stay exact.
Tensors range(OpContext& ctx) {
  const at::Tensor& start = ctx.input(0);
  auto opts = at::TensorOptions(at::kLong).device(start.device());
  if (at::isFloatingType(start.scalar_type())) {
    double s = ctx.input_doubles(0).at(0), limit = ctx.input_doubles(1).at(0);
    double delta = ctx.input_doubles(2).at(0);
    ctx.check(delta != 0, "input 'delta': expected a non-zero step, found 0");
    int64_t n = std::max<int64_t>(int64_t(std::ceil((limit - s) / delta)), 0);
    return {(at::arange(n, opts.dtype(at::kDouble)) * delta + s).to(start.scalar_type())};
  }
  int64_t s = ctx.input_ints(0).at(0), limit = ctx.input_ints(1).at(0);
  int64_t delta = ctx.input_ints(2).at(0);
  ctx.check(delta != 0, "input 'delta': expected a non-zero step, found 0");
  int64_t span = limit - s;
  int64_t n = std::max<int64_t>(span / delta + (span % delta != 0 && (span > 0) == (delta > 0)), 0);
  return {(at::arange(n, opts) * delta + s).to(start.scalar_type())};
}

// ATen's argmax/argmin return the first extreme; the last one is the first of the flipped axis.
template <bool kMax>
Tensors arg_extreme(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t axis = normalize_axis(ctx, "axis", ctx.attr_int("axis", 0), x.dim());
  bool keep = ctx.attr_int("keepdims", 1) != 0;
  bool last = ctx.opset() >= 12 && ctx.attr_int("select_last_index", 0) != 0;
  ctx.check(x.size(axis) > 0, "input 'data': axis ", axis, " is empty (shape ", x.sizes(), ")");
  at::Tensor src = last ? x.flip(axis) : x;
  at::Tensor i = kMax ? at::argmax(src, axis, keep) : at::argmin(src, axis, keep);
  return {last ? (x.size(axis) - 1) - i : i};
}

int64_t block_size(const OpContext& ctx, const at::Tensor& x) {
  ctx.check(x.dim() == 4, "input 'input': expected a 4-D tensor, found shape ", x.sizes());
  int64_t b = ctx.attr_int("blocksize");
  ctx.check(b > 0, "attribute 'blocksize': expected a positive value, found ", b);
  return b;
}

Tensors depth_to_space(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t b = block_size(ctx, x), n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  ctx.check(c % (b * b) == 0, "input 'input': channels ", c, " are not divisible by blocksize^2 ",
            b * b);
  std::string mode = ctx.opset() >= 11 ? ctx.attr_string("mode", "DCR") : "DCR";
  at::Tensor y;
  if (mode == "DCR") {
    y = x.reshape({n, b, b, c / (b * b), h, w}).permute({0, 3, 4, 1, 5, 2});
  } else {
    ctx.check(mode == "CRD", "attribute 'mode': expected DCR or CRD, found ", mode);
    y = x.reshape({n, c / (b * b), b, b, h, w}).permute({0, 1, 4, 2, 5, 3});
  }
  return {y.reshape({n, c / (b * b), h * b, w * b})};
}

Tensors space_to_depth(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t b = block_size(ctx, x), n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  ctx.check(h % b == 0 && w % b == 0, "input 'input': spatial size ", h, "x", w,
            " is not divisible by blocksize ", b);
  at::Tensor y = x.reshape({n, c, h / b, b, w / b, b}).permute({0, 3, 5, 1, 2, 4});
  return {y.reshape({n, c * b * b, h / b, w / b})};
}

Tensors non_zero(OpContext& ctx) { return {at::nonzero(ctx.input(0)).t()}; }

Tensors trilu(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  ctx.check(x.dim() >= 2, "input 'input': expected rank >= 2, found shape ", x.sizes());
  int64_t k = ctx.has_input(1) ? ctx.input_ints(1).at(0) : 0;
  return {ctx.attr_int("upper", 1) != 0 ? at::triu(x, k) : at::tril(x, k)};
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add("ArgMax", 1, 1000, arg_extreme<true>);
  r.add("ArgMin", 1, 1000, arg_extreme<false>);
  r.add("Cast", 6, 1000, cast);
  r.add("CastLike", 15, 1000, cast_like);
  r.add("Concat", 4, 1000, concat);
  r.add("Constant", 1, 1000, constant);
  r.add("ConstantOfShape", 9, 1000, constant_of_shape);
  r.add("DepthToSpace", 1, 1000, depth_to_space);
  r.add("Dropout", 7, 1000, dropout);
  r.add("Expand", 8, 1000, expand);
  r.add("Flatten", 1, 1000, flatten);
  r.add("Gather", 1, 1000, gather);
  r.add("GatherElements", 11, 1000, gather_elements);
  r.add("Identity", 1, 1000, identity);
  r.add("NonZero", 9, 1000, non_zero);
  r.add("Pad", 2, 1000, pad);
  r.add("Range", 11, 1000, range);
  r.add("Reshape", 5, 1000, reshape);
  r.add("Shape", 1, 1000, shape_of);
  r.add("Size", 1, 1000, size_of);
  r.add("Slice", 1, 1000, slice);
  r.add("SpaceToDepth", 1, 1000, space_to_depth);
  r.add("Split", 2, 1000, split);
  r.add("Squeeze", 1, 1000, squeeze);
  r.add("Tile", 6, 1000, tile);
  r.add("Transpose", 1, 1000, transpose);
  r.add("Trilu", 14, 1000, trilu);
  r.add("Unsqueeze", 1, 1000, unsqueeze);
}

}  // namespace mpq
