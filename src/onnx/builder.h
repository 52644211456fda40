// GraphBuilder writes ONNX graphs in code: inputs with symbolic dimensions, weights as
// initializers or as Constant nodes (the paddle2onnx style), nodes with attributes. The model zoo
// and the tests build their models with it. Example:
//   GraphBuilder b("tiny", 17);
//   auto x = b.input("x", {"N", 1, 28, 28});
//   auto y = b.node("Relu", {x});
//   b.output(y);
//   Graph g = b.build();
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

using Attrs = std::map<std::string, Attribute>;
Attribute attr(int64_t v);
Attribute attr(int v);
Attribute attr(double v);
Attribute attr(const std::string& v);
Attribute attr(const char* v);
Attribute attr(const std::vector<int64_t>& v);
Attribute attr(const std::vector<double>& v);
Attribute attr(const at::Tensor& v);

// A declared dimension: a number or a symbolic name such as "N".
using DimSpec = std::variant<int64_t, std::string>;

class GraphBuilder {
 public:
  GraphBuilder(std::string name, int64_t opset);

  // Weights go to Constant nodes instead of initializers from now on (paddle2onnx style).
  void set_weights_as_constants(bool on) { weights_as_constants_ = on; }
  int64_t opset() const { return graph_.opsets.at(""); }

  std::string input(const std::string& name, const std::vector<DimSpec>& shape,
                    int32_t elem_type = 1);
  // A weight tensor, stored as initializer or Constant node per the current mode.
  std::string weight(const std::string& name, const at::Tensor& value);
  // A small constant (shapes, axes, scalars), always a Constant node.
  std::string constant(const std::string& name, const at::Tensor& value);
  // Adds a node and returns its outputs (named "<node>_out<k>", or "<node>" for one output).
  std::vector<std::string> node_n(const std::string& op, const std::vector<std::string>& inputs,
                                  int num_outputs, const Attrs& attrs = {},
                                  const std::string& name = "");
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const Attrs& attrs = {}, const std::string& name = "");
  void output(const std::string& value, const std::vector<DimSpec>& shape = {},
              int32_t elem_type = 1);
  void set_metadata(const std::string& key, const std::string& value);

  // A name not used yet, from a prefix.
  std::string unique(const std::string& prefix);

  Graph build();

 private:
  Graph graph_;
  bool weights_as_constants_ = false;
  std::map<std::string, int> used_;
};

}  // namespace mpq
