// The kernels the profiler times compute what the layer computes: oneDNN's f32 convolution
// (strides, asymmetric pads, dilation, groups) and matrix product against ATen, and the int8
// ones against an exact integer reference with the requantization round(acc * scale) saturated
// to u8. Timings are positive and ordered (min <= median <= max); no test asserts a speed.
#include "hw/onednn.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

namespace mpq {
namespace {

std::vector<float> values(const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

at::Tensor reference_conv(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& w,
                          const at::Tensor& b) {
  at::Tensor padded = at::constant_pad_nd(x, {g.pad_left, g.pad_right, g.pad_top, g.pad_bottom});
  std::vector<int64_t> stride = {g.stride_h, g.stride_w}, pad = {0, 0},
                       dilation = {g.dilation_h, g.dilation_w};
  return at::conv2d(padded, w, b, stride, at::IntArrayRef(pad), dilation, g.groups);
}

std::vector<ConvGeometry> geometries() {
  std::vector<ConvGeometry> out;
  ConvGeometry a;
  a.in_channels = 3, a.in_h = 9, a.in_w = 7, a.out_channels = 8, a.kernel_h = 3, a.kernel_w = 3;
  a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = 1;
  out.push_back(a);
  ConvGeometry b = a;  // strided, asymmetric padding, dilated
  b.stride_h = 2, b.stride_w = 2, b.pad_bottom = 0, b.pad_right = 2, b.dilation_h = 2;
  b.dilation_w = 2, b.in_h = 12, b.in_w = 11;
  out.push_back(b);
  ConvGeometry c = a;  // depthwise
  c.in_channels = c.out_channels = c.groups = 8;
  out.push_back(c);
  ConvGeometry d = a;  // grouped 1x1, batch 2
  d.batch = 2, d.in_channels = 8, d.out_channels = 12, d.groups = 4, d.kernel_h = d.kernel_w = 1;
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 0;
  out.push_back(d);
  return out;
}

TEST(OneDnn, Float32ConvolutionMatchesATen) {
  at::manual_seed(1);
  for (const ConvGeometry& g : geometries()) {
    SCOPED_TRACE(g.describe());
    at::Tensor x = at::randn({g.batch, g.in_channels, g.in_h, g.in_w});
    at::Tensor w = at::randn({g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w});
    at::Tensor b = at::randn({g.out_channels});
    std::vector<float> y = run_conv(g, KernelType::kFloat32, values(x), values(w), values(b), {});
    at::Tensor ref = reference_conv(g, x, w, b);
    ASSERT_EQ(int64_t(y.size()), ref.numel());
    EXPECT_EQ(ref.size(2), g.out_h());
    EXPECT_EQ(ref.size(3), g.out_w());
    EXPECT_TRUE(at::allclose(at::tensor(y).view(ref.sizes()), ref, 1e-4, 1e-4));
  }
}

TEST(OneDnn, Int8ConvolutionIsExactIntegerArithmetic) {
  at::manual_seed(2);
  for (const ConvGeometry& g : geometries()) {
    SCOPED_TRACE(g.describe());
    at::Tensor x = at::randint(0, 256, {g.batch, g.in_channels, g.in_h, g.in_w}, at::kDouble);
    at::Tensor w = at::randint(
        -128, 128, {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w}, at::kDouble);
    std::vector<float> scales;
    for (int64_t c = 0; c < g.out_channels; ++c) scales.push_back(1.0f / float(512 + 97 * c));
    std::vector<float> zero(size_t(g.out_channels), 0.0f);
    std::vector<float> y = run_conv(g, KernelType::kInt8, values(x), values(w), zero, scales);
    at::Tensor acc = reference_conv(g, x, w, at::zeros({g.out_channels}, at::kDouble));
    at::Tensor s = at::tensor(std::vector<double>(scales.begin(), scales.end()), at::kDouble)
                       .view({1, -1, 1, 1});
    at::Tensor ref = at::clamp(at::round(acc * s), 0, 255);
    at::Tensor got = at::tensor(y, at::kDouble).view(ref.sizes());
    // The product acc * scale is formed in float32 by oneDNN: at most one step apart.
    EXPECT_LE((got - ref).abs().max().item<double>(), 1.0);
    EXPECT_GT((got == ref).to(at::kDouble).mean().item<double>(), 0.99);
  }
}

TEST(OneDnn, MatMulMatchesATenInBothTypes) {
  at::manual_seed(3);
  MatMulGeometry g{5, 24, 10};
  at::Tensor x = at::randn({g.m, g.k}), w = at::randn({g.k, g.n}), b = at::randn({g.n});
  std::vector<float> y = run_matmul(g, KernelType::kFloat32, values(x), values(w), values(b), {});
  EXPECT_TRUE(at::allclose(at::tensor(y).view({g.m, g.n}), at::addmm(b, x, w), 1e-4, 1e-4));
  at::Tensor xi = at::randint(0, 256, {g.m, g.k}, at::kDouble);
  at::Tensor wi = at::randint(-128, 128, {g.k, g.n}, at::kDouble);
  std::vector<float> scales(size_t(g.n), 1.0f / 300);
  std::vector<float> yi = run_matmul(g, KernelType::kInt8, values(xi), values(wi),
                                     std::vector<float>(size_t(g.n), 0.0f), scales);
  at::Tensor ref = at::clamp(at::round(at::mm(xi, wi) / 300.0), 0, 255);
  EXPECT_LE((at::tensor(yi, at::kDouble).view({g.m, g.n}) - ref).abs().max().item<double>(), 1.0);
}

TEST(OneDnn, TimingsAreOrderedAndNamed) {
  TimingOptions o;
  o.repeats = 3;
  o.min_sample_ms = 0.2;
  for (KernelType t : {KernelType::kFloat32, KernelType::kInt8}) {
    KernelTiming k = time_conv(geometries()[0], t, o);
    EXPECT_GT(k.median_ms, 0);
    EXPECT_LE(k.min_ms, k.median_ms);
    EXPECT_LE(k.median_ms, k.max_ms);
    EXPECT_GE(k.runs_per_sample, 1);
    EXPECT_FALSE(k.implementation.empty());
    std::vector<Kernel> pass = {geometries()[0], geometries()[2], MatMulGeometry{1, 64, 10}};
    EXPECT_GT(time_pass(pass, t, o).median_ms, 0);
  }
  EXPECT_NE(onednn_version().find("oneDNN"), std::string::npos);
}

}  // namespace
}  // namespace mpq
