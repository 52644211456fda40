#include "onnx/passes/fold_batchnorm.h"

#include <ATen/ATen.h>

#include <set>

namespace mpq {
namespace {

int64_t int_attr(const Node& n, const char* name, int64_t fallback) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? fallback : it->second.i;
}

}  // namespace

int fold_batchnorm(Graph* g) {
  int folded = 0;
  std::set<size_t> removed;
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    Node& bn = g->nodes[i];
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || bn.inputs.size() < 5) continue;
    if (int_attr(bn, "training_mode", 0) != 0) continue;
    // Extra outputs (running statistics in training graphs) keep the node as it is.
    bool extra_outputs = false;
    for (size_t o = 1; o < bn.outputs.size(); ++o) extra_outputs |= !bn.outputs[o].empty();
    if (extra_outputs || int_attr(bn, "spatial", 1) != 1) continue;
    bool constant_params = true;
    for (size_t k = 1; k < 5; ++k) constant_params &= g->is_initializer(bn.inputs[k]);
    if (!constant_params) continue;
    int64_t p = g->producer(bn.inputs[0]);
    if (p < 0) continue;
    Node& conv = g->nodes[size_t(p)];
    bool is_conv = (conv.op_type == "Conv" || conv.op_type == "ConvTranspose") &&
                   conv.domain.empty() && conv.inputs.size() >= 2 &&
                   g->is_initializer(conv.inputs[1]);
    if (!is_conv || g->consumers(conv.outputs[0]).size() != 1 ||
        g->is_graph_output(conv.outputs[0]))
      continue;
    bool has_bias = conv.inputs.size() >= 3 && !conv.inputs[2].empty();
    if (has_bias && !g->is_initializer(conv.inputs[2])) continue;
    // Weights shared with another node cannot change under it.
    auto shared = [&](const std::string& name) { return g->consumers(name).size() != 1; };
    if (shared(conv.inputs[1]) || (has_bias && shared(conv.inputs[2]))) continue;

    at::Tensor w = g->initializers.at(conv.inputs[1]);
    double eps = bn.attrs.count("epsilon") ? bn.attrs.at("epsilon").f : 1e-5;
    at::ScalarType type = w.scalar_type();
    auto param = [&](size_t k) { return g->initializers.at(bn.inputs[k]).to(at::kDouble); };
    at::Tensor scale = param(1) / (param(4) + eps).sqrt();
    at::Tensor beta = param(2), mean = param(3);
    // ONNX ConvTranspose weights are [C_in, C_out / group, k...]: output channels on dim 1.
    int64_t group = int_attr(conv, "group", 1);
    at::Tensor wd = w.to(at::kDouble);
    if (conv.op_type == "Conv") {
      std::vector<int64_t> shape(size_t(w.dim()), 1);
      shape[0] = w.size(0);
      wd = wd * scale.view(shape);
    } else {
      int64_t cin = w.size(0), cout_g = w.size(1);
      std::vector<int64_t> grouped = {group, cin / group, cout_g};
      for (int64_t d = 2; d < w.dim(); ++d) grouped.push_back(w.size(d));
      std::vector<int64_t> sshape(grouped.size(), 1);
      sshape[0] = group;
      sshape[2] = cout_g;
      wd = (wd.view(grouped) * scale.view(sshape)).view(w.sizes());
    }
    at::Tensor b =
        has_bias ? g->initializers.at(conv.inputs[2]).to(at::kDouble) : at::zeros_like(scale);
    at::Tensor bias = (b - mean) * scale + beta;
    g->initializers[conv.inputs[1]] = wd.to(type);
    std::string bias_name = has_bias ? conv.inputs[2] : conv.name + ".folded_bias";
    g->initializers[bias_name] = bias.to(type);
    if (!has_bias) {
      conv.inputs.resize(2);
      conv.inputs.push_back(bias_name);
    }
    conv.outputs[0] = bn.outputs[0];
    removed.insert(i);
    ++folded;
  }
  if (folded == 0) return 0;
  std::vector<Node> kept;
  for (size_t i = 0; i < g->nodes.size(); ++i)
    if (!removed.count(i)) kept.push_back(std::move(g->nodes[i]));
  g->nodes = std::move(kept);
  // BN parameters nobody reads any more.
  std::set<std::string> used;
  for (const auto& n : g->nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = g->initializers.begin(); it != g->initializers.end();)
    it = (used.count(it->first) || g->is_graph_output(it->first)) ? std::next(it)
                                                                  : g->initializers.erase(it);
  return folded;
}

}  // namespace mpq
