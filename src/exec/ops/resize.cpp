// Op family: resizing (Resize opset 10-19+, Upsample opset 7-9). ONNX resizes each axis on its own,
// so the general path works one axis at a time: for every output position it tabulates the source
// taps (1 for nearest, 2 for linear, 4 for cubic) and their weights from the coordinate transform,
// then gathers with index_select and sums the weighted taps, which autograd differentiates. The
// cases ATen's upsample kernels compute exactly the ONNX way (nearest x1/x2 asymmetric-floor,
// linear half_pixel / align_corners over the spatial axes) go to those kernels instead.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "exec/op_registry.h"

namespace mpq {
namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNearest,
  kTfCropAndResize
};
// kSimple is Upsample's and Resize-10's rule: floor when enlarging an axis, ceil when shrinking.
enum class Rounding { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };

// Everything that decides the result, resolved to one entry per axis of X.
struct Plan {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kAsymmetric;
  Rounding rounding = Rounding::kSimple;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  std::vector<double> scales;
  std::vector<int64_t> out;
  std::vector<double> roi_start, roi_end;
};

Mode parse_mode(OpContext& ctx, bool allow_cubic) {
  std::string mode = ctx.attr_string("mode", "nearest");
  if (mode == "nearest") return Mode::kNearest;
  if (mode == "linear") return Mode::kLinear;
  if (mode == "cubic" && allow_cubic) return Mode::kCubic;
  ctx.fail("attribute 'mode': expected nearest, linear", allow_cubic ? " or cubic" : "", ", found ",
           mode);
}

Coord parse_coord(OpContext& ctx) {
  std::string c = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel") return Coord::kHalfPixel;
  if (c == "half_pixel_symmetric") return Coord::kHalfPixelSymmetric;
  if (c == "pytorch_half_pixel") return Coord::kPytorchHalfPixel;
  if (c == "align_corners") return Coord::kAlignCorners;
  if (c == "asymmetric") return Coord::kAsymmetric;
  // ONNX 1.12's own node test (and ONNX Runtime) spell it tf_half_pixel_for_nn.
  if (c == "tf_half_pixel_for_nearest" || c == "tf_half_pixel_for_nn")
    return Coord::kTfHalfPixelForNearest;
  if (c == "tf_crop_and_resize") return Coord::kTfCropAndResize;
  ctx.fail("attribute 'coordinate_transformation_mode': expected half_pixel, ",
           "half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, ",
           "tf_half_pixel_for_nearest or tf_crop_and_resize, found ", c);
}

Rounding parse_rounding(OpContext& ctx) {
  std::string n = ctx.attr_string("nearest_mode", "round_prefer_floor");
  if (n == "round_prefer_floor") return Rounding::kRoundPreferFloor;
  if (n == "round_prefer_ceil") return Rounding::kRoundPreferCeil;
  if (n == "floor") return Rounding::kFloor;
  if (n == "ceil") return Rounding::kCeil;
  ctx.fail("attribute 'nearest_mode': expected round_prefer_floor, round_prefer_ceil, floor or ",
           "ceil, found ", n);
}

// Where output position x of an axis samples the input, in input coordinates. Computed in float32
// as ONNX Runtime does (and numpy does on ONNX's float32 scales): where x / scale is an integer in
// exact arithmetic, float64 can land just below it and pick the previous pixel.
float source_coordinate(const Plan& p, size_t axis, int64_t in_size, int64_t index) {
  float scale = float(p.scales[axis]), x = float(index), in = float(in_size);
  // ONNX uses the unrounded resized length (scale * input length) in these formulas.
  float length = scale * in;
  switch (p.coord) {
    case Coord::kHalfPixel:
      return (x + 0.5f) / scale - 0.5f;
    case Coord::kHalfPixelSymmetric: {
      float offset = in / 2 * (1 - float(p.out[axis]) / length);
      return offset + (x + 0.5f) / scale - 0.5f;
    }
    case Coord::kPytorchHalfPixel:
      return length > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
    case Coord::kAlignCorners:
      return length == 1 ? 0.0f : x * (in - 1) / (length - 1);
    case Coord::kAsymmetric:
      return x / scale;
    case Coord::kTfHalfPixelForNearest:
      return (x + 0.5f) / scale;
    case Coord::kTfCropAndResize: {
      float start = float(p.roi_start[axis]), end = float(p.roi_end[axis]);
      return length > 1 ? start * (in - 1) + x * (end - start) * (in - 1) / (length - 1)
                        : 0.5f * (start + end) * (in - 1);
    }
  }
  return 0.0f;
}

int64_t nearest_index(Rounding r, float x, double scale) {
  switch (r) {
    case Rounding::kRoundPreferFloor:
      return int64_t(std::ceil(x - 0.5f));
    case Rounding::kRoundPreferCeil:
      return int64_t(std::floor(x + 0.5f));
    case Rounding::kFloor:
      return int64_t(std::floor(x));
    case Rounding::kCeil:
      return int64_t(std::ceil(x));
    case Rounding::kSimple:
      return int64_t(scale < 1 ? std::ceil(x) : std::floor(x));
  }
  return 0;
}

// Keys' cubic convolution weights for the taps at floor(x)-1 .. floor(x)+2, t = x - floor(x).
void cubic_weights(double t, double a, double* w) {
  auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };
  auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

// One axis's resampling table: `taps` source indices (clamped to the input) and weights per
// output position, and which positions fall outside the crop (tf_crop_and_resize).
struct AxisTable {
  int64_t taps = 1;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<uint8_t> outside;
  bool any_outside = false;
  bool identity = true;
};

AxisTable axis_table(const Plan& p, size_t axis, int64_t in) {
  AxisTable t;
  t.taps = p.mode == Mode::kNearest ? 1 : p.mode == Mode::kLinear ? 2 : 4;
  int64_t out = p.out[axis];
  t.identity = out == in;
  for (int64_t i = 0; i < out; ++i) {
    float x = source_coordinate(p, axis, in, i);
    bool outside = p.coord == Coord::kTfCropAndResize && (x < 0 || x > float(in - 1));
    t.outside.push_back(outside);
    t.any_outside = t.any_outside || outside;
    double w[4] = {1, 0, 0, 0};
    int64_t first;
    if (p.mode == Mode::kNearest) {
      first = nearest_index(p.rounding, x, p.scales[axis]);
    } else {
      double base = std::floor(x), f = x - base;
      if (p.mode == Mode::kLinear) {
        first = int64_t(base);
        w[0] = 1 - f;
        w[1] = f;
      } else {
        first = int64_t(base) - 1;
        cubic_weights(f, p.cubic_a, w);
      }
    }
    double total = 0;
    for (int64_t k = 0; k < t.taps; ++k) {
      int64_t raw = first + k;
      if (p.exclude_outside && (raw < 0 || raw >= in)) w[k] = 0;
      total += w[k];
    }
    double on_self = 0;  // weight landing on input position i
    for (int64_t k = 0; k < t.taps; ++k) {
      int64_t index = std::min(std::max<int64_t>(first + k, 0), in - 1);
      double weight = p.exclude_outside && total != 0 ? w[k] / total : w[k];
      t.index.push_back(index);
      t.weight.push_back(weight);
      if (index == i)
        on_self += weight;
      else if (weight != 0)
        t.identity = false;
    }
    t.identity = t.identity && on_self == 1.0;
  }
  t.identity = t.identity && !t.any_outside;
  return t;
}

// Whether an axis keeps its size at scale 1 outside a crop. The formulas would still move
// tf_half_pixel_for_nearest's samples there by half a pixel (shifting channels, say); ONNX
// Runtime leaves such axes alone, and so does mpq.
bool untouched(const Plan& p, size_t axis, int64_t in) {
  return p.out[axis] == in && p.scales[axis] == 1.0 &&
         (p.coord != Coord::kTfCropAndResize || (p.roi_start[axis] == 0 && p.roi_end[axis] == 1));
}

// A shape of rank `rank` that is 1 everywhere except `size` at `axis`.
std::vector<int64_t> along(int64_t rank, int64_t axis, int64_t size) {
  std::vector<int64_t> shape(size_t(rank), 1);
  shape[size_t(axis)] = size;
  return shape;
}

at::Tensor apply_table(const at::Tensor& y, int64_t axis, const AxisTable& t) {
  int64_t out = int64_t(t.outside.size());
  at::Tensor index = at::tensor(t.index, at::TensorOptions().dtype(at::kLong)).to(y.device());
  at::Tensor gathered = y.index_select(axis, index);
  if (t.taps == 1) return gathered;
  std::vector<int64_t> split = y.sizes().vec();
  split[size_t(axis)] = out;
  split.insert(split.begin() + axis + 1, t.taps);
  std::vector<int64_t> weight_shape(split.size(), 1);
  weight_shape[size_t(axis)] = out;
  weight_shape[size_t(axis) + 1] = t.taps;
  at::Tensor weight = at::tensor(t.weight, at::TensorOptions().dtype(at::kDouble))
                          .to(y.device(), y.scalar_type())
                          .reshape(weight_shape);
  return (gathered.reshape(split) * weight).sum(axis + 1);
}

// ATen's upsample kernels, where they compute exactly what ONNX asks for (spatial axes only).
at::Tensor aten_upsample(const Plan& p, const at::Tensor& x) {
  int64_t rank = x.dim();
  // Integer inputs take the gather path: ATen's CPU nearest kernel only knows uint8 among them.
  if (rank < 3 || rank > 5 || !at::isFloatingType(x.scalar_type())) return at::Tensor();
  if (p.coord == Coord::kTfCropAndResize || p.coord == Coord::kTfHalfPixelForNearest ||
      p.coord == Coord::kHalfPixelSymmetric || p.mode == Mode::kCubic)
    return at::Tensor();
  for (int64_t a = 0; a < 2; ++a)
    if (p.out[size_t(a)] != x.size(a) || p.scales[size_t(a)] != 1.0) return at::Tensor();
  std::vector<int64_t> out(p.out.begin() + 2, p.out.end());
  // ATen divides by the scale it is given: ONNX's scale, given or derived from the sizes.
  std::vector<c10::optional<double>> scales(p.scales.begin() + 2, p.scales.end());
  if (p.mode == Mode::kNearest) {
    bool floor_rounding = p.rounding == Rounding::kFloor || p.rounding == Rounding::kSimple;
    if (p.coord != Coord::kAsymmetric || !floor_rounding) return at::Tensor();
    // Only exact x1 / x2 factors: ATen's float index arithmetic can differ from ONNX's otherwise.
    for (int64_t a = 2; a < rank; ++a) {
      double s = p.scales[size_t(a)];
      int64_t in = x.size(a), o = p.out[size_t(a)];
      if (!((s == 1.0 && o == in) || (s == 2.0 && o == 2 * in))) return at::Tensor();
    }
    if (rank == 3) return at::upsample_nearest1d(x, out, scales[0]);
    if (rank == 4) return at::upsample_nearest2d(x, out, scales[0], scales[1]);
    return at::upsample_nearest3d(x, out, scales[0], scales[1], scales[2]);
  }
  bool align_corners = p.coord == Coord::kAlignCorners;
  for (int64_t a = 2; a < rank; ++a) {
    double length = p.scales[size_t(a)] * double(x.size(a));
    int64_t o = p.out[size_t(a)];
    if (p.coord == Coord::kAlignCorners && length != double(o)) return at::Tensor();
    if (p.coord == Coord::kPytorchHalfPixel && !(length > 1 && o > 1)) return at::Tensor();
    if (p.coord == Coord::kAsymmetric) return at::Tensor();
  }
  if (rank == 3) return at::upsample_linear1d(x, out, align_corners, scales[0]);
  if (rank == 4) return at::upsample_bilinear2d(x, out, align_corners, scales[0], scales[1]);
  return at::upsample_trilinear3d(x, out, align_corners, scales[0], scales[1], scales[2]);
}

template <typename T>
at::Tensor clamp_to(const at::Tensor& y) {
  return y.clamp(double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max()));
}

// Like ONNX's reference (numpy astype): truncation, after keeping within the type's range (cubic
// weights can overshoot it).
at::Tensor truncate_to(const at::Tensor& y, at::ScalarType type) {
  switch (type) {
    case at::kByte:
      return clamp_to<uint8_t>(y).to(type);
    case at::kChar:
      return clamp_to<int8_t>(y).to(type);
    case at::kShort:
      return clamp_to<int16_t>(y).to(type);
    case at::kInt:
      return clamp_to<int32_t>(y).to(type);
    case at::kBool:
      return y.clamp(0, 1).to(type);
    default:
      return y.to(type);
  }
}

at::Tensor run_plan(OpContext& ctx, const at::Tensor& x_in, const Plan& p) {
  for (size_t a = 0; a < p.out.size(); ++a)
    ctx.check(p.out[a] > 0 || x_in.size(int64_t(a)) == 0, "output axis ", a,
              ": expected a positive size, found ", p.out[a], " (scale ", p.scales[a], ")");
  at::ScalarType in_type = x_in.scalar_type();
  // Interpolating modes need floating point; libtorch 1.13's CPU kernels also lack float16.
  bool upcast = (p.mode != Mode::kNearest && !at::isFloatingType(in_type)) ||
                (x_in.is_cpu() && in_type == at::kHalf);
  at::Tensor x = upcast ? x_in.to(at::kFloat) : x_in;
  at::Tensor y = aten_upsample(p, x);
  if (!y.defined()) {
    y = x;
    at::Tensor outside;
    for (int64_t a = 0; a < x.dim(); ++a) {
      if (untouched(p, size_t(a), x.size(a))) continue;
      AxisTable t = axis_table(p, size_t(a), x.size(a));
      if (t.identity) continue;
      y = apply_table(y, a, t);
      if (!t.any_outside) continue;
      at::Tensor mask = at::tensor(t.outside, at::TensorOptions().dtype(at::kByte))
                            .to(y.device(), at::kBool)
                            .reshape(along(x.dim(), a, p.out[size_t(a)]));
      outside = outside.defined() ? outside.logical_or(mask) : mask;
    }
    if (outside.defined())
      y = at::where(outside, at::scalar_tensor(p.extrapolation, y.options()), y);
  }
  return upcast && at::isIntegralType(in_type, true) ? truncate_to(y, in_type) : y.to(in_type);
}

std::vector<double> input_or_empty(OpContext& ctx, int64_t i) {
  if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return {};
  return ctx.input_doubles(i);
}

// Resize-10 and Upsample: asymmetric coordinates, nearest rounding as ONNX Runtime does it.
std::vector<at::Tensor> resize_with_scales(OpContext& ctx, const std::vector<double>& scales,
                                           bool allow_cubic) {
  const at::Tensor& x = ctx.input(0);
  Plan p;
  p.mode = parse_mode(ctx, allow_cubic);
  ctx.check(int64_t(scales.size()) == x.dim(), "scales: expected ", x.dim(),
            " values (one per axis of X), found ", scales.size());
  p.scales = scales;
  for (int64_t a = 0; a < x.dim(); ++a) {
    ctx.check(scales[size_t(a)] > 0, "scales: expected positive values, found ", scales[size_t(a)]);
    p.out.push_back(int64_t(std::floor(double(x.size(a)) * scales[size_t(a)])));
  }
  return {run_plan(ctx, x, p)};
}

std::vector<at::Tensor> upsample(OpContext& ctx) {
  std::vector<double> scales = ctx.opset() >= 9 ? ctx.input_doubles(1) : ctx.attr_floats("scales");
  return resize_with_scales(ctx, scales, false);
}

std::vector<at::Tensor> resize_10(OpContext& ctx) {
  return resize_with_scales(ctx, ctx.input_doubles(1), false);
}

std::vector<at::Tensor> resize(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  int64_t rank = x.dim();
  Plan p;
  p.mode = parse_mode(ctx, true);
  p.coord = parse_coord(ctx);
  p.rounding = parse_rounding(ctx);
  p.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75);
  p.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0;
  p.extrapolation = ctx.attr_float("extrapolation_value", 0.0);
  std::vector<int64_t> axes = ctx.attr_ints("axes");
  if (axes.empty())
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  std::vector<bool> resized(size_t(rank), false);
  for (int64_t& a : axes) {
    ctx.check(a >= -rank && a < rank, "attribute 'axes': expected values in [", -rank, ", ",
              rank - 1, "], found ", a);
    if (a < 0) a += rank;
    ctx.check(!resized[size_t(a)], "attribute 'axes': axis ", a, " is listed twice");
    resized[size_t(a)] = true;
  }
  size_t n = axes.size();
  std::vector<double> roi = input_or_empty(ctx, 1);
  std::vector<double> scales = input_or_empty(ctx, 2);
  std::vector<double> sizes = input_or_empty(ctx, 3);
  ctx.check(scales.empty() != sizes.empty(),
            "inputs scales and sizes: expected exactly one of them to be given, found ",
            scales.empty() ? "neither" : "both");
  p.roi_start.assign(size_t(rank), 0.0);
  p.roi_end.assign(size_t(rank), 1.0);
  if (p.coord == Coord::kTfCropAndResize) {
    ctx.check(roi.size() == 2 * n, "input roi: expected ", 2 * n,
              " values (starts then ends) for tf_crop_and_resize, found ", roi.size());
    for (size_t i = 0; i < n; ++i) {
      p.roi_start[size_t(axes[i])] = roi[i];
      p.roi_end[size_t(axes[i])] = roi[n + i];
    }
  }
  p.scales.assign(size_t(rank), 1.0);
  p.out = x.sizes().vec();
  if (!scales.empty()) {
    ctx.check(scales.size() == n, "input scales: expected ", n, " values, found ", scales.size());
    for (size_t i = 0; i < n; ++i) {
      size_t a = size_t(axes[i]);
      ctx.check(scales[i] > 0, "input scales: expected positive values, found ", scales[i]);
      p.scales[a] = scales[i];
      // Like ONNX's reference and ONNX Runtime (not the spec's formula), the roi does not
      // change the output size.
      p.out[a] = int64_t(std::floor(double(x.size(int64_t(a))) * scales[i]));
    }
  } else {
    ctx.check(sizes.size() == n, "input sizes: expected ", n, " values, found ", sizes.size());
    std::string policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
    for (size_t i = 0; i < n; ++i) {
      size_t a = size_t(axes[i]);
      p.out[a] = int64_t(sizes[i]);
      p.scales[a] = sizes[i] / double(x.size(int64_t(a)));
    }
    if (policy == "not_larger" || policy == "not_smaller") {
      // One scale for all listed axes, the smallest or largest that the sizes ask for.
      double scale = p.scales[size_t(axes[0])];
      for (int64_t a : axes)
        scale = policy == "not_larger" ? std::min(scale, p.scales[size_t(a)])
                                       : std::max(scale, p.scales[size_t(a)]);
      for (int64_t a : axes) {
        p.scales[size_t(a)] = scale;
        p.out[size_t(a)] = int64_t(scale * double(x.size(a)) + 0.5);
      }
    } else if (policy != "stretch") {
      ctx.fail("attribute 'keep_aspect_ratio_policy': expected stretch, not_larger or ",
               "not_smaller, found ", policy);
    }
  }
  if (ctx.attr_int("antialias", 0) != 0 && p.mode != Mode::kNearest) {
    for (int64_t a : axes)
      ctx.check(p.scales[size_t(a)] >= 1.0,
                "attribute 'antialias': expected 0 when downsampling (mpq does not implement ",
                "antialiased resizing), found 1");
  }
  return {run_plan(ctx, x, p)};
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  r.add("Upsample", 7, 9, upsample);
  r.add("Resize", 10, 10, resize_10);
  r.add("Resize", 11, 1000, resize);
}

}  // namespace mpq
