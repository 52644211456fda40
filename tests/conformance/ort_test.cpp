// mpq's executor against ONNX Runtime on whole models: the zoo architectures (ResNet-style,
// MobileNetV2-style with depthwise convs and HardSwish, a transformer encoder with
// LayerNormalization/Softmax/MatMul/Gelu), weights as Constant nodes at opsets 9 and 11, the
// detector, seqnet and embednet (outputs that are not class scores) with Constant weights and
// symbolic H and W at opsets 13 and 18, models exported by PyTorch itself (tests/models) and a
// tf2onnx-style model. Both run the same file on the same inputs. Tolerance: max |mpq - ort| <=
// 1e-4 * max(1, max |ort|), i.e. about 1e-4 of the output scale (float32 accumulation order
// differs between the two runtimes).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "exec/executor.h"
#include "onnx/io.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"
#include "support/third_party.h"

namespace mpq {
namespace {

struct OrtCase {
  std::string name;
  std::function<std::string(const std::string& dir)> make;  // returns the model path
  std::vector<std::vector<int64_t>> shapes;                 // input shapes to try
};

std::string write(const Graph& g, const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name + ".onnx";
  export_onnx(g, path);
  return path;
}

std::function<std::string(const std::string&)> zoo(const std::string& arch, ZooOptions o,
                                                   const std::string& name) {
  return [=](const std::string& dir) {
    ZooOptions opt = o;
    opt.random_bn = true;
    opt.seed = 3;
    return write(build_zoo_model(arch, opt), dir, name);
  };
}

std::function<std::string(const std::string&)> checked_in(const std::string& file) {
  return [=](const std::string&) { return test::source_path("tests/models/" + file); };
}

std::vector<OrtCase> cases() {
  ZooOptions base;
  base.width_mult = 0.5;
  ZooOptions dyn = base;
  dyn.dynamic_hw = true;
  dyn.opset = 13;
  ZooOptions hs = base;
  hs.hardswish = true;
  hs.opset = 14;
  ZooOptions c9 = base;
  c9.opset = 9;
  c9.weights_as_constants = true;
  ZooOptions c11 = c9;
  c11.opset = 11;
  ZooOptions v17;
  v17.opset = 17;
  ZooOptions v20 = v17;
  v20.opset = 20;
  // Outputs that are not class scores (a map, per-step probabilities, an embedding), weights as
  // Constant nodes, symbolic H and W; opset 18 takes the Reduce ops' axes as an input.
  ZooOptions cd = base;
  cd.weights_as_constants = true;
  cd.dynamic_hw = true;
  cd.opset = 13;
  ZooOptions cd18 = cd;
  cd18.opset = 18;
  const std::vector<int64_t> mnist = {3, 1, 28, 28};
  return {
      {"resnet20_dynamic_hw", zoo("resnet20", dyn, "resnet20"), {mnist, {2, 1, 32, 40}}},
      {"mobilenetv2_hardswish", zoo("mobilenetv2", hs, "mbv2_hs"), {mnist}},
      {"mobilenetv2_relu6_constants_op11", zoo("mobilenetv2", c11, "mbv2_c11"), {mnist}},
      {"cnn_constants_op9", zoo("cnn", c9, "cnn_c9"), {mnist}},
      {"resnet20_constants_op11", zoo("resnet20", c11, "resnet_c11"), {mnist}},
      {"vit_erf_gelu_op17", zoo("vit", v17, "vit17"), {mnist}},
      {"vit_gelu_op20", zoo("vit", v20, "vit20"), {mnist}},
      {"detector_constants_dynamic_hw", zoo("detector", cd, "det"), {mnist, {2, 1, 20, 24}}},
      {"seqnet_constants_dynamic_hw", zoo("seqnet", cd, "seq"), {mnist, {2, 1, 20, 24}}},
      {"seqnet_constants_dynamic_hw_op18", zoo("seqnet", cd18, "seq18"), {mnist, {2, 1, 20, 24}}},
      {"embednet_constants_dynamic_hw_op18",
       zoo("embednet", cd18, "emb18"),
       {mnist, {2, 1, 20, 24}}},
      {"torch_resnet_op9", checked_in("torch_resnet_op9.onnx"), {mnist, {1, 1, 20, 24}}},
      {"torch_resnet_op11", checked_in("torch_resnet_op11.onnx"), {mnist}},
      {"torch_resnet_op13", checked_in("torch_resnet_op13.onnx"), {mnist}},
      {"torch_mobile_op14", checked_in("torch_mobile_op14.onnx"), {mnist, {2, 1, 32, 32}}},
      {"torch_mobile_op17", checked_in("torch_mobile_op17.onnx"), {mnist}},
      {"torch_transformer_op17", checked_in("torch_transformer_op17.onnx"), {mnist}},
      {"tf2onnx_cnn_op9",
       [](const std::string& d) { return write(test::tf2onnx_style_cnn(9), d, "tf9"); },
       {{3, 28, 28, 1}}},
      {"tf2onnx_cnn_op13",
       [](const std::string& d) { return write(test::tf2onnx_style_cnn(13), d, "tf13"); },
       {{3, 28, 28, 1}}},
  };
}

class OrtTest : public ::testing::TestWithParam<OrtCase> {};

TEST_P(OrtTest, OutputsMatchOnnxRuntime) {
  std::string why;
  ASSERT_TRUE(onnxruntime_available(&why)) << why;
  const OrtCase& c = GetParam();
  std::string dir = test::temp_dir();
  std::string path = c.make(dir);
  Graph g = import_onnx(path);
  Executor exec(g);
  at::manual_seed(11);
  for (const auto& shape : c.shapes) {
    at::Tensor x = at::randn(shape);
    std::vector<at::Tensor> ours;
    {
      at::NoGradGuard no_grad;
      ours = exec.run({x});
    }
    std::vector<at::Tensor> theirs = run_onnxruntime(path, {x});
    ASSERT_EQ(ours.size(), theirs.size());
    for (size_t o = 0; o < ours.size(); ++o) {
      ASSERT_EQ(ours[o].sizes(), theirs[o].sizes()) << c.name;
      double scale = std::max(1.0, theirs[o].abs().max().item<double>());
      double diff =
          (ours[o].to(at::kDouble) - theirs[o].to(at::kDouble)).abs().max().item<double>();
      EXPECT_LE(diff, 1e-4 * scale) << c.name << " output " << o << " at input shape " << x.sizes();
      std::printf("[ort] %-34s %-14s max|diff| %.3g (scale %.3g)\n", c.name.c_str(),
                  c10::str(x.sizes()).c_str(), diff, scale);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OrtTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mpq
