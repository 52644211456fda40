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

namespace mpq {

// Layers that may have to take the same bit width (the search's tied groups), by layer name,
// each group in graph order with at least two members:
//   same_input  layers that read the same tensor (a residual block's downsample conv and the
//               conv beside it): one activation quantizer serves both;
//   add/concat  layers whose outputs meet at an Add / Concat, followed back through ops that keep
//               the scale relation (BatchNormalization, Relu, Clip, Identity, Reshape, Flatten,
//               Transpose, Squeeze, Unsqueeze): hardware that adds or concatenates integers needs
//               equal scales there. Whether a target ties them is the target's choice.
struct LayerTies {
  std::vector<std::vector<std::string>> same_input, add, concat;
};
LayerTies find_layer_ties(const Graph& graph);

}  // namespace mpq
