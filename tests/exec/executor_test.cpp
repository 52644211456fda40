// The executor on whole models: gradients against finite differences, hooks on weights and
// values, dynamic batch/height/width, and input checks.
#include "exec/executor.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "onnx/builder.h"
#include "onnx/layers.h"
#include "pipeline/zoo.h"

namespace mpq {
namespace {

ZooOptions tiny(const std::string& arch) {
  ZooOptions o;
  o.width_mult = 0.25;
  o.depth = 1;
  o.random_bn = true;
  o.opset = 17;
  o.dynamic_hw = arch != "vit";
  return o;
}

// d/dθ of sum(logits * probe) by autograd vs central differences, in float64, for the input and
// a sample of elements of every weight.
void check_model_gradients(const std::string& arch, at::IntArrayRef input_shape) {
  Graph g = build_zoo_model(arch, tiny(arch));
  g.cast_float_weights(at::kDouble);
  Executor exec(g);
  at::manual_seed(5);
  at::Tensor x = at::randn(input_shape, at::kDouble).requires_grad_(true);
  std::vector<at::Tensor> params;
  for (auto& [name, w] : g.initializers)
    if (w.scalar_type() == at::kDouble) {
      w.requires_grad_(true);
      params.push_back(w);
    }
  at::Tensor probe = at::randn({input_shape[0], 10}, at::kDouble);
  auto objective = [&] { return (exec.run({x})[0] * probe).sum(); };
  objective().backward();
  at::NoGradGuard no_grad;
  const double eps = 1e-6;
  auto numeric = [&](at::Tensor t, int64_t k) {
    at::Tensor flat = t.view({-1});
    double old = flat[k].item<double>();
    flat[k] = old + eps;
    double plus = objective().item<double>();
    flat[k] = old - eps;
    double minus = objective().item<double>();
    flat[k] = old;
    return (plus - minus) / (2 * eps);
  };
  std::vector<at::Tensor> tensors = params;
  tensors.push_back(x);
  int checked = 0;
  for (auto& t : tensors) {
    ASSERT_TRUE(t.grad().defined());
    at::Tensor grad = t.grad().view({-1});
    for (int s = 0; s < 3; ++s) {
      int64_t k = (s * 7919) % t.numel();
      double a = grad[k].item<double>(), n = numeric(t, k);
      EXPECT_NEAR(a, n, 1e-5 * std::max(1.0, std::abs(n))) << arch << " element " << k;
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

TEST(Executor, GradientsMatchFiniteDifferencesResNet) {
  check_model_gradients("resnet20", {2, 1, 12, 12});
}
TEST(Executor, GradientsMatchFiniteDifferencesMobileNet) {
  check_model_gradients("mobilenetv2", {2, 1, 12, 12});
}
TEST(Executor, GradientsMatchFiniteDifferencesTransformer) {
  check_model_gradients("vit", {2, 1, 28, 28});
}

TEST(Executor, WeightHookReplacesWeight) {
  Graph g = build_zoo_model("cnn", tiny("cnn"));
  Executor exec(g);
  auto layers = find_quantizable_layers(g);
  const auto& fc = layers.back();
  at::Tensor x = at::randn({2, 1, 28, 28});
  at::NoGradGuard no_grad;
  at::Tensor before = exec.run({x})[0];
  int calls = 0;
  exec.set_weight_hook(fc.weight, [&](const std::string& name, const at::Tensor& w) {
    EXPECT_EQ(name, fc.weight);
    ++calls;
    return at::zeros_like(w);
  });
  at::Tensor after = exec.run({x})[0];
  EXPECT_EQ(calls, 1);
  // With a zero weight the logits are the bias for every sample.
  at::Tensor bias = g.initializers.at(fc.bias);
  EXPECT_TRUE(at::allclose(after, bias.expand_as(after)));
  EXPECT_FALSE(at::allclose(before, after));
  exec.clear_hooks();
  EXPECT_TRUE(at::equal(exec.run({x})[0], before));
}

TEST(Executor, ValueHookSeesAndReplacesActivations) {
  Graph g = build_zoo_model("resnet20", tiny("resnet20"));
  Executor exec(g);
  auto layers = find_quantizable_layers(g);
  std::string first = g.nodes[size_t(layers[0].node)].outputs[0];
  at::Tensor seen;
  exec.set_value_hook(first, [&](const std::string&, const at::Tensor& v) {
    seen = v;
    return v * 0;
  });
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({3, 1, 16, 16});
  at::Tensor y1 = exec.run({x})[0];
  ASSERT_TRUE(seen.defined());
  EXPECT_EQ(seen.size(0), 3);
  // The first conv's output is zeroed, so the logits no longer depend on the input.
  at::Tensor y2 = exec.run({at::randn({3, 1, 16, 16})})[0];
  EXPECT_TRUE(at::allclose(y1, y2));
}

TEST(Executor, DynamicBatchAndSpatialSizes) {
  Graph g = build_zoo_model("resnet20", tiny("resnet20"));
  Executor exec(g);
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({5, 1, 20, 24});
  at::Tensor all = exec.run({x})[0];
  at::Tensor one = exec.run({x.slice(0, 2, 3)})[0];
  EXPECT_TRUE(at::allclose(all.slice(0, 2, 3), one, 1e-5, 1e-6));
  EXPECT_EQ(exec.run({at::randn({1, 1, 9, 31})})[0].sizes(), (std::vector<int64_t>{1, 10}));
}

TEST(Executor, InputShapeMismatchIsAClearError) {
  ZooOptions o;
  o.width_mult = 0.25;
  Graph g = build_zoo_model("cnn", o);
  Executor exec(g);
  try {
    exec.run({at::randn({2, 3, 28, 28})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("input 'input'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[N,1,28,28]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3, 28, 28]"), std::string::npos) << msg;
  }
  EXPECT_THROW(exec.run({at::randn({2, 1, 28, 28}), at::randn({1})}), Error);
}

// In inference, activations and adds may write into a dead input; a view of it that is still
// read, a graph input and a weight must never change.
TEST(Executor, InPlaceKernelsRespectViewsInputsAndWeights) {
  GraphBuilder b("inplace", 13);
  std::string x = b.input("x", {int64_t(2), int64_t(3), int64_t(4), int64_t(4)});
  std::string y = b.node("Add", {x, b.weight("c", at::full({1}, 0.25))});
  std::string v = b.node("Reshape", {y, b.constant("s", at::tensor(std::vector<int64_t>{2, -1}))});
  std::string z = b.node("Clip", {y, b.constant("lo", at::scalar_tensor(0.f)),
                                  b.constant("hi", at::scalar_tensor(0.5f))});
  std::string zf =
      b.node("Reshape", {z, b.constant("s2", at::tensor(std::vector<int64_t>{2, -1}))});
  b.output(b.node("Sub", {zf, v}));
  b.output(b.node("Relu", {x}));
  Graph g = b.build();
  at::Tensor input = at::randn({2, 3, 4, 4});
  at::Tensor before = input.clone(), weight = g.initializers.at("c").clone();
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> out = Executor(g).run({input});
  at::Tensor yy = (before + 0.25).reshape({2, -1});
  EXPECT_TRUE(at::allclose(out[0], yy.clamp(0, 0.5) - yy));
  EXPECT_TRUE(at::equal(out[1], before.relu()));
  EXPECT_TRUE(at::equal(input, before));
  EXPECT_TRUE(at::equal(g.initializers.at("c"), weight));
}

TEST(Executor, KernelFailuresNameTheNode) {
  GraphBuilder b("bad_shapes", 13);
  std::string x = b.input("a", {std::string("N"), std::string("K")});
  std::string y = b.input("b", {std::string("K2"), int64_t(5)});
  b.output(b.node("MatMul", {x, y}, {}, "mm_node"));
  Graph g = b.build();
  try {
    Executor(g).run({at::randn({2, 3}), at::randn({4, 5})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("node 'mm_node' (MatMul)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(OpTable, EveryRowResolvesAndIssueOpsArePresent) {
  const OpRegistry& ops = OpRegistry::builtin();
  for (const auto& row : ops.rows()) {
    EXPECT_EQ(ops.find(row.op, row.since), &row) << row.op;
    EXPECT_NE(row.kernel, nullptr) << row.op;
  }
  // The ops the foundation issue names, at the newest opset mpq imports.
  for (const char* op : {"Conv",
                         "ConvTranspose",
                         "Gemm",
                         "MatMul",
                         "BatchNormalization",
                         "Relu",
                         "LeakyRelu",
                         "PRelu",
                         "Clip",
                         "Sigmoid",
                         "HardSigmoid",
                         "HardSwish",
                         "Tanh",
                         "Erf",
                         "Gelu",
                         "Softmax",
                         "LogSoftmax",
                         "Add",
                         "Sub",
                         "Mul",
                         "Div",
                         "Pow",
                         "Sqrt",
                         "Exp",
                         "Log",
                         "Neg",
                         "Abs",
                         "Reciprocal",
                         "Min",
                         "Max",
                         "Sum",
                         "Mean",
                         "MaxPool",
                         "AveragePool",
                         "GlobalAveragePool",
                         "GlobalMaxPool",
                         "Flatten",
                         "Reshape",
                         "Transpose",
                         "Concat",
                         "Split",
                         "Slice",
                         "Squeeze",
                         "Unsqueeze",
                         "Gather",
                         "Shape",
                         "Cast",
                         "Constant",
                         "ConstantOfShape",
                         "Identity",
                         "Dropout",
                         "Resize",
                         "Pad",
                         "ReduceMean",
                         "ReduceSum",
                         "ReduceMax",
                         "ReduceMin",
                         "LayerNormalization",
                         "Expand",
                         "Where",
                         "Equal",
                         "Less",
                         "Greater",
                         "Not",
                         "Range",
                         "Tile",
                         "Einsum",
                         "QuantizeLinear",
                         "DequantizeLinear"}) {
    EXPECT_NE(ops.find(op, 21), nullptr) << op;
  }
  EXPECT_NE(ops.find("Upsample", 9), nullptr);
}

}  // namespace
}  // namespace mpq
