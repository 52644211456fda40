// Tests for the conv, linear, norm, pool, resize and quant op families beyond ONNX's node tests:
// finite-difference gradient checks of every differentiable kernel, naive reference
// implementations of pooling and resizing that exercise both the ATen fast paths and the general
// paths (asymmetric pads, dilated average pooling, non-integer scales), quantisation rounding and
// saturation, and the errors raised for attribute values mpq rejects.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "exec/executor.h"
#include "exec/op_test_util.h"
#include "onnx/io.h"
#include "onnx/tensor_proto.h"
#include "pipeline/onnxruntime.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::check_gradient;
using test::float_attr;
using test::int_attr;
using test::ints_attr;
using test::single_node_graph;
using test::string_attr;

// Turns graph input `i` into an initializer holding `value` (constants such as shapes, scales,
// or statistics that the output does not depend on, so they stay out of the gradient check).
void make_constant(Graph& g, int i, const at::Tensor& value) {
  std::string name = "x" + std::to_string(i);
  for (size_t k = 0; k < g.inputs.size(); ++k)
    if (g.inputs[k].name == name) g.inputs.erase(g.inputs.begin() + int64_t(k));
  g.initializers[name] = value;
}

// Marks optional input `i` of the only node as omitted.
void omit_input(Graph& g, int i) {
  std::string name = "x" + std::to_string(i);
  for (size_t k = 0; k < g.inputs.size(); ++k)
    if (g.inputs[k].name == name) g.inputs.erase(g.inputs.begin() + int64_t(k));
  g.nodes[0].inputs[size_t(i)] = "";
}

at::Tensor randn(std::vector<int64_t> shape) {
  return at::randn(shape, at::TensorOptions().dtype(at::kDouble));
}

at::Tensor run1(const Graph& g, const std::vector<at::Tensor>& inputs) {
  return Executor(g).run(inputs)[0];
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double tol = 1e-9) {
  ASSERT_EQ(got.sizes(), want.sizes());
  double err = (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
  EXPECT_LT(err, tol) << "got " << got << "\nwant " << want;
}

void expect_error(const Graph& g, const std::vector<at::Tensor>& inputs, const std::string& text) {
  try {
    Executor(g).run(inputs);
    ADD_FAILURE() << "expected an error containing: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// ---- gradients ------------------------------------------------------------------------------

TEST(NnOpsGradient, ConvWithAsymmetricPadsAndGroups) {
  at::manual_seed(1);
  Graph g = single_node_graph("Conv", 3);
  g.nodes[0].attrs["pads"] = ints_attr({1, 0, 0, 2});
  g.nodes[0].attrs["strides"] = ints_attr({2, 1});
  g.nodes[0].attrs["group"] = int_attr(2);
  check_gradient(g, {randn({1, 4, 5, 4}), randn({2, 2, 3, 2}), randn({2})});
}

TEST(NnOpsGradient, Conv1dSameLowerDilated) {
  at::manual_seed(2);
  Graph g = single_node_graph("Conv", 2);
  g.nodes[0].attrs["auto_pad"] = string_attr("SAME_LOWER");
  g.nodes[0].attrs["dilations"] = ints_attr({2});
  check_gradient(g, {randn({2, 2, 7}), randn({3, 2, 2})});
}

TEST(NnOpsGradient, ConvTransposeWithOutputShape) {
  at::manual_seed(3);
  // output_shape larger than the natural size: the kernel zero-extends, then adds the bias.
  Graph g = single_node_graph("ConvTranspose", 3);
  g.nodes[0].attrs["strides"] = ints_attr({2, 2});
  g.nodes[0].attrs["output_shape"] = ints_attr({8, 7});
  check_gradient(g, {randn({1, 2, 3, 3}), randn({2, 3, 2, 2}), randn({3})});
}

TEST(NnOpsGradient, ConvTransposeWithPadsAndGroups) {
  at::manual_seed(4);
  Graph g = single_node_graph("ConvTranspose", 2);
  g.nodes[0].attrs["strides"] = ints_attr({2});
  g.nodes[0].attrs["pads"] = ints_attr({1, 0});
  g.nodes[0].attrs["group"] = int_attr(2);
  check_gradient(g, {randn({1, 4, 4}), randn({4, 1, 3})});
}

TEST(NnOpsGradient, GemmWithTransposesAndBroadcastBias) {
  at::manual_seed(5);
  Graph g = single_node_graph("Gemm", 3, 1, 13);
  g.nodes[0].attrs["transA"] = int_attr(1);
  g.nodes[0].attrs["transB"] = int_attr(1);
  g.nodes[0].attrs["alpha"] = float_attr(0.5);
  g.nodes[0].attrs["beta"] = float_attr(-2.0);
  check_gradient(g, {randn({3, 2}), randn({4, 3}), randn({4})});
}

TEST(NnOpsGradient, MatMulBroadcastAndVector) {
  at::manual_seed(6);
  Graph g = single_node_graph("MatMul", 2, 1, 13);
  check_gradient(g, {randn({2, 1, 3, 4}), randn({3, 4, 2})});
  check_gradient(g, {randn({4}), randn({2, 4, 3})});
}

TEST(NnOpsGradient, Einsum) {
  at::manual_seed(7);
  Graph g = single_node_graph("Einsum", 2, 1, 12);
  g.nodes[0].attrs["equation"] = string_attr("b i j , b j k -> b k i");
  check_gradient(g, {randn({2, 3, 4}), randn({2, 4, 2})});
}

TEST(NnOpsGradient, BatchNormInferenceIncludingStatistics) {
  at::manual_seed(8);
  Graph g = single_node_graph("BatchNormalization", 5, 1, 15);
  at::Tensor var = randn({3}).abs() + 0.5;
  check_gradient(g, {randn({2, 3, 2, 2}), randn({3}), randn({3}), randn({3}), var});
}

TEST(NnOpsGradient, BatchNormTrainingMode) {
  at::manual_seed(9);
  Graph g = single_node_graph("BatchNormalization", 5, 3, 15);
  g.nodes[0].attrs["training_mode"] = int_attr(1);
  make_constant(g, 3, randn({3}));
  make_constant(g, 4, randn({3}).abs() + 0.5);
  check_gradient(g, {randn({4, 3, 2}), randn({3}), randn({3})});
}

TEST(NnOpsGradient, LayerNormWithBroadcastScale) {
  at::manual_seed(10);
  Graph g = single_node_graph("LayerNormalization", 3, 1, 17);
  g.nodes[0].attrs["axis"] = int_attr(1);
  check_gradient(g, {randn({2, 3, 4}), randn({3, 4}), randn({4})});
  check_gradient(g, {randn({2, 3, 4}), randn({1, 4}), randn({3, 4})});
}

TEST(NnOpsGradient, MaxPoolGeneralPath) {
  at::manual_seed(11);
  Graph g = single_node_graph("MaxPool", 1, 1, 12);
  g.nodes[0].attrs["kernel_shape"] = ints_attr({3, 2});
  g.nodes[0].attrs["pads"] = ints_attr({2, 0, 0, 1});
  g.nodes[0].attrs["strides"] = ints_attr({2, 2});
  g.nodes[0].attrs["ceil_mode"] = int_attr(1);
  check_gradient(g, {randn({1, 2, 5, 5})});
}

TEST(NnOpsGradient, AveragePoolFastAndGeneralPaths) {
  at::manual_seed(12);
  Graph fast = single_node_graph("AveragePool", 1, 1, 19);
  fast.nodes[0].attrs["kernel_shape"] = ints_attr({3, 3});
  fast.nodes[0].attrs["pads"] = ints_attr({1, 1, 1, 1});
  fast.nodes[0].attrs["strides"] = ints_attr({2, 2});
  check_gradient(fast, {randn({1, 2, 5, 6})});
  Graph general = fast;
  general.nodes[0].attrs["dilations"] = ints_attr({2, 1});
  general.nodes[0].attrs["count_include_pad"] = int_attr(1);
  check_gradient(general, {randn({1, 2, 6, 6})});
}

TEST(NnOpsGradient, GlobalPools) {
  at::manual_seed(13);
  check_gradient(single_node_graph("GlobalAveragePool", 1), {randn({2, 3, 2, 2})});
  check_gradient(single_node_graph("GlobalMaxPool", 1), {randn({2, 3, 4})});
}

Graph resize_graph(const std::string& mode, const std::string& coord) {
  Graph g = single_node_graph("Resize", 4, 1, 13);
  g.nodes[0].attrs["mode"] = string_attr(mode);
  g.nodes[0].attrs["coordinate_transformation_mode"] = string_attr(coord);
  omit_input(g, 1);
  return g;
}

TEST(NnOpsGradient, ResizeLinearAndCubic) {
  at::manual_seed(14);
  at::Tensor sizes = at::tensor({1, 2, 5, 3}, at::kLong);
  for (const char* mode : {"linear", "cubic"}) {
    for (const char* coord : {"half_pixel", "align_corners", "asymmetric"}) {
      Graph g = resize_graph(mode, coord);
      omit_input(g, 2);
      check_gradient(g, {randn({1, 2, 3, 4}), sizes});
    }
  }
}

TEST(NnOpsGradient, DequantizeLinearReachesScale) {
  at::manual_seed(15);
  Graph g = single_node_graph("DequantizeLinear", 3, 1, 13);
  g.nodes[0].attrs["axis"] = int_attr(0);
  at::Tensor x = at::randint(-128, 127, {3, 4}, at::kChar);
  at::Tensor zp = at::tensor({1, -2, 0}, at::kChar);
  check_gradient(g, {x, randn({3}).abs(), zp});
}

// ---- pooling against a direct loop over ONNX windows ----------------------------------------

struct PoolCase {
  std::vector<int64_t> kernel, strides, dilations, pads;
  bool ceil_mode = false, count_include_pad = false;
};

int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t b, int64_t e, bool ceil) {
  int64_t room = in + b + e - ((k - 1) * d + 1);
  int64_t out = (ceil ? (room + s - 1) / s : room / s) + 1;
  if (ceil && (out - 1) * s >= in + b) --out;
  return out;
}

// Values and flat ONNX indices of a 2-D MaxPool / AveragePool, one window at a time.
std::pair<at::Tensor, at::Tensor> reference_pool(const at::Tensor& x, const PoolCase& c, bool max) {
  int64_t n = x.size(0), ch = x.size(1), h = x.size(2), w = x.size(3);
  int64_t oh =
      pool_out(h, c.kernel[0], c.strides[0], c.dilations[0], c.pads[0], c.pads[2], c.ceil_mode);
  int64_t ow =
      pool_out(w, c.kernel[1], c.strides[1], c.dilations[1], c.pads[1], c.pads[3], c.ceil_mode);
  at::Tensor y = at::zeros({n, ch, oh, ow}, at::kDouble);
  at::Tensor index = at::zeros({n, ch, oh, ow}, at::kLong);
  auto xa = x.accessor<double, 4>();
  auto ya = y.accessor<double, 4>();
  auto ia = index.accessor<int64_t, 4>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c2 = 0; c2 < ch; ++c2)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double best = -std::numeric_limits<double>::infinity(), sum = 0, count = 0;
          int64_t best_index = -1;
          for (int64_t ki = 0; ki < c.kernel[0]; ++ki)
            for (int64_t kj = 0; kj < c.kernel[1]; ++kj) {
              int64_t r = i * c.strides[0] - c.pads[0] + ki * c.dilations[0];
              int64_t q = j * c.strides[1] - c.pads[1] + kj * c.dilations[1];
              bool inside = r >= 0 && r < h && q >= 0 && q < w;
              bool in_pads =
                  r >= -c.pads[0] && r < h + c.pads[2] && q >= -c.pads[1] && q < w + c.pads[3];
              if (inside) {
                double v = xa[b][c2][r][q];
                sum += v;
                count += 1;
                if (v > best) {
                  best = v;
                  best_index = ((b * ch + c2) * h + r) * w + q;
                }
              } else if (in_pads && c.count_include_pad) {
                count += 1;
              }
            }
          ya[b][c2][i][j] = max ? best : sum / count;
          ia[b][c2][i][j] = best_index;
        }
  return {y, index};
}

Graph pool_graph(const std::string& op, const PoolCase& c, int outputs) {
  Graph g = single_node_graph(op, 1, outputs, 19);
  g.nodes[0].attrs["kernel_shape"] = ints_attr(c.kernel);
  g.nodes[0].attrs["strides"] = ints_attr(c.strides);
  g.nodes[0].attrs["dilations"] = ints_attr(c.dilations);
  g.nodes[0].attrs["pads"] = ints_attr(c.pads);
  g.nodes[0].attrs["ceil_mode"] = int_attr(c.ceil_mode);
  if (op == "AveragePool") g.nodes[0].attrs["count_include_pad"] = int_attr(c.count_include_pad);
  return g;
}

std::vector<PoolCase> pool_cases() {
  return {
      {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, false, false},  // ATen fast path
      {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, true, true},    // fast path with ceil overhang
      {{2, 3}, {2, 2}, {1, 1}, {1, 0, 0, 2}, true, false},   // asymmetric pads
      {{3, 3}, {3, 1}, {1, 1}, {2, 2, 2, 2}, false, true},   // pads larger than half the kernel
      {{2, 2}, {2, 3}, {2, 2}, {0, 1, 1, 0}, true, true},    // dilated, asymmetric, ceil
      {{4, 3}, {3, 2}, {1, 2}, {1, 1, 2, 0}, true, false},   // window dropped by the ceil rule
  };
}

TEST(NnOpsPool, MaxPoolMatchesReferenceWithIndices) {
  at::manual_seed(20);
  at::Tensor x = randn({2, 3, 7, 8});
  for (const PoolCase& c : pool_cases()) {
    auto [want, want_index] = reference_pool(x, c, true);
    std::vector<at::Tensor> got = Executor(pool_graph("MaxPool", c, 2)).run({x});
    expect_close(got[0], want);
    EXPECT_TRUE(got[1].equal(want_index)) << got[1] << "\n" << want_index;
  }
}

TEST(NnOpsPool, AveragePoolMatchesReference) {
  at::manual_seed(21);
  at::Tensor x = randn({2, 3, 7, 8});
  for (const PoolCase& c : pool_cases()) {
    expect_close(run1(pool_graph("AveragePool", c, 1), {x}), reference_pool(x, c, false).first);
    PoolCase other = c;
    other.count_include_pad = !c.count_include_pad;
    expect_close(run1(pool_graph("AveragePool", other, 1), {x}),
                 reference_pool(x, other, false).first);
  }
}

TEST(NnOpsPool, MaxPoolInt8AndColumnMajorIndices) {
  at::Tensor x = at::arange(-8, 8, at::kChar).reshape({1, 1, 4, 4});
  PoolCase c{{2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}};
  Graph g = pool_graph("MaxPool", c, 2);
  g.nodes[0].attrs["storage_order"] = int_attr(1);
  std::vector<at::Tensor> got = Executor(g).run({x});
  EXPECT_EQ(got[0].scalar_type(), at::kChar);
  EXPECT_TRUE(got[0].equal(at::tensor({-3, -1, 5, 7}, at::kChar).reshape({1, 1, 2, 2})));
  // Maxima sit at (h, w) = (1,1), (1,3), (3,1), (3,3): column-major index h + 4 w.
  EXPECT_TRUE(got[1].equal(at::tensor({5, 13, 7, 15}, at::kLong).reshape({1, 1, 2, 2})));
}

// ---- resizing against a direct per-pixel ONNX formula ---------------------------------------

double reference_coord(const std::string& coord, double x, double scale, int64_t in, int64_t out) {
  double length = scale * double(in);
  if (coord == "half_pixel") return (x + 0.5) / scale - 0.5;
  if (coord == "pytorch_half_pixel") return length > 1 ? (x + 0.5) / scale - 0.5 : 0;
  if (coord == "align_corners") return length == 1 ? 0 : x * double(in - 1) / (length - 1);
  if (coord == "tf_half_pixel_for_nearest") return (x + 0.5) / scale;
  (void)out;
  return x / scale;  // asymmetric
}

int64_t reference_nearest(const std::string& rounding, double x) {
  if (rounding == "round_prefer_floor") return int64_t(std::ceil(x - 0.5));
  if (rounding == "round_prefer_ceil") return int64_t(std::floor(x + 0.5));
  if (rounding == "floor") return int64_t(std::floor(x));
  return int64_t(std::ceil(x));
}

// 2-D spatial resize of an N x C x H x W tensor with the given scales.
at::Tensor reference_resize(const at::Tensor& x, const std::string& mode, const std::string& coord,
                            const std::string& rounding, double sh, double sw) {
  int64_t h = x.size(2), w = x.size(3);
  int64_t oh = int64_t(std::floor(h * sh)), ow = int64_t(std::floor(w * sw));
  at::Tensor y = at::zeros({x.size(0), x.size(1), oh, ow}, at::kDouble);
  auto clamp = [](int64_t v, int64_t n) { return std::min(std::max<int64_t>(v, 0), n - 1); };
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      double r = reference_coord(coord, double(i), sh, h, oh);
      double q = reference_coord(coord, double(j), sw, w, ow);
      at::Tensor v;
      if (mode == "nearest") {
        v = x.select(2, clamp(reference_nearest(rounding, r), h))
                .select(2, clamp(reference_nearest(rounding, q), w));
      } else {
        r = std::min(std::max(r, 0.0), double(h - 1));
        q = std::min(std::max(q, 0.0), double(w - 1));
        int64_t r0 = int64_t(std::floor(r)), q0 = int64_t(std::floor(q));
        int64_t r1 = clamp(r0 + 1, h), q1 = clamp(q0 + 1, w);
        double tr = r - double(r0), tq = q - double(q0);
        auto at2 = [&](int64_t a, int64_t b) { return x.select(2, a).select(2, b); };
        v = at2(r0, q0) * (1 - tr) * (1 - tq) + at2(r0, q1) * (1 - tr) * tq +
            at2(r1, q0) * tr * (1 - tq) + at2(r1, q1) * tr * tq;
      }
      y.select(2, i).select(2, j).copy_(v);
    }
  return y;
}

TEST(NnOpsResize, MatchesReferenceOnFastAndGeneralPaths) {
  at::manual_seed(30);
  at::Tensor x = randn({1, 2, 4, 5});
  struct Case {
    const char *mode, *coord, *rounding;
    double sh, sw;
  };
  std::vector<Case> cases = {
      {"nearest", "asymmetric", "floor", 2, 2},                 // ATen nearest
      {"nearest", "asymmetric", "floor", 3, 1.5},               // general
      {"nearest", "half_pixel", "round_prefer_floor", 2, 0.6},  // general
      {"nearest", "align_corners", "round_prefer_ceil", 1.75, 2},
      {"nearest", "half_pixel", "ceil", 0.5, 1.25},
      // ONNX transforms the N and C axes too; these modes leave scale-1 axes unchanged.
      {"nearest", "tf_half_pixel_for_nearest", "floor", 0.5, 1.25},
      {"linear", "half_pixel", "", 2, 2},  // ATen bilinear
      {"linear", "half_pixel", "", 0.6, 1.7},
      {"linear", "pytorch_half_pixel", "", 0.25, 3},  // output height 1: general
      {"linear", "align_corners", "", 2, 2},          // ATen bilinear, align_corners
      {"linear", "align_corners", "", 0.6, 1.3},      // unrounded length differs: general
      {"linear", "asymmetric", "", 1.5, 0.8},
  };
  for (const Case& c : cases) {
    Graph g = resize_graph(c.mode, c.coord);
    omit_input(g, 3);
    if (*c.rounding) g.nodes[0].attrs["nearest_mode"] = string_attr(c.rounding);
    at::Tensor scales = at::tensor({1.0, 1.0, c.sh, c.sw}, at::kFloat);
    // The reference sees the same float32-rounded scales the kernel reads.
    double sh = scales[2].item<double>(), sw = scales[3].item<double>();
    make_constant(g, 2, scales);
    expect_close(run1(g, {x}), reference_resize(x, c.mode, c.coord, c.rounding, sh, sw), 1e-6);
  }
}

TEST(NnOpsResize, UpsampleAndOpset10UseAsymmetricFloor) {
  at::Tensor x = at::arange(6, at::kDouble).reshape({1, 1, 2, 3});
  Graph up = single_node_graph("Upsample", 2, 1, 9);
  make_constant(up, 1, at::tensor({1.0f, 1.0f, 2.0f, 1.5f}));
  expect_close(run1(up, {x}), reference_resize(x, "nearest", "asymmetric", "floor", 2, 1.5), 1e-6);
  Graph linear = up;
  linear.nodes[0].attrs["mode"] = string_attr("linear");
  expect_close(run1(linear, {x}), reference_resize(x, "linear", "asymmetric", "", 2, 1.5), 1e-6);
  Graph up7 = single_node_graph("Upsample", 1, 1, 7);
  Attribute scales;
  scales.type = AttrType::kFloats;
  scales.floats = {1, 1, 2, 2};
  up7.nodes[0].attrs["scales"] = scales;
  expect_close(run1(up7, {x}), reference_resize(x, "nearest", "asymmetric", "floor", 2, 2));
  Graph r10 = single_node_graph("Resize", 2, 1, 10);
  make_constant(r10, 1, at::tensor({1.0f, 1.0f, 2.0f, 2.0f}));
  expect_close(run1(r10, {x}), reference_resize(x, "nearest", "asymmetric", "floor", 2, 2));
}

TEST(NnOpsResize, NearestKeepsIntegerTypesAndAxes) {
  at::Tensor x = at::arange(12, at::kByte).reshape({1, 3, 4});
  Graph g = single_node_graph("Resize", 4, 1, 18);
  g.nodes[0].attrs["axes"] = ints_attr({-1});
  g.nodes[0].attrs["nearest_mode"] = string_attr("floor");
  g.nodes[0].attrs["coordinate_transformation_mode"] = string_attr("asymmetric");
  omit_input(g, 1);
  omit_input(g, 2);
  at::Tensor y = run1(g, {x, at::tensor({8}, at::kLong)});
  EXPECT_EQ(y.scalar_type(), at::kByte);
  EXPECT_TRUE(y.equal(x.repeat_interleave(2, 2)));
}

TEST(NnOpsResize, KeepAspectRatioPolicy) {
  at::Tensor x = randn({1, 1, 4, 6});
  Graph g = single_node_graph("Resize", 4, 1, 18);
  g.nodes[0].attrs["keep_aspect_ratio_policy"] = string_attr("not_larger");
  g.nodes[0].attrs["axes"] = ints_attr({2, 3});
  omit_input(g, 1);
  omit_input(g, 2);
  // Asking for 8 x 8 keeps the 2:3 ratio: scale min(8/4, 8/6) = 4/3 gives 5 x 8.
  at::Tensor y = run1(g, {x, at::tensor({8, 8}, at::kLong)});
  EXPECT_EQ(y.sizes(), at::IntArrayRef({1, 1, 5, 8}));
}

// ---- quantisation ---------------------------------------------------------------------------

TEST(NnOpsQuant, RoundsHalfToEvenAndSaturates) {
  Graph g = single_node_graph("QuantizeLinear", 3, 1, 13);
  at::Tensor x = at::tensor({-300.0f, -2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 300.0f});
  at::Tensor y = run1(g, {x, at::tensor(1.0f), at::tensor(int8_t(0), at::kChar)});
  EXPECT_TRUE(y.equal(at::tensor({-128, -2, -2, 0, 0, 2, 2, 127}, at::kChar))) << y;
  Graph u = single_node_graph("QuantizeLinear", 2, 1, 13);
  at::Tensor yu = run1(u, {x, at::tensor(0.5f)});
  EXPECT_TRUE(yu.equal(at::tensor({0, 0, 0, 0, 1, 3, 5, 255}, at::kByte))) << yu;
}

TEST(NnOpsQuant, PerAxisRoundTrip) {
  at::manual_seed(40);
  at::Tensor x = at::randn({2, 3, 4});
  at::Tensor scale = at::tensor({0.01f, 0.02f, 0.05f});
  at::Tensor zp = at::tensor({0, 10, -5}, at::kChar);
  Graph q = single_node_graph("QuantizeLinear", 3, 1, 13);
  Graph dq = single_node_graph("DequantizeLinear", 3, 1, 13);
  at::Tensor xq = run1(q, {x, scale, zp});
  at::Tensor back = run1(dq, {xq, scale, zp});
  at::Tensor s = scale.reshape({1, 3, 1});
  at::Tensor z = zp.to(at::kFloat).reshape({1, 3, 1});
  at::Tensor want = (at::round(x / s) + z).clamp(-128, 127);
  EXPECT_TRUE(xq.to(at::kFloat).equal(want));
  expect_close(back, (want - z) * s, 1e-6);
}

// ---- other types and rejected attribute values ----------------------------------------------

TEST(NnOpsTypes, Float16InputsRunOnCpu) {
  at::manual_seed(50);
  at::Tensor x = at::randn({1, 2, 6, 6});
  at::Tensor w = at::randn({3, 2, 3, 3});
  Graph conv = single_node_graph("Conv", 2);
  at::Tensor want = run1(conv, {x, w});
  at::Tensor got = run1(conv, {x.to(at::kHalf), w.to(at::kHalf)});
  EXPECT_EQ(got.scalar_type(), at::kHalf);
  expect_close(got, want, 0.05);
  PoolCase c{{2, 2}, {2, 2}, {1, 1}, {0, 0, 1, 1}};
  for (const char* op : {"MaxPool", "AveragePool"}) {
    Graph g = pool_graph(op, c, 1);
    expect_close(run1(g, {x.to(at::kHalf)}), run1(g, {x}), 0.01);
  }
  Graph mm = single_node_graph("MatMul", 2, 1, 13);
  expect_close(run1(mm, {x.to(at::kHalf), x.to(at::kHalf)}), run1(mm, {x, x}), 0.1);
}

TEST(NnOpsTypes, IntegerMatMulAndGemm) {
  at::Tensor a = at::randint(-5, 5, {2, 3}, at::kInt), b = at::randint(-5, 5, {3, 4}, at::kInt);
  at::Tensor c = at::randint(-5, 5, {4}, at::kInt);
  Graph mm = single_node_graph("MatMul", 2, 1, 13);
  at::Tensor y = run1(mm, {a, b});
  EXPECT_EQ(y.scalar_type(), at::kInt);
  EXPECT_TRUE(y.equal(at::mm(a, b)));
  Graph gemm = single_node_graph("Gemm", 3, 1, 13);
  gemm.nodes[0].attrs["alpha"] = float_attr(2.0);
  gemm.nodes[0].attrs["beta"] = float_attr(0.5);
  at::Tensor want = (at::mm(a, b).to(at::kDouble) * 2 + c.to(at::kDouble) * 0.5).to(at::kInt);
  EXPECT_TRUE(run1(gemm, {a, b, c}).equal(want));
}

TEST(NnOpsNorm, StatisticsOutputsBeforeOpset14SelectTrainingMode) {
  at::manual_seed(70);
  Graph g = single_node_graph("BatchNormalization", 5, 5, 9);
  g.nodes[0].attrs["momentum"] = float_attr(0.8);
  at::Tensor x = randn({4, 2, 3}), mean = randn({2}), var = randn({2}).abs() + 1;
  std::vector<at::Tensor> out =
      Executor(g).run({x, at::ones({2}, at::kDouble), at::zeros({2}, at::kDouble), mean, var});
  std::vector<int64_t> dims = {0, 2};
  at::Tensor batch_mean = x.mean(dims), batch_var = x.var(dims, /*unbiased=*/false);
  expect_close(out[0],
               (x - batch_mean.reshape({1, 2, 1})) / at::sqrt(batch_var.reshape({1, 2, 1}) + 1e-5),
               1e-6);
  expect_close(out[1], mean * 0.8 + batch_mean * 0.2, 1e-6);
  expect_close(out[2], var * 0.8 + batch_var * 0.2, 1e-6);
  expect_close(out[3], batch_mean, 1e-9);
  expect_close(out[4], batch_var, 1e-9);
}

TEST(NnOpsErrors, RejectedAttributeValuesAreNamed) {
  at::Tensor x = randn({1, 1, 4, 4});
  Graph area = resize_graph("area", "half_pixel");
  omit_input(area, 3);
  make_constant(area, 2, at::tensor({1.0f, 1.0f, 2.0f, 2.0f}));
  expect_error(area, {x}, "attribute 'mode': expected nearest, linear or cubic, found area");

  Graph antialias = resize_graph("linear", "half_pixel");
  antialias.opsets[""] = 18;
  antialias.nodes[0].attrs["antialias"] = int_attr(1);
  omit_input(antialias, 3);
  make_constant(antialias, 2, at::tensor({1.0f, 1.0f, 0.5f, 0.5f}));
  expect_error(antialias, {x}, "attribute 'antialias': expected 0");

  Graph pad = single_node_graph("Conv", 2);
  pad.nodes[0].attrs["auto_pad"] = string_attr("SAME");
  expect_error(pad, {x, randn({1, 1, 3, 3})}, "attribute 'auto_pad': expected NOTSET");

  Graph block = single_node_graph("QuantizeLinear", 2, 1, 21);
  block.nodes[0].attrs["block_size"] = int_attr(2);
  expect_error(block, {at::randn({2, 4}), at::rand({2, 2}) + 0.1},
               "attribute 'block_size': expected 0");
}

// ---- many attribute combinations against ONNX Runtime ----------------------------------------

// One graph of independent nodes over shared inputs and constants, so that a single ONNX Runtime
// run checks many attribute combinations; node names describe the combination.
class OrtBatch {
 public:
  explicit OrtBatch(int64_t opset) {
    g_.source = "ort_batch";
    g_.opsets[""] = opset;
  }
  std::string input(const at::Tensor& value) {
    ValueInfo vi;
    vi.name = "in" + std::to_string(inputs_.size());
    vi.elem_type = onnx_type_from_scalar(value.scalar_type());
    vi.has_shape = true;
    for (int64_t d : value.sizes()) vi.shape.push_back(Dim{d, ""});
    g_.inputs.push_back(vi);
    inputs_.push_back(value);
    return vi.name;
  }
  std::string constant(const at::Tensor& value) {
    std::string name = "c" + std::to_string(g_.initializers.size());
    g_.initializers[name] = value;
    return name;
  }
  // Adds a node; output_types are ONNX element types, one per output.
  void add(const std::string& label, const std::string& op, std::vector<std::string> inputs,
           std::map<std::string, Attribute> attrs = {}, std::vector<int32_t> output_types = {1}) {
    Node n;
    n.name = label;
    n.op_type = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    for (size_t o = 0; o < output_types.size(); ++o) {
      ValueInfo vi;
      vi.name = label + "_out" + std::to_string(o);
      vi.elem_type = output_types[o];
      n.outputs.push_back(vi.name);
      g_.outputs.push_back(vi);
    }
    g_.nodes.push_back(n);
  }
  // Runs the graph in mpq and in ONNX Runtime and compares every output.
  void compare(double tol = 1e-5) const {
    std::string why;
    if (!onnxruntime_available(&why)) GTEST_SKIP() << why;
    std::vector<at::Tensor> ours = Executor(g_).run(inputs_);
    // The checker wants output ranks; sizes stay open so that ONNX Runtime decides them.
    Graph declared = g_;
    for (size_t o = 0; o < ours.size(); ++o) {
      declared.outputs[o].has_shape = true;
      declared.outputs[o].shape.assign(size_t(ours[o].dim()), Dim{});
    }
    std::string path = test::temp_dir() + "/batch.onnx";
    export_onnx(declared, path);
    std::vector<at::Tensor> theirs = run_onnxruntime(path, inputs_);
    ASSERT_EQ(ours.size(), theirs.size());
    for (size_t o = 0; o < ours.size(); ++o) {
      const std::string& what = g_.outputs[o].name;
      ASSERT_EQ(ours[o].sizes(), theirs[o].sizes()) << what;
      EXPECT_EQ(ours[o].scalar_type(), theirs[o].scalar_type()) << what;
      double scale = std::max(1.0, theirs[o].abs().max().item<double>());
      double diff =
          (ours[o].to(at::kDouble) - theirs[o].to(at::kDouble)).abs().max().item<double>();
      EXPECT_LE(diff, tol * scale) << what << "\nmpq " << ours[o] << "\nort " << theirs[o];
    }
  }

 private:
  Graph g_;
  std::vector<at::Tensor> inputs_;
};

TEST(NnOpsOrt, ResizeModes) {
  at::manual_seed(60);
  OrtBatch b(19);
  std::string x = b.input(at::randn({1, 2, 5, 7}));
  std::string x1 = b.input(at::randn({2, 3, 9}));
  std::string roi = b.constant(at::tensor({0.0f, 0.0f, 0.2f, 0.1f, 1.0f, 1.0f, 0.9f, 1.2f}));
  struct Scales {
    const char* label;
    std::vector<float> v;
  };
  std::vector<Scales> scales = {{"x2", {1, 1, 2, 2}},
                                {"up", {1, 1, 1.7f, 2.4f}},
                                {"down", {1, 1, 0.6f, 0.45f}},
                                {"mixed", {1, 1, 0.8f, 1.3f}}};
  const char* coords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                          "align_corners", "asymmetric",
                          // ONNX Runtime knows tf_half_pixel_for_nearest only by this name.
                          "tf_half_pixel_for_nn"};
  const char* roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  for (const auto& sc : scales) {
    std::string s = b.constant(at::tensor(sc.v));
    // ONNX's formulas for align_corners and tf_crop_and_resize use the unrounded output length
    // (scale * input length, as ONNX's own node tests check); ONNX Runtime uses the rounded one.
    bool whole = std::string(sc.label) == "x2";
    for (const char* coord : coords) {
      std::string c = coord;
      if (!whole && c == "align_corners") continue;
      for (const char* r : roundings) {
        // Here x = 3 exactly in exact arithmetic, so floor/ceil follow float rounding noise.
        if (c == "half_pixel_symmetric" && std::string(r).find("round") == std::string::npos)
          continue;
        b.add(std::string("nearest_") + coord + "_" + r + "_" + sc.label, "Resize", {x, "", s},
              {{"mode", string_attr("nearest")},
               {"coordinate_transformation_mode", string_attr(coord)},
               {"nearest_mode", string_attr(r)}});
      }
      for (const char* mode : {"linear", "cubic"})
        b.add(
            std::string(mode) + "_" + coord + "_" + sc.label, "Resize", {x, "", s},
            {{"mode", string_attr(mode)}, {"coordinate_transformation_mode", string_attr(coord)}});
    }
    b.add(std::string("cubic_a05_exclude_") + sc.label, "Resize", {x, "", s},
          {{"mode", string_attr("cubic")},
           {"cubic_coeff_a", float_attr(-0.5)},
           {"exclude_outside", int_attr(1)}});
    for (const char* mode : {"nearest", "linear"})
      if (whole)
        b.add(std::string("crop_") + mode + "_" + sc.label, "Resize", {x, roi, s},
              {{"mode", string_attr(mode)},
               {"coordinate_transformation_mode", string_attr("tf_crop_and_resize")},
               {"extrapolation_value", float_attr(-3.0)}});
  }
  std::string sizes = b.constant(at::tensor({3, 11}, at::kLong));
  for (const char* policy : {"stretch", "not_larger", "not_smaller"})
    b.add(std::string("sizes_axes_") + policy, "Resize", {x, "", "", sizes},
          {{"mode", string_attr("linear")},
           {"axes", ints_attr({2, 3})},
           {"keep_aspect_ratio_policy", string_attr(policy)}});
  std::string s1 = b.constant(at::tensor({1.0f, 1.0f, 1.5f}));
  for (const char* mode : {"nearest", "linear"})  // ONNX Runtime's cubic wants 2-D or 4-D
    b.add(std::string("rank3_") + mode, "Resize", {x1, "", s1}, {{"mode", string_attr(mode)}});
  b.compare();
}

TEST(NnOpsOrt, LegacyResizeAndUpsample) {
  at::manual_seed(61);
  for (int64_t opset : {9, 10}) {
    OrtBatch b(opset);
    std::string x = b.input(at::randn({1, 2, 6, 7}));
    for (std::vector<float> v : std::vector<std::vector<float>>{{1, 1, 2, 3}, {1, 1, 1.5f, 2.5f}})
      for (const char* mode : {"nearest", "linear"})
        b.add(std::string(mode) + "_" + std::to_string(int(v[3] * 10)),
              opset == 9 ? "Upsample" : "Resize", {x, b.constant(at::tensor(v))},
              {{"mode", string_attr(mode)}});
    if (opset == 10)  // only Resize may shrink
      for (const char* mode : {"nearest", "linear"})
        b.add(std::string("down_") + mode, "Resize",
              {x, b.constant(at::tensor({1.0f, 1.0f, 0.6f, 0.45f}))},
              {{"mode", string_attr(mode)}});
    b.compare();
  }
}

TEST(NnOpsOrt, PoolingEdgeCases) {
  at::manual_seed(62);
  OrtBatch b(19);
  std::string x = b.input(at::randn({2, 3, 9, 10}));
  std::string x1 = b.input(at::randn({1, 2, 11}));
  std::string x3 = b.input(at::randn({1, 2, 5, 6, 7}));
  struct Case {
    const char* label;
    std::vector<int64_t> k, s, d, pads;
    int64_t ceil;
    const char* auto_pad;
  };
  std::vector<Case> cases = {
      {"sym", {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, "NOTSET"},
      {"sym_ceil", {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, "NOTSET"},
      {"sym_ceil_no_overhang", {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 0}, 1, "NOTSET"},
      {"asym", {3, 2}, {2, 3}, {1, 1}, {0, 1, 2, 0}, 1, "NOTSET"},
      {"big_pads", {3, 3}, {1, 2}, {1, 1}, {2, 2, 2, 2}, 0, "NOTSET"},
      {"dilated", {2, 3}, {2, 1}, {2, 2}, {1, 0, 1, 2}, 1, "NOTSET"},
      {"same_upper", {3, 4}, {2, 3}, {1, 1}, {}, 0, "SAME_UPPER"},
      {"same_lower", {4, 3}, {3, 2}, {1, 1}, {}, 0, "SAME_LOWER"},
      {"valid", {3, 3}, {2, 2}, {1, 1}, {}, 1, "VALID"},
  };
  for (const Case& c : cases) {
    std::map<std::string, Attribute> attrs = {{"kernel_shape", ints_attr(c.k)},
                                              {"strides", ints_attr(c.s)},
                                              {"dilations", ints_attr(c.d)},
                                              {"ceil_mode", int_attr(c.ceil)},
                                              {"auto_pad", string_attr(c.auto_pad)}};
    if (!c.pads.empty()) attrs["pads"] = ints_attr(c.pads);
    b.add(std::string("max_") + c.label, "MaxPool", {x}, attrs, {1, 7});
    for (int64_t cip : {0, 1}) {
      // Where a ceil_mode window reaches past the pads, ONNX Runtime divides by the whole window
      // while ONNX's reference (and PyTorch) count only input and pads; compared in unit tests.
      if (cip && c.ceil && std::string(c.label) != "sym_ceil_no_overhang") continue;
      attrs["count_include_pad"] = int_attr(cip);
      b.add(std::string("avg_") + c.label + "_cip" + std::to_string(cip), "AveragePool", {x},
            attrs);
    }
  }
  std::map<std::string, Attribute> one_d = {{"kernel_shape", ints_attr({4})},
                                            {"strides", ints_attr({3})},
                                            {"pads", ints_attr({2, 1})},
                                            {"ceil_mode", int_attr(1)}};
  b.add("max_1d", "MaxPool", {x1}, one_d, {1, 7});
  b.add("avg_1d", "AveragePool", {x1}, one_d);
  std::map<std::string, Attribute> three_d = {{"kernel_shape", ints_attr({2, 3, 2})},
                                              {"strides", ints_attr({2, 2, 3})},
                                              {"pads", ints_attr({1, 0, 1, 0, 1, 1})}};
  b.add("max_3d", "MaxPool", {x3}, three_d, {1, 7});
  b.add("avg_3d", "AveragePool", {x3}, three_d);
  three_d["storage_order"] = int_attr(1);
  b.add("max_3d_column_major", "MaxPool", {x3}, three_d, {1, 7});
  b.add("global_avg", "GlobalAveragePool", {x3}, {});
  b.add("global_max", "GlobalMaxPool", {x}, {});
  b.compare();
}

TEST(NnOpsOrt, ConvolutionVariants) {
  at::manual_seed(63);
  OrtBatch b(17);
  std::string x = b.input(at::randn({1, 4, 7, 8}));
  std::string w = b.constant(at::randn({6, 2, 3, 2}));
  // A kernel at least as large as the stride: with a smaller one SAME needs negative padding,
  // which ONNX Runtime clamps to zero (output smaller than input * stride).
  std::string wt = b.constant(at::randn({4, 3, 3, 3}));
  std::string bias = b.constant(at::randn({6}));
  for (const char* pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}) {
    // ONNX Runtime rejects dilations with SAME padding.
    bool same = std::string(pad).rfind("SAME", 0) == 0;
    std::map<std::string, Attribute> attrs = {{"auto_pad", string_attr(pad)},
                                              {"strides", ints_attr({2, 3})},
                                              {"dilations", ints_attr({1, same ? 1 : 2})},
                                              {"group", int_attr(2)}};
    if (std::string(pad) == "NOTSET") attrs["pads"] = ints_attr({2, 0, 1, 3});
    b.add(std::string("conv_") + pad, "Conv", {x, w, bias}, attrs);
    attrs.erase("pads");
    if (std::string(pad) == "NOTSET") attrs["pads"] = ints_attr({1, 0, 0, 1});
    b.add(std::string("convT_") + pad, "ConvTranspose", {x, wt, bias}, attrs);
    attrs["output_padding"] = ints_attr({1, 2});
    b.add(std::string("convT_outpad_") + pad, "ConvTranspose", {x, wt}, attrs);
  }
  for (std::vector<int64_t> shape : {std::vector<int64_t>{15, 24}, std::vector<int64_t>{12, 20}})
    for (const char* pad : {"NOTSET", "SAME_UPPER"})
      b.add("convT_shape_" + std::to_string(shape[0]) + "_" + pad, "ConvTranspose", {x, wt, bias},
            {{"auto_pad", string_attr(pad)},
             {"strides", ints_attr({2, 3})},
             {"group", int_attr(2)},
             {"output_shape", ints_attr(shape)}});
  b.compare(1e-4);
}

TEST(NnOpsOrt, NormAndQuant) {
  at::manual_seed(64);
  OrtBatch b(21);
  std::string x = b.input(at::randn({2, 3, 4, 5}) * 3);
  std::string scale = b.constant(at::randn({4, 5}));
  std::string bias = b.constant(at::randn({4, 5}));
  b.add("layer_norm_stats", "LayerNormalization", {x, scale, bias},
        {{"axis", int_attr(-2)}, {"epsilon", float_attr(1e-3)}}, {1, 1, 1});
  std::string per_axis = b.constant(at::rand({3}) * 0.1 + 0.01);
  std::string zp8 = b.constant(at::tensor({3, -7, 0}, at::kChar));
  std::string zp16 = b.constant(at::tensor({300, -7000, 0}, at::kShort));
  b.add("quantize_int8_axis1", "QuantizeLinear", {x, per_axis, zp8}, {}, {3});
  b.add("quantize_int16_axis1", "QuantizeLinear", {x, per_axis, zp16}, {}, {5});
  b.add("quantize_uint8_tensor", "QuantizeLinear", {x, b.constant(at::tensor(0.02f))}, {}, {2});
  std::string q = b.input(at::randint(-128, 127, {2, 3, 4, 5}, at::kChar));
  b.add("dequantize_int8_axis1", "DequantizeLinear", {q, per_axis, zp8}, {});
  b.compare();
}
}  // namespace
}  // namespace mpq
