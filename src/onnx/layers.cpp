#include "onnx/layers.h"

#include <algorithm>
#include <map>
#include <set>

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

namespace mpq {

namespace {

// Ops between a layer and an Add / Concat that do not change which scale the value needs.
bool scale_transparent(const std::string& op) {
  static const char* kOps[] = {
      "BatchNormalization", "Relu",     "Clip", "Identity", "Reshape", "Flatten", "Squeeze",
      "Unsqueeze",          "Transpose"};
  for (const char* o : kOps) {
    if (op == o) return true;
  }
  return false;
}

// Groups with at least two members, each in graph order, ordered by their first member.
std::vector<std::vector<std::string>> tie_groups(const std::map<std::string, std::set<int64_t>>& by,
                                                 const std::vector<QuantLayer>& layers) {
  std::vector<std::vector<std::string>> out;
  std::set<std::vector<int64_t>> seen;
  for (const auto& [key, members] : by) {
    if (members.size() < 2) continue;
    std::vector<int64_t> m(members.begin(), members.end());
    if (!seen.insert(m).second) continue;
    std::vector<std::string> names;
    for (int64_t i : m) names.push_back(layers[size_t(i)].name);
    out.push_back(names);
  }
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    auto pos = [&](const std::string& n) {
      for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i].name == n) return i;
      }
      return layers.size();
    };
    return pos(a[0]) < pos(b[0]);
  });
  return out;
}

}  // namespace

LayerTies find_layer_ties(const Graph& g) {
  std::vector<QuantLayer> layers = find_quantizable_layers(g);
  std::map<int64_t, int64_t> layer_of_node;
  for (size_t i = 0; i < layers.size(); ++i) layer_of_node[layers[i].node] = int64_t(i);

  std::map<std::string, std::set<int64_t>> by_input;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Node& n = g.nodes[size_t(layers[i].node)];
    by_input[n.inputs[size_t(1 - layers[i].weight_input)]].insert(int64_t(i));
  }
  // The layer whose output reaches `value` through scale-transparent ops, or -1.
  auto source_layer = [&](std::string value) -> int64_t {
    for (int hops = 0; hops < 64; ++hops) {
      int64_t p = g.producer(value);
      if (p < 0) return -1;
      auto it = layer_of_node.find(p);
      if (it != layer_of_node.end()) return it->second;
      const Node& n = g.nodes[size_t(p)];
      // A bias added to a MatMul's output (Add with a constant operand) keeps the scale too.
      if (n.op_type == "Add" && n.inputs.size() == 2 && g.is_initializer(n.inputs[1])) {
        value = n.inputs[0];
      } else if (n.op_type == "Add" && n.inputs.size() == 2 && g.is_initializer(n.inputs[0])) {
        value = n.inputs[1];
      } else if (scale_transparent(n.op_type) && !n.inputs.empty()) {
        value = n.inputs[0];
      } else {
        return -1;
      }
    }
    return -1;
  };
  std::map<std::string, std::set<int64_t>> by_add, by_concat;
  for (const Node& n : g.nodes) {
    if (!n.domain.empty() || (n.op_type != "Add" && n.op_type != "Concat")) continue;
    auto& target = n.op_type == "Add" ? by_add : by_concat;
    for (const auto& in : n.inputs) {
      if (in.empty() || g.is_initializer(in)) continue;
      int64_t l = source_layer(in);
      if (l >= 0) target[n.name].insert(l);
    }
  }
  LayerTies t;
  t.same_input = tie_groups(by_input, layers);
  t.add = tie_groups(by_add, layers);
  t.concat = tie_groups(by_concat, layers);
  return t;
}

}  // namespace mpq
