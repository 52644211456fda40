// Op family: convolutions (Conv, ConvTranspose) over 1-D, 2-D and 3-D spatial inputs, each one
// at::convolution call. ONNX pads each side separately and has SAME auto-padding, which ATen's
// symmetric `padding` cannot express: the symmetric part of the padding stays inside the ATen call
// (so its fast kernels run) and only the remainder is padded or cropped explicitly.
#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <vector>

#include "exec/op_registry.h"
#include "exec/ops/op_util.h"

namespace mpq {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Geometry shared by Conv and ConvTranspose; pads are per side and may come out negative for
// ConvTranspose (output_shape larger than the natural size), which means "extend".
struct Geometry {
  int64_t rank = 0;  // spatial dims
  std::vector<int64_t> kernel, strides, dilations, begin, end;
  std::string auto_pad;
  int64_t groups = 1;
};

Geometry read_geometry(OpContext& ctx, const at::Tensor& x, const at::Tensor& w) {
  ctx.check(at::isFloatingType(x.scalar_type()),
            "input X: expected a floating-point tensor, found ", x.scalar_type());
  ctx.check(x.dim() >= 3 && x.dim() <= 5, "input X: expected 3-D to 5-D (N, C, spatial...), found ",
            x.dim(), "-D");
  ctx.check(w.dim() == x.dim(), "input W: expected ", x.dim(), "-D like X, found ", w.dim(), "-D");
  Geometry g;
  g.rank = x.dim() - 2;
  g.kernel = w.sizes().slice(2).vec();
  std::vector<int64_t> kernel_shape = ctx.attr_ints("kernel_shape", g.kernel);
  ctx.check(kernel_shape == g.kernel, "attribute 'kernel_shape': expected ",
            at::IntArrayRef(g.kernel), " (the spatial shape of W), found ",
            at::IntArrayRef(kernel_shape));
  g.strides = spatial_ints(ctx, "strides", g.rank, 1);
  g.dilations = spatial_ints(ctx, "dilations", g.rank, 1);
  g.groups = ctx.attr_int("group", 1);
  ctx.check(g.groups >= 1, "attribute 'group': expected a positive value, found ", g.groups);
  g.auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  if (g.auto_pad != "NOTSET" && g.auto_pad != "VALID" && g.auto_pad != "SAME_UPPER" &&
      g.auto_pad != "SAME_LOWER")
    ctx.fail("attribute 'auto_pad': expected NOTSET, SAME_UPPER, SAME_LOWER or VALID, found ",
             g.auto_pad);
  g.begin.assign(size_t(g.rank), 0);
  g.end.assign(size_t(g.rank), 0);
  if (g.auto_pad == "NOTSET") {
    std::vector<int64_t> pads = ctx.attr_ints("pads", std::vector<int64_t>(size_t(2 * g.rank), 0));
    ctx.check(int64_t(pads.size()) == 2 * g.rank, "attribute 'pads': expected ", 2 * g.rank,
              " values, found ", pads.size());
    for (int64_t i = 0; i < g.rank; ++i) {
      g.begin[size_t(i)] = pads[size_t(i)];
      g.end[size_t(i)] = pads[size_t(i + g.rank)];
    }
  }
  return g;
}

// Splits a total padding the way SAME_UPPER (extra at the end) or anything else (extra at the
// start) does; floor division keeps negative totals (ConvTranspose) consistent with the spec.
void split_padding(int64_t total, bool upper, int64_t* begin, int64_t* end) {
  int64_t half = floor_div(total, 2);
  *begin = upper ? half : total - half;
  *end = total - *begin;
}

// libtorch 1.13 has no float16 CPU convolution: such inputs run in float32.

bool all_zero(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t e) { return e == 0; });
}

at::Tensor optional_bias(OpContext& ctx, int64_t channels, at::ScalarType type) {
  if (!ctx.has_input(2)) return at::Tensor();
  const at::Tensor& b = ctx.input(2);
  ctx.check(b.dim() == 1 && b.size(0) == channels, "input B: expected shape [", channels,
            "], found ", b.sizes());
  return b.to(type);
}

// 2-D feature maps on the CPU leave a Conv in channels-last (NHWC) memory, whatever came in:
// oneDNN's convolutions and ATen's pooling run several times faster on it at batch sizes above
// one, every elementwise op keeps it, and ATen cannot infer it from a 1-channel input. It is a
// physical layout only; values and shapes are unchanged.
at::Tensor to_channels_last(const at::Tensor& y) {
  if (y.dim() != 4 || !y.is_cpu() || y.is_contiguous(at::MemoryFormat::ChannelsLast) ||
      y.size(1) == 1)
    return y;
  return y.contiguous(at::MemoryFormat::ChannelsLast);
}

// A strided convolution whose kernel is 1 in every spatial dimension reads only every s-th input
// position: taking those positions first (a strided slice, after any symmetric padding) and
// convolving with stride 1 and no padding gives the same values and gradients. It keeps such
// layers away from oneDNN's strided 1x1 kernels, whose backward-weights pass copies the strided
// input into a workspace sized for whole channel blocks: with channels-last inputs of fewer
// channels (per group) than a block it writes past that workspace, which corrupts the heap or
// returns wrong weight gradients (oneDNN 2.6; blocks of 8 channels on AVX2 and 16 on AVX-512;
// issue 18 of this project, oneDNN issue 6035). The slice is the copy those kernels make
// themselves; wider layers keep the fused kernel, which needs less memory in training.
constexpr int64_t kWidestChannelBlock = 16;

bool subsample_pointwise(const Geometry& g, const at::Tensor& w, at::Tensor* x,
                         std::vector<int64_t>* sym) {
  bool pointwise = std::all_of(g.kernel.begin(), g.kernel.end(), [](int64_t k) { return k == 1; });
  bool strided = std::any_of(g.strides.begin(), g.strides.end(), [](int64_t s) { return s > 1; });
  if (!pointwise || !strided || !x->is_cpu() || w.size(1) >= kWidestChannelBlock) return false;
  if (!all_zero(*sym)) {
    std::vector<int64_t> pads = aten_pads(*sym, *sym);
    *x = at::constant_pad_nd(*x, pads, 0);
  }
  for (int64_t i = 0; i < g.rank; ++i)
    *x = x->slice(i + 2, 0, x->size(i + 2), g.strides[size_t(i)]);
  sym->assign(sym->size(), 0);
  return true;
}

std::vector<at::Tensor> conv(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  Geometry g = read_geometry(ctx, x_in, ctx.input(1));
  at::ScalarType type = compute_type(x_in);
  at::Tensor x = x_in.to(type), w = ctx.input(1).to(type);
  ctx.check(x.size(1) == w.size(1) * g.groups && w.size(0) % g.groups == 0, "input W: shape ",
            w.sizes(), " does not fit X with ", x.size(1), " channels and group ", g.groups);
  at::Tensor bias = optional_bias(ctx, w.size(0), type);
  if (g.auto_pad == "SAME_UPPER" || g.auto_pad == "SAME_LOWER") {
    for (int64_t i = 0; i < g.rank; ++i) {
      size_t u = size_t(i);
      int64_t in = x.size(i + 2), s = g.strides[u];
      int64_t out = (in + s - 1) / s;
      int64_t total = (out - 1) * s + (g.kernel[u] - 1) * g.dilations[u] + 1 - in;
      split_padding(std::max<int64_t>(0, total), g.auto_pad == "SAME_UPPER", &g.begin[u],
                    &g.end[u]);
    }
  }
  std::vector<int64_t> sym(size_t(g.rank)), extra_begin(sym), extra_end(sym);
  for (size_t i = 0; i < sym.size(); ++i) {
    sym[i] = std::max<int64_t>(0, std::min(g.begin[i], g.end[i]));
    extra_begin[i] = g.begin[i] - sym[i];
    extra_end[i] = g.end[i] - sym[i];
  }
  if (!all_zero(extra_begin) || !all_zero(extra_end))
    x = at::constant_pad_nd(x, aten_pads(extra_begin, extra_end), 0);
  for (int64_t i = 0; i < g.rank; ++i)
    ctx.check(x.size(i + 2) >=
                  (g.kernel[size_t(i)] - 1) * g.dilations[size_t(i)] + 1 - 2 * sym[size_t(i)],
              "input X: spatial shape ", x_in.sizes(), " is smaller than the dilated kernel ",
              at::IntArrayRef(g.kernel));
  std::vector<int64_t> strides = g.strides;
  if (subsample_pointwise(g, w, &x, &sym)) strides.assign(strides.size(), 1);
  at::Tensor y = at::convolution(x, w, bias, strides, sym, g.dilations, false,
                                 std::vector<int64_t>(size_t(g.rank), 0), g.groups);
  return {to_channels_last(y).to(x_in.scalar_type())};
}

std::vector<at::Tensor> conv_transpose(OpContext& ctx) {
  const at::Tensor& x_in = ctx.input(0);
  Geometry g = read_geometry(ctx, x_in, ctx.input(1));
  at::ScalarType type = compute_type(x_in);
  at::Tensor x = x_in.to(type), w = ctx.input(1).to(type);
  ctx.check(x.size(1) == w.size(0) && w.size(0) % g.groups == 0, "input W: shape ", w.sizes(),
            " does not fit X with ", x.size(1), " channels and group ", g.groups);
  int64_t channels = w.size(1) * g.groups;
  at::Tensor bias = optional_bias(ctx, channels, type);
  std::vector<int64_t> output_padding = spatial_ints(ctx, "output_padding", g.rank, 0);
  std::vector<int64_t> output_shape = ctx.attr_ints("output_shape");
  ctx.check(output_shape.empty() || int64_t(output_shape.size()) >= g.rank,
            "attribute 'output_shape': expected at least ", g.rank, " values, found ",
            output_shape.size());
  bool upper = g.auto_pad == "SAME_UPPER";
  for (int64_t i = 0; i < g.rank; ++i) {
    size_t u = size_t(i);
    int64_t in = x.size(i + 2);
    // The size before any padding is removed: every input position spreads a dilated kernel.
    int64_t full =
        g.strides[u] * (in - 1) + output_padding[u] + (g.kernel[u] - 1) * g.dilations[u] + 1;
    if (!output_shape.empty()) {
      int64_t want = output_shape[output_shape.size() - size_t(g.rank) + u];
      split_padding(full - want, upper, &g.begin[u], &g.end[u]);
    } else if (g.auto_pad == "SAME_UPPER" || g.auto_pad == "SAME_LOWER") {
      split_padding(full - in * g.strides[u], upper, &g.begin[u], &g.end[u]);
    }
  }
  // Crops relative to the natural ATen result (output_padding folded into the end crop).
  std::vector<int64_t> crop_end(size_t(g.rank));
  for (size_t i = 0; i < crop_end.size(); ++i) crop_end[i] = g.end[i] - output_padding[i];
  bool fits_aten = true;
  std::vector<int64_t> aten_output_padding(size_t(g.rank));
  for (size_t i = 0; i < crop_end.size(); ++i) {
    aten_output_padding[i] = g.begin[i] - crop_end[i];
    fits_aten = fits_aten && g.begin[i] >= 0 && aten_output_padding[i] >= 0 &&
                aten_output_padding[i] < std::max(g.strides[i], g.dilations[i]);
  }
  at::Tensor y;
  if (fits_aten) {
    y = at::convolution(x, w, bias, g.strides, g.begin, g.dilations, true, aten_output_padding,
                        g.groups);
  } else {
    // Crop the symmetric part inside ATen, then crop or zero-extend the rest; the bias goes on
    // last so that extended positions get it too.
    std::vector<int64_t> sym(size_t(g.rank)), rest_begin(sym), rest_end(sym);
    for (size_t i = 0; i < sym.size(); ++i) {
      sym[i] = std::max<int64_t>(0, std::min(g.begin[i], crop_end[i]));
      rest_begin[i] = sym[i] - g.begin[i];
      rest_end[i] = sym[i] - crop_end[i];
    }
    y = at::convolution(x, w, at::Tensor(), g.strides, sym, g.dilations, true,
                        std::vector<int64_t>(size_t(g.rank), 0), g.groups);
    y = at::constant_pad_nd(y, aten_pads(rest_begin, rest_end), 0);
    if (bias.defined()) {
      std::vector<int64_t> shape(size_t(y.dim()), 1);
      shape[1] = channels;
      y = y + bias.reshape(shape);
    }
  }
  for (int64_t i = 2; i < y.dim(); ++i)
    ctx.check(y.size(i) > 0, "output shape ", y.sizes(), " is empty (pads ",
              at::IntArrayRef(g.begin), " / ", at::IntArrayRef(g.end), ")");
  return {y.to(x_in.scalar_type())};
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  // Opset 11 only reworded auto_pad/pads; opset 1 models behave the same.
  r.add("Conv", 1, 1000, conv);
  r.add("ConvTranspose", 1, 1000, conv_transpose);
}

}  // namespace mpq
