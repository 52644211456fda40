// The kernels the profiler times compute what the layer computes: oneDNN's f32 convolution
// (strides, asymmetric pads, dilation, groups) and matrix product against ATen, and the int8
// ones against an exact integer reference with the requantization round(acc * scale) saturated
// to u8, for weights in the range the instruction set sums exactly (tests/CMakeLists.txt runs
// these tests under oneDNN's default ISA and under AVX2). Timings are positive and ordered
// (min <= median <= max); no test asserts a speed.
#include "hw/onednn.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"

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

// The signed weight range oneDNN sums exactly on this process's instruction set: [-128, 127] with
// VNNI or AMX, [-64, 63] without (ctest runs these tests once more under ONEDNN_MAX_CPU_ISA=AVX2).
int64_t weight_limit() { return int64_t(1) << (onednn_int8_weight_bits() - 1); }

TEST(OneDnn, Int8WeightRangeFollowsTheInstructionSet) {
  const std::string isa = onednn_isa();
  bool vnni = isa.find("vnni") != std::string::npos || isa == "avx512_core_bf16" ||
              isa == "avx512_core_amx";
  EXPECT_EQ(onednn_int8_weight_bits(), vnni ? 8 : 7) << isa;
  const char* limit = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (limit && std::string(limit) == "AVX2") {
    EXPECT_EQ(isa, "avx2");
  }
}

TEST(OneDnn, Int8ConvolutionIsExactIntegerArithmetic) {
  SCOPED_TRACE("oneDNN ISA " + onednn_isa());
  at::manual_seed(2);
  const int64_t limit = weight_limit();
  for (const ConvGeometry& g : geometries()) {
    SCOPED_TRACE(g.describe());
    at::Tensor x = at::randint(0, 256, {g.batch, g.in_channels, g.in_h, g.in_w}, at::kDouble);
    at::Tensor w = at::randint(-limit, limit,
                               {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w},
                               at::kDouble);
    // The extremes, where a pair of products overflows 16 bits if anything does.
    w.view({-1})[0] = double(-limit);
    x.view({-1})[0] = 255;
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

TEST(OneDnn, Int8WeightsOutsideTheExactRangeAreRefused) {
  SCOPED_TRACE("oneDNN ISA " + onednn_isa());
  if (onednn_int8_weight_bits() == 8) {
    // With VNNI every int8 weight is exact; the range check has nothing to refuse.
    EXPECT_EQ(weight_limit(), 128);
    return;
  }
  ConvGeometry g = geometries()[0];
  std::vector<float> x(size_t(g.batch * g.in_channels * g.in_h * g.in_w), 255.0f);
  std::vector<float> w(size_t(g.out_channels * g.in_channels * 9), 100.0f);
  std::vector<float> zero(size_t(g.out_channels), 0.0f), scales(zero.size(), 1.0f / 4096);
  try {
    run_conv(g, KernelType::kInt8, x, w, zero, scales);
    ADD_FAILURE() << "weights of 100 were accepted on " << onednn_isa();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[-64, 63]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("found 100"), std::string::npos) << e.what();
  }
  MatMulGeometry m{2, 8, 3};
  EXPECT_THROW(run_matmul(m, KernelType::kInt8, std::vector<float>(16, 255.0f),
                          std::vector<float>(24, -65.0f), std::vector<float>(3, 0.0f),
                          std::vector<float>(3, 1.0f)),
               Error);
}

TEST(OneDnn, MatMulMatchesATenInBothTypes) {
  SCOPED_TRACE("oneDNN ISA " + onednn_isa());
  at::manual_seed(3);
  MatMulGeometry g{5, 24, 10};
  at::Tensor x = at::randn({g.m, g.k}), w = at::randn({g.k, g.n}), b = at::randn({g.n});
  std::vector<float> y = run_matmul(g, KernelType::kFloat32, values(x), values(w), values(b), {});
  EXPECT_TRUE(at::allclose(at::tensor(y).view({g.m, g.n}), at::addmm(b, x, w), 1e-4, 1e-4));
  const int64_t limit = weight_limit();
  at::Tensor xi = at::randint(0, 256, {g.m, g.k}, at::kDouble);
  at::Tensor wi = at::randint(-limit, limit, {g.k, g.n}, at::kDouble);
  xi.index_put_({0}, 255.0);  // a row of the largest activations against the extreme weights
  wi.index_put_({at::indexing::Slice(), 0}, double(-limit));
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
