// Quantizable layers (methods.md, shared notation): Conv, ConvTranspose, Gemm and MatMul nodes
// whose weight operand is a constant (an initializer, Constant nodes already folded). Every
// later stage (sensitivity, search, quantization) addresses layers through this list.
#pragma once

#include <string>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

struct QuantLayer {
  int64_t node = -1;         // index into Graph::nodes
  std::string name;          // node name
  std::string op;            // Conv, ConvTranspose, Gemm, MatMul
  std::string weight;        // initializer name
  int64_t weight_input = 1;  // which node input is the weight
  std::string bias;          // initializer name, or ""
};

// In graph order. Example: for (const auto& l : find_quantizable_layers(g)) ...
std::vector<QuantLayer> find_quantizable_layers(const Graph& graph);

}  // namespace mpq
