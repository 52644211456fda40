// Activation kernels: gradients against finite differences, and the behaviour ONNX's node tests
// (ONNX 1.12, opsets up to 17) do not reach: the opset 13 change of the softmax axis, Gelu and
// Mish, integer Clip, ties in Hardmax and rejected attribute values.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "exec/op_test_util.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace {

using test::check_gradient;
using test::float_attr;
using test::int_attr;
using test::single_node_graph;
using test::string_attr;

Graph graph_of(const std::string& op, int num_inputs, int64_t opset,
               const std::map<std::string, Attribute>& attrs = {}) {
  Graph g = single_node_graph(op, num_inputs, 1, opset);
  g.nodes[0].attrs = attrs;
  return g;
}

at::Tensor run_op(const std::string& op, std::vector<at::Tensor> inputs, int64_t opset = 17,
                  const std::map<std::string, Attribute>& attrs = {}) {
  Graph g = graph_of(op, int(inputs.size()), opset, attrs);
  return Executor(g).run(inputs)[0];
}

// Values away from every kink the tested ops have (0, +-1, +-2.5, +-3 and the Clip bounds).
at::Tensor smooth_points() {
  return at::tensor({-3.4, -2.2, -1.3, -0.4, 0.3, 0.7, 1.6, 2.7}, at::kDouble).reshape({2, 4});
}

struct GradCase {
  std::string op;
  int64_t opset;
  std::map<std::string, Attribute> attrs;
};

TEST(ActivationOps, GradientsMatchFiniteDifferences) {
  const std::vector<GradCase> cases = {
      {"Relu", 17, {}},
      {"LeakyRelu", 17, {{"alpha", float_attr(0.1)}}},
      {"Clip", 7, {{"min", float_attr(-2.0)}, {"max", float_attr(1.0)}}},
      {"Sigmoid", 17, {}},
      {"HardSigmoid", 17, {{"alpha", float_attr(0.3)}, {"beta", float_attr(0.4)}}},
      {"HardSwish", 17, {}},
      {"Tanh", 17, {}},
      {"Erf", 17, {}},
      {"Gelu", 20, {}},
      {"Gelu", 20, {{"approximate", string_attr("tanh")}}},
      {"Softmax", 11, {{"axis", int_attr(0)}}},
      {"Softmax", 17, {{"axis", int_attr(0)}}},
      {"LogSoftmax", 11, {}},
      {"LogSoftmax", 17, {}},
      {"Elu", 17, {{"alpha", float_attr(0.5)}}},
      {"Selu", 17, {}},
      {"Softplus", 17, {}},
      {"Softsign", 17, {}},
      {"ThresholdedRelu", 17, {{"alpha", float_attr(0.5)}}},
      {"Celu", 17, {{"alpha", float_attr(2.0)}}},
      {"Mish", 18, {}},
      {"Sin", 17, {}},
      {"Cos", 17, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op + " opset " + std::to_string(c.opset));
    check_gradient(graph_of(c.op, 1, c.opset, c.attrs), {smooth_points()});
  }
}

TEST(ActivationOps, GradientsReachSlopeAndClipBounds) {
  at::Tensor x = smooth_points();
  check_gradient(graph_of("PRelu", 2, 17), {x, at::tensor({0.2, -0.3, 0.5, 1.5}, at::kDouble)});
  check_gradient(graph_of("Clip", 3, 13),
                 {x, at::tensor(-2.0, at::kDouble), at::tensor(1.0, at::kDouble)});
}

// ONNX 1.12's node tests for these ops are opset 1 or 6 models, which mpq does not import; their
// reference data is run here through the same op at opset 7, where its semantics are unchanged.
TEST(ActivationOps, MatchesOldOpsetNodeTestData) {
  const std::string root = "/usr/share/libonnx-testdata/data/node/";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "libonnx-testdata is not installed";
  struct DataCase {
    std::string name, op;
    std::map<std::string, Attribute> attrs;
  };
  const std::vector<DataCase> cases = {
      {"test_elu", "Elu", {{"alpha", float_attr(2.0)}}},
      {"test_elu_example", "Elu", {{"alpha", float_attr(2.0)}}},
      {"test_elu_default", "Elu", {}},
      {"test_hardsigmoid", "HardSigmoid", {{"alpha", float_attr(0.5)}, {"beta", float_attr(0.6)}}},
      {"test_hardsigmoid_example",
       "HardSigmoid",
       {{"alpha", float_attr(0.5)}, {"beta", float_attr(0.6)}}},
      {"test_hardsigmoid_default", "HardSigmoid", {}},
      {"test_selu", "Selu", {{"alpha", float_attr(2.0)}, {"gamma", float_attr(3.0)}}},
      {"test_selu_example", "Selu", {{"alpha", float_attr(2.0)}, {"gamma", float_attr(3.0)}}},
      {"test_selu_default", "Selu", {}},
      {"test_softplus", "Softplus", {}},
      {"test_softplus_example", "Softplus", {}},
      {"test_softsign", "Softsign", {}},
      {"test_softsign_example", "Softsign", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string set = root + c.name + "/test_data_set_0/";
    at::Tensor x = load_tensor_pb(set + "input_0.pb");
    at::Tensor want = load_tensor_pb(set + "output_0.pb");
    at::Tensor got = run_op(c.op, {x}, 7, c.attrs);
    EXPECT_EQ(got.scalar_type(), want.scalar_type());
    EXPECT_TRUE(at::allclose(got, want, 1e-3, 1e-7));
  }
}

TEST(ActivationOps, SoftmaxAxisBeforeOpset13CoversTrailingDims) {
  at::Tensor x = at::randn({2, 3, 4}, at::kDouble);
  // Opset 11: the input is viewed as [2, 12] and normalised over all 12 trailing values.
  at::Tensor legacy = run_op("Softmax", {x}, 11);
  EXPECT_TRUE(at::allclose(legacy, at::softmax(x.reshape({2, 12}), 1).reshape({2, 3, 4})));
  // Opset 13: only the last axis (the new default).
  EXPECT_TRUE(at::allclose(run_op("Softmax", {x}, 13), at::softmax(x, -1)));
  EXPECT_TRUE(
      at::allclose(run_op("LogSoftmax", {x}, 13, {{"axis", int_attr(1)}}), at::log_softmax(x, 1)));
}

TEST(ActivationOps, HardmaxPicksFirstOfTiedMaxima) {
  at::Tensor x = at::tensor({1.0f, 3.0f, 3.0f, 0.0f, 2.0f, 2.0f, 2.0f, 2.0f}).reshape({2, 4});
  at::Tensor want = at::tensor({0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f}).reshape({2, 4});
  EXPECT_TRUE(at::equal(run_op("Hardmax", {x}, 13), want));
  // Opset 11, axis 0: one maximum over the whole flattened tensor.
  at::Tensor flat = at::zeros({2, 4});
  flat[0][1] = 1;
  EXPECT_TRUE(at::equal(run_op("Hardmax", {x}, 11, {{"axis", int_attr(0)}}), flat));
}

TEST(ActivationOps, GeluModesMatchTheirFormulas) {
  at::Tensor x = at::linspace(-4, 4, 17, at::kDouble);
  at::Tensor exact = 0.5 * x * (1 + at::erf(x / std::sqrt(2.0)));
  at::Tensor tanh = 0.5 * x * (1 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
  EXPECT_TRUE(at::allclose(run_op("Gelu", {x}, 20), exact));
  EXPECT_TRUE(at::allclose(run_op("Gelu", {x}, 20, {{"approximate", string_attr("tanh")}}), tanh));
  EXPECT_TRUE(at::allclose(run_op("Mish", {x}, 18), x * at::tanh(at::log1p(at::exp(x)))));
}

TEST(ActivationOps, RejectsUnknownGeluApproximation) {
  at::Tensor x = at::zeros({2});
  try {
    run_op("Gelu", {x}, 20, {{"approximate", string_attr("sigmoid")}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected none or tanh, found sigmoid"), std::string::npos)
        << e.what();
  }
}

TEST(ActivationOps, ClipKeepsIntegerTypeAndTakesOneBound) {
  at::Tensor x = at::tensor({-5, 0, 7, 12}, at::kInt);
  at::Tensor y = run_op("Clip", {x, at::tensor(0, at::kInt), at::tensor(10, at::kInt)}, 13);
  EXPECT_EQ(y.scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(y, at::tensor({0, 0, 7, 10}, at::kInt)));
  // Only max given (min omitted with an empty name).
  Graph g = graph_of("Clip", 3, 13);
  g.nodes[0].inputs[1] = "";
  g.inputs.erase(g.inputs.begin() + 1);
  at::Tensor f = at::tensor({-5.f, 0.f, 7.f});
  EXPECT_TRUE(at::equal(Executor(g).run({f, at::tensor(1.f)})[0], at::tensor({-5.f, 0.f, 1.f})));
}

TEST(ActivationOps, PReluBroadcastsSlopeOnlyTowardTheInput) {
  at::Tensor x = at::tensor({-1.f, 2.f, -3.f, 4.f, -5.f, 6.f}).reshape({2, 3});
  at::Tensor slope = at::tensor({0.5f, 1.f, 2.f});
  EXPECT_TRUE(at::equal(run_op("PRelu", {x, slope}),
                        at::tensor({-0.5f, 2.f, -6.f, 4.f, -5.f, 6.f}).reshape({2, 3})));
  EXPECT_THROW(run_op("PRelu", {x, at::ones({4, 2, 3})}), Error);
}

TEST(ActivationOps, KeepsTypesAndRoundsHalfToEven) {
  at::Tensor i = at::tensor({-2, 0, 3}, at::kInt);
  EXPECT_EQ(run_op("Erf", {i}).scalar_type(), at::kInt);
  EXPECT_EQ(run_op("Relu", {i}).scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(run_op("Sign", {i}), at::tensor({-1, 0, 1}, at::kInt)));
  at::Tensor halves = at::tensor({-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f});
  EXPECT_TRUE(at::equal(run_op("Round", {halves}), at::tensor({-2.f, -2.f, -0.f, 0.f, 2.f, 2.f})));
}

// ATen 1.13 lacks most float16 CPU kernels; the kernels compute those in float32.
TEST(ActivationOps, ReducedPrecisionInputsWorkOnCpu) {
  at::Tensor x = at::randn({3, 4});
  for (at::ScalarType type : {at::kHalf, at::kBFloat16}) {
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "Softmax", "Mish",
                           "Gelu", "Round", "Erf"}) {
      SCOPED_TRACE(std::string(op) + " " + at::toString(type));
      at::Tensor reduced = x.to(type);
      at::Tensor y = run_op(op, {reduced}, 20);
      EXPECT_EQ(y.scalar_type(), type);
      at::Tensor want = run_op(op, {reduced.to(at::kFloat)}, 20);
      EXPECT_TRUE(at::allclose(y.to(at::kFloat), want, 1e-2, 1e-2));
    }
  }
}

}  // namespace
}  // namespace mpq
