// Elementwise kernels: gradients against finite differences (with broadcasting, so that reduced
// gradients are checked too), and the type rules ONNX's node tests leave open: integer
// arithmetic stays in its type (also against 0-dim operands), integer Div truncates, Pow keeps the
// base's type, Mod's two sign conventions and integer division by zero.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "exec/op_test_util.h"

namespace mpq {
namespace {

using test::check_gradient;
using test::int_attr;
using test::single_node_graph;
using test::string_attr;

Graph graph_of(const std::string& op, int num_inputs, int64_t opset = 17,
               const std::map<std::string, Attribute>& attrs = {}) {
  Graph g = single_node_graph(op, num_inputs, 1, opset);
  g.nodes[0].attrs = attrs;
  return g;
}

at::Tensor run_op(const std::string& op, std::vector<at::Tensor> inputs,
                  const std::map<std::string, Attribute>& attrs = {}, int64_t opset = 17) {
  Graph g = graph_of(op, int(inputs.size()), opset, attrs);
  return Executor(g).run(inputs)[0];
}

at::Tensor bools(std::vector<int> v) { return at::tensor(v).to(at::kBool); }

at::Tensor doubles(std::vector<double> v, std::vector<int64_t> shape) {
  return at::tensor(v, at::kDouble).reshape(shape);
}

TEST(ElementwiseOps, GradientsMatchFiniteDifferences) {
  // [2,3] against [3]: the second operand's gradient is summed over the broadcast dimension.
  at::Tensor a = doubles({0.6, 1.7, 2.3, 0.9, 1.2, 3.1}, {2, 3});
  at::Tensor b = doubles({1.4, 0.5, 2.0}, {3});
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum", "Mean"}) {
    SCOPED_TRACE(op);
    check_gradient(graph_of(op, 2), {a, b});
  }
  check_gradient(graph_of("Mod", 2, 17, {{"fmod", int_attr(1)}}), {a, b});
  check_gradient(graph_of("Mean", 3), {a, b, doubles({0.3, -0.2}, {2, 1})});
  for (const char* op : {"Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal"}) {
    SCOPED_TRACE(op);
    check_gradient(graph_of(op, 1), {a});
  }
  check_gradient(graph_of("Where", 3), {bools({1, 0, 1}), a, b});
}

TEST(ElementwiseOps, IntegerArithmeticKeepsItsType) {
  at::Tensor a = at::tensor({7, -7, 9}, at::kInt);
  at::Tensor scalar = at::tensor(2, at::kInt);  // 0-dim, as Constant nodes produce
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum"}) {
    SCOPED_TRACE(op);
    EXPECT_EQ(run_op(op, {a, scalar}).scalar_type(), at::kInt);
    EXPECT_EQ(run_op(op, {scalar, scalar}).scalar_type(), at::kInt);
  }
  at::Tensor u = at::tensor({200, 100}, at::kByte);
  EXPECT_EQ(run_op("Add", {u, u}).scalar_type(), at::kByte);
  at::Tensor h = at::randn({4}).to(at::kHalf);
  EXPECT_EQ(run_op("Mul", {h, at::tensor(2.0).to(at::kHalf)}).scalar_type(), at::kHalf);
}

TEST(ElementwiseOps, IntegerDivTruncatesTowardZero) {
  at::Tensor a = at::tensor({7, -7, 9}, at::kLong);
  EXPECT_TRUE(at::equal(run_op("Div", {a, at::tensor({2, 2, -4}, at::kLong)}),
                        at::tensor({3, -3, -2}, at::kLong)));
  EXPECT_THROW(run_op("Div", {a, at::tensor({2, 0, 1}, at::kLong)}), Error);
}

TEST(ElementwiseOps, PowKeepsTheBaseType) {
  at::Tensor ints = at::tensor({2, 3}, at::kInt);
  at::Tensor y = run_op("Pow", {ints, at::tensor({0.5f, 2.f})});
  EXPECT_EQ(y.scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(y, at::tensor({1, 9}, at::kInt)));
  at::Tensor z = run_op("Pow", {at::tensor({2.f, 3.f}), at::tensor({3, 2}, at::kLong)});
  EXPECT_EQ(z.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(z, at::tensor({8.f, 9.f})));
}

TEST(ElementwiseOps, ModFollowsDivisorOrDividendSign) {
  at::Tensor a = at::tensor({-7, 7, -7}, at::kInt), b = at::tensor({3, -3, -3}, at::kInt);
  EXPECT_TRUE(at::equal(run_op("Mod", {a, b}), at::tensor({2, -2, -1}, at::kInt)));
  EXPECT_TRUE(
      at::equal(run_op("Mod", {a, b}, {{"fmod", int_attr(1)}}), at::tensor({-1, 1, -1}, at::kInt)));
  EXPECT_THROW(run_op("Mod", {a, at::tensor(0, at::kInt)}), Error);
}

TEST(ElementwiseOps, IsInfHonoursItsFlags) {
  float inf = std::numeric_limits<float>::infinity();
  at::Tensor x = at::tensor({-inf, 1.f, inf});
  EXPECT_TRUE(at::equal(run_op("IsInf", {x}), bools({1, 0, 1})));
  EXPECT_TRUE(
      at::equal(run_op("IsInf", {x}, {{"detect_positive", int_attr(0)}}), bools({1, 0, 0})));
  EXPECT_TRUE(
      at::equal(run_op("IsInf", {x}, {{"detect_negative", int_attr(0)}}), bools({0, 0, 1})));
}

// ONNX 1.12's Not node tests are opset 1 models, which mpq does not import.
TEST(ElementwiseOps, LogicOps) {
  at::Tensor a = bools({1, 1, 0, 0}), b = bools({1, 0, 1, 0});
  EXPECT_TRUE(at::equal(run_op("Not", {a}), bools({0, 0, 1, 1})));
  EXPECT_TRUE(at::equal(run_op("And", {a, b}), bools({1, 0, 0, 0})));
  EXPECT_TRUE(at::equal(run_op("Or", {a, b}), bools({1, 1, 1, 0})));
  EXPECT_TRUE(at::equal(run_op("Xor", {a, b}), bools({0, 1, 1, 0})));
}

TEST(ElementwiseOps, BitShiftNeedsADirection) {
  at::Tensor x = at::tensor({16, 3}, at::kByte), s = at::tensor({2, 1}, at::kByte);
  EXPECT_TRUE(at::equal(run_op("BitShift", {x, s}, {{"direction", string_attr("RIGHT")}}),
                        at::tensor({4, 1}, at::kByte)));
  try {
    run_op("BitShift", {x, s}, {{"direction", string_attr("UP")}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected LEFT or RIGHT, found 'UP'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mpq
