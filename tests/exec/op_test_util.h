// Helpers for op tests: a graph holding one node, and a finite-difference check of the
// executor's gradients against autograd.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/graph.h"

namespace mpq::test {

// A graph with one node `op` reading inputs x0..xN-1 (double, declared without shape) and
// producing outputs y0..yM-1. Attributes are set on the returned graph's node.
inline Graph single_node_graph(const std::string& op, int num_inputs, int num_outputs = 1,
                               int64_t opset = 17) {
  Graph g;
  g.source = "test";
  g.opsets[""] = opset;
  Node node;
  node.name = op + "_0";
  node.op_type = op;
  for (int i = 0; i < num_inputs; ++i) {
    std::string name = "x" + std::to_string(i);
    node.inputs.push_back(name);
    ValueInfo vi;
    vi.name = name;
    g.inputs.push_back(vi);
  }
  for (int o = 0; o < num_outputs; ++o) {
    node.outputs.push_back("y" + std::to_string(o));
    ValueInfo vi;
    vi.name = node.outputs.back();
    g.outputs.push_back(vi);
  }
  g.nodes.push_back(node);
  return g;
}

// Short names for the builder's attribute constructors (onnx/builder.h).
inline Attribute int_attr(int64_t v) { return attr(v); }
inline Attribute float_attr(double v) { return attr(v); }
inline Attribute ints_attr(std::vector<int64_t> v) { return attr(v); }
inline Attribute string_attr(std::string v) { return attr(v); }

// Compares autograd's gradient of sum(output_0 * fixed random weights) with respect to every
// floating-point input (float64) against central finite differences. Inputs that are not
// floating point (indices, shapes) are passed through unchanged.
inline void check_gradient(const Graph& graph, std::vector<at::Tensor> inputs, double eps = 1e-6,
                           double tol = 1e-5) {
  Executor exec(graph);
  at::manual_seed(0);
  at::Tensor probe;
  auto objective = [&](const std::vector<at::Tensor>& xs) {
    at::Tensor y = exec.run(xs)[0];
    if (!probe.defined()) probe = at::randn(y.sizes(), y.options().requires_grad(false));
    return (y * probe).sum();
  };
  std::vector<at::Tensor> leaves;
  for (auto& x : inputs) {
    if (at::isFloatingType(x.scalar_type())) x = x.to(at::kDouble).detach().requires_grad_(true);
    leaves.push_back(x);
  }
  at::Tensor loss = objective(leaves);
  loss.backward();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!at::isFloatingType(leaves[i].scalar_type())) continue;
    ASSERT_TRUE(leaves[i].grad().defined()) << "no gradient reached input " << i;
    at::Tensor analytic = leaves[i].grad();
    at::Tensor numeric = at::zeros_like(leaves[i]);
    at::Tensor flat = leaves[i].detach().clone().reshape(-1);
    for (int64_t k = 0; k < flat.numel(); ++k) {
      std::vector<at::Tensor> plus(leaves.begin(), leaves.end()), minus = plus;
      at::Tensor p = flat.clone(), m = flat.clone();
      p[k] += eps;
      m[k] -= eps;
      plus[i] = p.reshape(leaves[i].sizes());
      minus[i] = m.reshape(leaves[i].sizes());
      double d = (objective(plus).item<double>() - objective(minus).item<double>()) / (2 * eps);
      numeric.reshape(-1)[k] = d;
    }
    double err = (analytic - numeric).abs().max().item<double>();
    double scale = std::max(1.0, numeric.abs().max().item<double>());
    EXPECT_LT(err / scale, tol) << "input " << i << ": autograd " << analytic << " vs numeric "
                                << numeric;
  }
}

}  // namespace mpq::test
