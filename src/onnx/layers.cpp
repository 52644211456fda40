#include "onnx/layers.h"

namespace mpq {

std::vector<QuantLayer> find_quantizable_layers(const Graph& g) {
  std::vector<QuantLayer> layers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty()) continue;
    auto init = [&](size_t k) { return k < n.inputs.size() && g.is_initializer(n.inputs[k]); };
    QuantLayer l;
    l.node = int64_t(i);
    l.name = n.name;
    l.op = n.op_type;
    if (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm") {
      if (!init(1)) continue;
      if (n.op_type == "Gemm" && init(0)) continue;  // both constant: not a layer
      l.weight = n.inputs[1];
      if (init(2)) l.bias = n.inputs[2];
    } else if (n.op_type == "MatMul") {
      // x @ W (the usual form) or W @ x; a product of two activations is not a layer.
      if (init(1) && !init(0)) {
        l.weight_input = 1;
      } else if (init(0) && !init(1)) {
        l.weight_input = 0;
      } else {
        continue;
      }
      l.weight = n.inputs[size_t(l.weight_input)];
      if (g.initializers.at(l.weight).dim() < 2) continue;
    } else {
      continue;
    }
    layers.push_back(l);
  }
  return layers;
}

}  // namespace mpq
