// Convolutions with small and odd channel counts, forward and backward, on whatever instruction
// set oneDNN picks in this process. ctest runs this executable twice: as it is, and with
// ONEDNN_MAX_CPU_ISA=AVX2 (test names "avx2.*"), so a machine with AVX-512 also checks the AVX2
// kernels that 2-core cloud machines run. The shapes are the ones that crashed or returned wrong
// weight gradients in oneDNN's strided 1x1 backward-weights kernel (fewer input channels than the
// kernel's channel block, channels-last input, stride 2; see src/exec/ops/conv.cpp): the gradients
// are compared with ATen's double-precision NCHW convolution, which does not use oneDNN, and the
// commands that differentiate through convolutions (QAT, hessian sensitivity, the lcpaq preset)
// run on a model built from such layers.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/io.h"
#include "support/test_util.h"

namespace mpq {
namespace {

struct ConvCase {
  int64_t in, out, kernel, stride, groups, hw, batch;
  std::string describe() const {
    std::ostringstream o;
    o << batch << "x" << in << "x" << hw << "x" << hw << " -> " << out << " k" << kernel << " s"
      << stride << " g" << groups;
    return o.str();
  }
};

// Every case: the channel counts 1, 3, 4, 6, 12 and 15 (and 16, 24 above the smallest block);
// 1x1 and 3x3; stride 1 and 2; plain, depthwise and grouped. The 128x128 inputs reach past the
// slack that hid the overflow on AVX-512.
std::vector<ConvCase> cases() {
  std::vector<ConvCase> all;
  for (int64_t hw : {28, 128}) {
    int64_t batch = hw == 28 ? 64 : 8;
    for (int64_t kernel : {1, 3}) {
      for (int64_t stride : {1, 2}) {
        // 16 and 24 channels keep oneDNN's strided 1x1 kernel (src/exec/ops/conv.cpp).
        for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 8},
                               {3, 8},
                               {4, 8},
                               {4, 4},
                               {6, 12},
                               {12, 16},
                               {15, 16},
                               {16, 8},
                               {24, 16}}) {
          all.push_back({in, out, kernel, stride, 1, hw, batch});
        }
        for (auto [c, groups] : {std::pair<int64_t, int64_t>{4, 4}, {6, 6}, {12, 12}, {12, 3}}) {
          all.push_back({c, c, kernel, stride, groups, hw, batch});
        }
        all.push_back({6, 12, kernel, stride, 3, hw, batch});
      }
    }
  }
  return all;
}

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  double scale = want.abs().max().item<double>();
  return (got.to(at::kDouble) - want).abs().max().item<double>() / std::max(scale, 1e-12);
}

// One case through mpq's Conv op (float, channels-last input: a 3x3 convolution in front makes it
// so, as in a real network) against at::convolution in double on NCHW tensors.
TEST(OddChannels, ConvGradientsMatchADoublePrecisionReference) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  for (const ConvCase& c : cases()) {
    SCOPED_TRACE(c.describe());
    GraphBuilder b("conv", 13);
    std::string x = b.input("x", {c.batch, c.in, c.hw, c.hw});
    at::Tensor w0 = at::normal(0.0, 0.5, {c.in, c.in, 3, 3}, gen);
    at::Tensor w1 = at::normal(0.0, 0.5, {c.out, c.in / c.groups, c.kernel, c.kernel}, gen);
    int64_t pad = c.kernel / 2;
    std::string h = b.node("Conv", {x, b.weight("w0", w0)},
                           {{"pads", attr(std::vector<int64_t>{1, 1, 1, 1})}}, "front");
    h = b.node("Conv", {h, b.weight("w1", w1)},
               {{"pads", attr(std::vector<int64_t>{pad, pad, pad, pad})},
                {"strides", attr(std::vector<int64_t>{c.stride, c.stride})},
                {"group", attr(c.groups)}},
               "under_test");
    b.output(h);
    Graph g = b.build();
    for (auto& [name, t] : g.initializers) t.requires_grad_(true);
    at::Tensor input = at::normal(0.0, 1.0, {c.batch, c.in, c.hw, c.hw}, gen);
    Executor ex(g);
    at::Tensor y = ex.run({input})[0];
    at::Tensor gy = at::normal(0.0, 1.0, y.sizes(), gen);
    // Two backward passes: heap damage from the first shows up as a crash in the second.
    for (int pass = 0; pass < 2; ++pass) {
      for (auto& [name, t] : g.initializers) t.mutable_grad() = at::Tensor();
      if (pass) y = ex.run({input})[0];
      y.backward(gy);
    }

    at::Tensor xd = input.to(at::kDouble), gyd = gy.to(at::kDouble);
    at::Tensor w0d = w0.to(at::kDouble).requires_grad_(true);
    at::Tensor w1d = w1.to(at::kDouble).requires_grad_(true);
    at::Tensor hd = at::convolution(xd, w0d, {}, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1);
    at::Tensor yd = at::convolution(hd, w1d, {}, {c.stride, c.stride}, {pad, pad}, {1, 1}, false,
                                    {0, 0}, c.groups);
    yd.backward(gyd);
    EXPECT_LT(relative_error(y.detach(), yd.detach()), 1e-5);
    EXPECT_LT(relative_error(g.initializers.at("w1").grad(), w1d.grad()), 1e-4);
    EXPECT_LT(relative_error(g.initializers.at("w0").grad(), w0d.grad()), 1e-4);
  }
}

// A 28x28 grey classifier made of the layers above: 1 -> 3 (3x3), 3 -> 4 (1x1 stride 2),
// depthwise 4 (3x3), 4 -> 6 (3x3 stride 2), 6 -> 12 (1x1 stride 2, 3 groups), 12 -> 6 (1x1),
// global average pool, 6 -> 10.
std::string odd_channel_model(const std::string& dir) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  auto he = [&](at::IntArrayRef shape, int64_t fan_in) {
    return at::normal(0.0, std::sqrt(2.0 / double(fan_in)), shape, gen);
  };
  GraphBuilder b("odd_channels", 13);
  std::string h = b.input("x", {"N", 1, 28, 28});
  auto conv = [&](const std::string& name, int64_t in, int64_t out, int64_t k, int64_t s,
                  int64_t groups) {
    int64_t p = k / 2;
    h = b.node("Conv",
               {h, b.weight(name + ".weight", he({out, in / groups, k, k}, in / groups * k * k)),
                b.weight(name + ".bias", at::zeros({out}))},
               {{"pads", attr(std::vector<int64_t>{p, p, p, p})},
                {"strides", attr(std::vector<int64_t>{s, s})},
                {"group", attr(groups)}},
               name);
    h = b.node("Relu", {h});
  };
  conv("stem", 1, 3, 3, 1, 1);
  conv("reduce", 3, 4, 1, 2, 1);
  conv("depthwise", 4, 4, 3, 1, 4);
  conv("widen", 4, 6, 3, 2, 1);
  conv("grouped", 6, 12, 1, 2, 3);
  conv("project", 12, 6, 1, 1, 1);
  h = b.node("Flatten", {b.node("GlobalAveragePool", {h})}, {{"axis", attr(int64_t(1))}});
  h = b.node("Gemm",
             {h, b.weight("fc.weight", he({10, 6}, 6)), b.weight("fc.bias", at::zeros({10}))},
             {{"transB", attr(int64_t(1))}}, "fc");
  b.output(h, {"N", 10});
  std::string path = dir + "/odd_channels.onnx";
  export_onnx(b.build(), path);
  return path;
}

const std::vector<std::string> kData = {
    "--data", "fashion-mnist:train", "--limit", "256", "--mean", "0.286", "--std", "0.353"};

// {"-q", COMMAND, MODEL, ...} with the data options after the model (--mean/--std take lists).
std::vector<std::string> with_data(std::vector<std::string> args) {
  args.insert(args.begin() + 3, kData.begin(), kData.end());  // after the model
  return args;
}

TEST(OddChannels, QatTrainsThroughEveryLayer) {
  std::string dir = test::temp_dir();
  std::string model = odd_channel_model(dir);
  ProcessResult r = test::mpq(
      with_data({"-q", "train", model, "--qat", "--bits", "4/8", "--lsq", "--epochs", "1",
                 "--val-limit", "100", "--calibration-samples", "64", "-o", dir + "/q.onnx"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["avg_weight_bits"].get<double>(), 4.0);
  EXPECT_TRUE(file_exists(dir + "/q.onnx"));
}

TEST(OddChannels, HessianSensitivityCoversEveryLayer) {
  std::string dir = test::temp_dir();
  std::string model = odd_channel_model(dir);
  ProcessResult r =
      test::mpq(with_data({"-q", "sensitivity", model, "--metric", "hessian", "--samples", "128",
                           "--no-cache", "-o", dir + "/sens.json"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto sens = nlohmann::json::parse(read_file(dir + "/sens.json"));
  ASSERT_EQ(sens["layers"].size(), 7u) << sens.dump();
  for (const auto& layer : sens["layers"]) {
    double trace = layer["extra"]["trace"].get<double>();
    EXPECT_TRUE(std::isfinite(trace)) << layer.dump();
    for (const auto& w : layer["weight"]) EXPECT_TRUE(std::isfinite(w["omega"].get<double>()));
  }
}

TEST(OddChannels, LcpaqPresetRuns) {
  std::string dir = test::temp_dir();
  std::string model = odd_channel_model(dir);
  ProcessResult r = test::mpq(with_data({"-q",          "run",
                                         model,         "--samples",
                                         "64",          "--eval-limit",
                                         "100",         "--uniform",
                                         "2,8",         "--frontier-evals",
                                         "1",           "--budget",
                                         "avg-bits=4",  "--method",
                                         "lcpaq",       "--proxy-evals",
                                         "4",           "--proxy-samples",
                                         "32",          "--no-verify",
                                         "--no-report", "-o",
                                         dir + "/run"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto run = nlohmann::json::parse(read_file(dir + "/run/run.json"));
  EXPECT_EQ(run["method"]["metric"], "hessian");
  EXPECT_LE(run["mixed"]["avg_weight_bits"].get<double>(), 4 + 1e-9);
}

}  // namespace
}  // namespace mpq
