// Reduction kernels: gradients against finite differences, and what ONNX's node tests (ONNX 1.12,
// opsets up to 17) do not reach: axes as an input from opset 18, noop_with_empty_axes, reductions
// over an empty set of values, integer, bool and half inputs, and errors for bad axes.
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
using test::ints_attr;
using test::single_node_graph;

using Attrs = std::map<std::string, Attribute>;

const char* kReductions[] = {"ReduceSum",    "ReduceMean",     "ReduceMax", "ReduceMin",
                             "ReduceProd",   "ReduceL1",       "ReduceL2",  "ReduceSumSquare",
                             "ReduceLogSum", "ReduceLogSumExp"};

Graph graph_of(const std::string& op, int num_inputs, int64_t opset, const Attrs& attrs = {}) {
  Graph g = single_node_graph(op, num_inputs, 1, opset);
  g.nodes[0].attrs = attrs;
  return g;
}

at::Tensor run_op(const std::string& op, const std::vector<at::Tensor>& inputs, int64_t opset,
                  const Attrs& attrs = {}) {
  return Executor(graph_of(op, int(inputs.size()), opset, attrs)).run(inputs)[0];
}

at::Tensor ints(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }

// Distinct positive values, so that extremes have no ties and logarithms are defined.
at::Tensor positive(at::IntArrayRef shape) {
  int64_t n = c10::multiply_integers(shape);
  return (at::arange(n, at::kDouble).mul(0.77).sin() + 1.5).reshape(shape);
}

TEST(ReduceOps, GradientsMatchFiniteDifferences) {
  at::Tensor x = positive({2, 3, 2});
  for (const char* op : kReductions) {
    SCOPED_TRACE(op);
    // Axes as attribute (ReduceSum: input from 13), as input from 18, and everything.
    if (std::string(op) != "ReduceSum")
      check_gradient(graph_of(op, 1, 13, {{"axes", ints_attr({0, -1})}}), {x});
    check_gradient(graph_of(op, 2, 18, {{"keepdims", int_attr(0)}}), {x, ints({1})});
    check_gradient(graph_of(op, 1, 18), {x});
  }
}

TEST(ReduceOps, AxesAndKeepdimsShapeTheOutput) {
  at::Tensor x = positive({2, 3, 4});
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(run_op("ReduceMean", {x}, 13, {{"axes", ints_attr({-1, 0})}}).sizes().vec(),
            (Shape{1, 3, 1}));
  EXPECT_EQ(run_op("ReduceMean", {x, ints({2, 0})}, 18, {{"keepdims", int_attr(0)}}).sizes().vec(),
            Shape{3});
  EXPECT_EQ(run_op("ReduceProd", {x}, 13, {{"keepdims", int_attr(0)}}).dim(), 0);
  at::Tensor prod = run_op("ReduceProd", {x, ints({0, 2})}, 18, {{"keepdims", int_attr(0)}});
  EXPECT_TRUE(at::allclose(prod, x.prod(2).prod(0)));
  // An omitted or empty axes input reduces everything unless noop_with_empty_axes is set.
  EXPECT_EQ(run_op("ReduceSum", {x, ints({})}, 13).sizes().vec(), (Shape{1, 1, 1}));
  EXPECT_TRUE(at::equal(
      run_op("ReduceSum", {x, ints({})}, 13, {{"noop_with_empty_axes", int_attr(1)}}), x));
  // A scalar's reduction over all of its (zero) axes is its one element.
  at::Tensor s = at::scalar_tensor(-2.0, at::kDouble);
  EXPECT_EQ(run_op("ReduceL1", {s}, 13).item<double>(), 2.0);
  EXPECT_EQ(run_op("ReduceSumSquare", {s}, 18).item<double>(), 4.0);
}

TEST(ReduceOps, NoopWithEmptyAxesKeepsTheElementwisePart) {
  at::Tensor x = at::tensor({-2.0, 3.0}, at::kDouble);
  Attrs noop = {{"noop_with_empty_axes", int_attr(1)}};
  auto run = [&](const char* op) { return run_op(op, {x}, 18, noop); };
  EXPECT_TRUE(at::equal(run("ReduceMax"), x));
  EXPECT_TRUE(at::equal(run("ReduceL1"), x.abs()));
  EXPECT_TRUE(at::equal(run("ReduceL2"), x.abs()));
  EXPECT_TRUE(at::equal(run("ReduceSumSquare"), x * x));
  EXPECT_TRUE(at::allclose(run("ReduceLogSumExp"), x));
}

TEST(ReduceOps, EmptySetsGiveTheIdentity) {
  at::Tensor x = at::zeros({2, 0}, at::kFloat);
  auto reduce = [&](const char* op, const at::Tensor& t) {
    return run_op(op, {t}, 13, {{"axes", ints_attr({1})}, {"keepdims", int_attr(0)}});
  };
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(at::equal(run_op("ReduceSum", {x, ints({1})}, 13), at::zeros({2, 1})));
  EXPECT_TRUE(at::equal(reduce("ReduceProd", x), at::ones({2})));
  EXPECT_TRUE(at::equal(reduce("ReduceMax", x), at::full({2}, -inf)));
  EXPECT_TRUE(at::equal(reduce("ReduceMin", x), at::full({2}, inf)));
  EXPECT_TRUE(at::equal(reduce("ReduceLogSumExp", x), at::full({2}, -inf)));
  EXPECT_TRUE(at::equal(reduce("ReduceL2", x), at::zeros({2})));
  EXPECT_TRUE(reduce("ReduceMean", x).isnan().all().item<bool>());
  at::Tensor i = at::zeros({0, 3}, at::kInt);
  EXPECT_TRUE(at::equal(reduce("ReduceMax", i.t()),
                        at::full({3}, std::numeric_limits<int>::lowest(), at::kInt)));
  // Reducing a non-empty axis of an empty tensor gives an empty result.
  EXPECT_EQ(run_op("ReduceMax", {i}, 13, {{"axes", ints_attr({1})}}).sizes().vec(),
            (std::vector<int64_t>{0, 1}));
}

TEST(ReduceOps, KeepsTheInputType) {
  at::Tensor i = at::tensor({3, 4, 6}, at::kInt);
  at::Tensor sum = run_op("ReduceSum", {i}, 11, {{"keepdims", int_attr(0)}});
  EXPECT_EQ(sum.scalar_type(), at::kInt);
  EXPECT_EQ(sum.item<int>(), 13);
  EXPECT_EQ(run_op("ReduceMean", {i}, 11).item<int>(), 4);  // 13 / 3 truncated
  EXPECT_EQ(run_op("ReduceL2", {i}, 11).item<int>(), 7);    // sqrt(61) truncated
  EXPECT_EQ(run_op("ReduceProd", {i}, 11).item<int>(), 72);
  at::Tensor b = at::tensor({0, 1, 0}).to(at::kBool);
  EXPECT_TRUE(at::equal(run_op("ReduceMax", {b}, 20), at::ones({1}, at::kBool)));
  EXPECT_TRUE(at::equal(run_op("ReduceMin", {b}, 20), at::zeros({1}, at::kBool)));
  at::Tensor h = at::tensor({0.5, 1.5, 2.0}).to(at::kHalf);
  for (const char* op : kReductions) {
    SCOPED_TRACE(op);
    at::Tensor y = run_op(op, {h}, 13);
    EXPECT_EQ(y.scalar_type(), at::kHalf);
    at::Tensor want = run_op(op, {h.to(at::kFloat)}, 13);
    EXPECT_TRUE(at::allclose(y.to(at::kFloat), want, 1e-2, 1e-2)) << y << " vs " << want;
  }
}

TEST(ReduceOps, RejectsBadAxes) {
  at::Tensor x = positive({2, 3});
  auto error = [&](const std::vector<at::Tensor>& in, int64_t opset, const Attrs& attrs) {
    try {
      run_op("ReduceMean", in, opset, attrs);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error({x}, 13, {{"axes", ints_attr({2})}}).find("expected an axis in [-2, 1], found 2"),
            std::string::npos);
  EXPECT_NE(error({x, ints({1, -1})}, 18, {}).find("axis 1 is listed twice"), std::string::npos);
}

}  // namespace
}  // namespace mpq
