// Op family: pooling (MaxPool with its Indices output, AveragePool, GlobalAveragePool,
// GlobalMaxPool). The output size follows ONNX (ceil_mode drops a last window that would start in
// the right padding, as PyTorch does and ONNX Runtime 1.20 does not); ATen's pooling kernels run
// directly whenever ONNX's pads fit them (symmetric, at most half the kernel). Other pads are made
// explicit: MaxPool pads with -inf, AveragePool sums windows with a convolution and divides by a
// window count computed the same way from a mask of the positions ONNX counts, which also gives it
// dilations.
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"

namespace mpq {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

struct PoolGeometry {
  int64_t rank = 0;
  std::vector<int64_t> in, kernel, strides, dilations, begin, end, out;
  bool ceil_mode = false;

  int64_t span(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  // The pad after the input that makes the last window end exactly at the padded end (negative:
  // crop), so an unpadded ATen call yields exactly `out` windows.
  int64_t exact_end(size_t i) const {
    return (out[i] - 1) * strides[i] + span(i) - in[i] - begin[i];
  }
};

PoolGeometry read_geometry(OpContext& ctx, const at::Tensor& x) {
  PoolGeometry g;
  g.kernel = ctx.attr_ints("kernel_shape");
  g.rank = int64_t(g.kernel.size());
  ctx.check(g.rank >= 1 && g.rank <= 3, "attribute 'kernel_shape': expected 1 to 3 values, found ",
            g.rank);
  ctx.check(x.dim() == g.rank + 2, "input X: expected ", g.rank + 2,
            "-D (N, C, spatial...) to match kernel_shape, found ", x.sizes());
  g.in = x.sizes().slice(2).vec();
  g.strides = spatial_ints(ctx, "strides", g.rank, 1);
  g.dilations = spatial_ints(ctx, "dilations", g.rank, 1);
  for (int64_t i = 0; i < g.rank; ++i)
    ctx.check(g.kernel[size_t(i)] >= 1 && g.strides[size_t(i)] >= 1 && g.dilations[size_t(i)] >= 1,
              "attributes kernel_shape, strides, dilations: expected positive values");
  g.ceil_mode = ctx.attr_int("ceil_mode", 0) != 0;
  std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  g.begin.assign(size_t(g.rank), 0);
  g.end.assign(size_t(g.rank), 0);
  g.out.assign(size_t(g.rank), 0);
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < size_t(g.rank); ++i) {
      g.out[i] = ceil_div(g.in[i], g.strides[i]);
      int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.strides[i] + g.span(i) - g.in[i]);
      g.begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.end[i] = total - g.begin[i];
    }
    return g;
  }
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = ctx.attr_ints("pads", std::vector<int64_t>(size_t(2 * g.rank), 0));
    ctx.check(int64_t(pads.size()) == 2 * g.rank, "attribute 'pads': expected ", 2 * g.rank,
              " values, found ", pads.size());
    for (size_t i = 0; i < size_t(g.rank); ++i) {
      g.begin[i] = pads[i];
      g.end[i] = pads[i + size_t(g.rank)];
      ctx.check(g.begin[i] >= 0 && g.end[i] >= 0,
                "attribute 'pads': expected non-negative values, found ", at::IntArrayRef(pads));
    }
  } else if (auto_pad != "VALID") {
    ctx.fail("attribute 'auto_pad': expected NOTSET, SAME_UPPER, SAME_LOWER or VALID, found ",
             auto_pad);
  }
  for (size_t i = 0; i < size_t(g.rank); ++i) {
    int64_t room = g.in[i] + g.begin[i] + g.end[i] - g.span(i);
    ctx.check(room >= 0, "input X: spatial shape ", x.sizes(), " with pads is smaller than the ",
              "window ", g.span(i), " on axis ", i + 2);
    if (g.ceil_mode) {
      g.out[i] = ceil_div(room, g.strides[i]) + 1;
      if ((g.out[i] - 1) * g.strides[i] >= g.in[i] + g.begin[i]) --g.out[i];
    } else {
      g.out[i] = floor_div(room, g.strides[i]) + 1;
    }
  }
  return g;
}

// Whether ATen's own padding reproduces ONNX's: symmetric, at most half the kernel, and the same
// window count.
bool fits_aten(const PoolGeometry& g) {
  for (size_t i = 0; i < size_t(g.rank); ++i) {
    int64_t p = g.begin[i];
    if (g.end[i] != p || p > g.kernel[i] / 2) return false;
    int64_t room = g.in[i] + 2 * p - g.span(i);
    int64_t out = (room + (g.ceil_mode ? g.strides[i] - 1 : 0)) / g.strides[i] + 1;
    if (g.ceil_mode && (out - 1) * g.strides[i] >= g.in[i] + p) --out;
    if (out != g.out[i]) return false;
  }
  return true;
}

// The pads that make an unpadded ATen call produce exactly the ONNX windows.
std::vector<int64_t> explicit_pads(const PoolGeometry& g) {
  std::vector<int64_t> end(size_t(g.rank));
  for (size_t i = 0; i < end.size(); ++i) end[i] = g.exact_end(i);
  return aten_pads(g.begin, end);
}

// ONNX Indices count over the whole N x C x spatial tensor (row-major, or column-major over the
// spatial axes for storage_order=1); ATen's count within one padded plane.
at::Tensor onnx_indices(const at::Tensor& plane_index, const PoolGeometry& g,
                        const std::vector<int64_t>& plane, const std::vector<int64_t>& offset,
                        bool column_major, int64_t channels) {
  std::vector<at::Tensor> coord(size_t(g.rank));
  at::Tensor rest = plane_index;
  for (size_t i = size_t(g.rank); i-- > 0;) {
    coord[i] = at::remainder(rest, plane[i]) - offset[i];
    rest = at::div(rest, plane[i], "floor");
  }
  at::Tensor flat = at::zeros_like(plane_index);
  int64_t stride = 1;
  for (size_t k = 0; k < size_t(g.rank); ++k) {
    size_t i = column_major ? k : size_t(g.rank) - 1 - k;
    flat = flat + coord[i] * stride;
    stride *= g.in[i];
  }
  int64_t batch = plane_index.size(0);
  at::Tensor base = at::arange(batch * channels, plane_index.options()) * stride;
  std::vector<int64_t> shape(size_t(plane_index.dim()), 1);
  shape[0] = batch;
  shape[1] = channels;
  return flat + base.reshape(shape);
}

std::vector<at::Tensor> max_pool(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  at::ScalarType in_type = x_in.scalar_type();
  ctx.check(at::isFloatingType(in_type) || in_type == at::kByte || in_type == at::kChar,
            "input X: expected a floating-point, int8 or uint8 tensor, found ", in_type);
  PoolGeometry g = read_geometry(ctx, x_in);
  int64_t storage_order = ctx.attr_int("storage_order", 0);
  ctx.check(storage_order == 0 || storage_order == 1,
            "attribute 'storage_order': expected 0 or 1, found ", storage_order);
  bool want_indices = ctx.num_outputs() > 1;
  // libtorch 1.13 CPU max pooling lacks float16 and 8-bit integers; float32 holds them exactly.
  bool upcast = at::isIntegralType(in_type, false) || (x_in.is_cpu() && in_type == at::kHalf);
  at::Tensor x = upcast ? x_in.to(at::kFloat) : x_in;
  bool fast = fits_aten(g);
  // Explicit pads already produce exactly the ONNX windows, so ATen's ceil_mode stays off then.
  bool ceil_mode = fast && g.ceil_mode;
  std::vector<int64_t> padding = fast ? g.begin : std::vector<int64_t>(size_t(g.rank), 0);
  // ATen's indices count within the (padded) plane it saw.
  std::vector<int64_t> plane = g.in, offset(size_t(g.rank), 0);
  if (!fast) {
    x = at::constant_pad_nd(x, explicit_pads(g), -std::numeric_limits<double>::infinity());
    plane = x.sizes().slice(2).vec();
    offset = g.begin;
  }
  at::Tensor y, index;
  at::IntArrayRef k(g.kernel), s(g.strides), d(g.dilations), p(padding);
  if (g.rank == 1) {
    if (want_indices)
      std::tie(y, index) = at::max_pool1d_with_indices(x, k, s, p, d, ceil_mode);
    else
      y = at::max_pool1d(x, k, s, p, d, ceil_mode);
  } else if (g.rank == 2) {
    if (want_indices)
      std::tie(y, index) = at::max_pool2d_with_indices(x, k, s, p, d, ceil_mode);
    else
      y = at::max_pool2d(x, k, s, p, d, ceil_mode);
  } else {
    if (want_indices)
      std::tie(y, index) = at::max_pool3d_with_indices(x, k, s, p, d, ceil_mode);
    else
      y = at::max_pool3d(x, k, s, p, d, ceil_mode);
  }
  std::vector<at::Tensor> out = {y.to(in_type)};
  if (want_indices)
    out.push_back(onnx_indices(index, g, plane, offset, storage_order == 1, x.size(1)));
  return out;
}

at::Tensor aten_avg_pool(const at::Tensor& x, const PoolGeometry& g, bool count_include_pad) {
  at::IntArrayRef k(g.kernel), s(g.strides), p(g.begin);
  if (g.rank == 1) return at::avg_pool1d(x, k, s, p, g.ceil_mode, count_include_pad);
  if (g.rank == 2) return at::avg_pool2d(x, k, s, p, g.ceil_mode, count_include_pad);
  return at::avg_pool3d(x, k, s, p, g.ceil_mode, count_include_pad);
}

// Window sums of a (B, 1, spatial...) tensor: a convolution with a dilated all-ones kernel.
at::Tensor window_sums(const at::Tensor& planes, const PoolGeometry& g) {
  std::vector<int64_t> shape = {1, 1};
  shape.insert(shape.end(), g.kernel.begin(), g.kernel.end());
  at::Tensor ones = at::ones(shape, planes.options());
  return at::convolution(planes, ones, at::Tensor(), g.strides,
                         std::vector<int64_t>(size_t(g.rank), 0), g.dilations, false,
                         std::vector<int64_t>(size_t(g.rank), 0), 1);
}

std::vector<at::Tensor> average_pool(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  ctx.check(at::isFloatingType(x_in.scalar_type()),
            "input X: expected a floating-point tensor, found ", x_in.scalar_type());
  PoolGeometry g = read_geometry(ctx, x_in);
  bool count_include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  bool upcast = x_in.is_cpu() && x_in.scalar_type() == at::kHalf;
  at::Tensor x = upcast ? x_in.to(at::kFloat) : x_in;
  bool dilated =
      std::any_of(g.dilations.begin(), g.dilations.end(), [](int64_t v) { return v != 1; });
  if (!dilated && fits_aten(g))
    return {aten_avg_pool(x, g, count_include_pad).to(x_in.scalar_type())};
  // ONNX counts input positions, plus the explicit pads when count_include_pad=1, but never the
  // ceil_mode overhang past the pads (ONNX's reference and PyTorch agree; ONNX Runtime 1.20
  // divides by the whole window there).
  at::Tensor mask = at::ones(g.in, x.options());
  mask = at::constant_pad_nd(mask, aten_pads(g.begin, g.end), count_include_pad ? 1 : 0);
  std::vector<int64_t> zero(size_t(g.rank), 0), overhang(size_t(g.rank));
  for (size_t i = 0; i < overhang.size(); ++i) overhang[i] = g.exact_end(i) - g.end[i];
  mask = at::constant_pad_nd(mask, aten_pads(zero, overhang), 0);
  at::Tensor padded = at::constant_pad_nd(x, explicit_pads(g), 0);
  std::vector<int64_t> plane_shape = {x.size(0) * x.size(1), 1};
  plane_shape.insert(plane_shape.end(), padded.sizes().begin() + 2, padded.sizes().end());
  std::vector<int64_t> mask_shape = {1, 1};
  mask_shape.insert(mask_shape.end(), mask.sizes().begin(), mask.sizes().end());
  at::Tensor sums = window_sums(padded.reshape(plane_shape), g);
  at::Tensor counts = window_sums(mask.reshape(mask_shape), g);
  std::vector<int64_t> out_shape = {x.size(0), x.size(1)};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  return {(sums / counts).reshape(out_shape).to(x_in.scalar_type())};
}

// Reduces every spatial axis, keeping them as size 1; a 2-D input has none and passes through.
std::vector<at::Tensor> global_pool(OpContext& ctx, bool max) {
  const at::Tensor& x = ctx.input(0);
  ctx.check(at::isFloatingType(x.scalar_type()),
            "input X: expected a floating-point tensor, found ", x.scalar_type());
  ctx.check(x.dim() >= 2, "input X: expected at least 2-D (N, C, ...), found ", x.sizes());
  if (x.dim() == 2) return {x};
  std::vector<int64_t> dims;
  for (int64_t i = 2; i < x.dim(); ++i) dims.push_back(i);
  return {max ? at::amax(x, dims, true) : at::mean(x, dims, true)};
}

std::vector<at::Tensor> global_average_pool(OpContext& ctx) { return global_pool(ctx, false); }
std::vector<at::Tensor> global_max_pool(OpContext& ctx) { return global_pool(ctx, true); }

}  // namespace

void register_pool_ops(OpRegistry& r) {
  // Later opsets only add attributes whose defaults keep the earlier behaviour (storage_order,
  // ceil_mode, dilations, count_include_pad), so one kernel serves every opset.
  r.add("MaxPool", 1, 1000, max_pool);
  r.add("AveragePool", 1, 1000, average_pool);
  r.add("GlobalAveragePool", 1, 1000, global_average_pool);
  r.add("GlobalMaxPool", 1, 1000, global_max_pool);
}

}  // namespace mpq
