#include "pipeline/inspect.h"

#include <ATen/ATen.h>

#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/layers.h"
#include "onnx/tensor_proto.h"

namespace mpq {

std::vector<std::vector<int64_t>> infer_input_shapes(const Graph& g) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& in : g.inputs) {
    MPQ_CHECK(in.has_shape, g.source, ": input '", in.name,
              "' declares no shape; give one with --input-shape");
    std::vector<int64_t> shape;
    for (size_t d = 0; d < in.shape.size(); ++d) {
      if (in.shape[d].fixed()) {
        shape.push_back(in.shape[d].value);
      } else {
        MPQ_CHECK(d == 0, g.source, ": input '", in.name, "' dimension ", d, " is symbolic ('",
                  in.shape[d].param, "'); give the shape with --input-shape");
        shape.push_back(1);
      }
    }
    shapes.push_back(shape);
  }
  return shapes;
}

Graph with_sample_shape(const Graph& graph, const std::vector<int64_t>& sample_shape) {
  Graph g = graph;
  if (g.inputs.size() != 1 || !g.inputs[0].has_shape ||
      g.inputs[0].shape.size() != sample_shape.size() + 1)
    return g;
  for (size_t d = 1; d < g.inputs[0].shape.size(); ++d) {
    Dim& dim = g.inputs[0].shape[d];
    if (!dim.fixed()) dim = Dim{sample_shape[d - 1], ""};
  }
  return g;
}

namespace {
int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
}  // namespace

ModelSummary inspect_model(const Graph& g, const std::vector<std::vector<int64_t>>& given) {
  ModelSummary s;
  s.source = g.source;
  s.opset = g.opset();
  for (const auto& n : g.nodes) s.op_counts[n.op_type]++;
  for (const auto& [name, t] : g.initializers) s.total_params += t.numel();
  s.input_shapes = given.empty() ? infer_input_shapes(g) : given;
  MPQ_CHECK(s.input_shapes.size() == g.inputs.size(), g.source, ": expected ", g.inputs.size(),
            " input shape(s), found ", s.input_shapes.size());
  std::vector<at::Tensor> inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    auto& shape = s.input_shapes[i];
    const auto& decl = g.inputs[i];
    // A shape given without the batch dimension gets batch 1.
    if (decl.has_shape && shape.size() + 1 == decl.shape.size()) shape.insert(shape.begin(), 1);
    at::ScalarType type =
        decl.elem_type ? scalar_type_from_onnx(decl.elem_type, g.source) : at::kFloat;
    inputs.push_back(at::zeros(shape, at::TensorOptions(type)));
  }
  std::vector<QuantLayer> layers = find_quantizable_layers(g);
  const int64_t batch = std::max<int64_t>(
      1, s.input_shapes.empty() || s.input_shapes[0].empty() ? 1 : s.input_shapes[0][0]);
  std::vector<std::string> fetch;
  for (const auto& l : layers) {
    const Node& n = g.nodes[size_t(l.node)];
    fetch.push_back(n.inputs[size_t(1 - l.weight_input)]);
    fetch.push_back(n.outputs[0]);
  }
  Executor exec(g);
  std::map<std::string, at::Tensor> named;
  for (size_t i = 0; i < inputs.size(); ++i) named[g.inputs[i].name] = inputs[i];
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> values = exec.run_named(named, fetch);
  for (const auto& l : layers) {
    const Node& n = g.nodes[size_t(l.node)];
    const at::Tensor& w = g.initializers.at(l.weight);
    const at::Tensor& x = values.at(n.inputs[size_t(1 - l.weight_input)]);
    const at::Tensor& y = values.at(n.outputs[0]);
    LayerSummary ls;
    ls.name = l.name;
    ls.op = l.op;
    ls.weight = l.weight;
    ls.weight_shape = w.sizes().vec();
    ls.input_shape = x.sizes().vec();
    ls.output_shape = y.sizes().vec();
    ls.weight_elems = w.numel();
    ls.bias_elems = l.bias.empty() ? 0 : g.initializers.at(l.bias).numel();
    ls.params = ls.weight_elems + ls.bias_elems;
    ls.input_elems = x.numel() / batch;
    ls.output_elems = y.numel() / batch;
    if (l.op == "Conv") {
      ls.out_channels = w.size(0);
    } else if (l.op == "ConvTranspose") {
      int64_t groups = n.attrs.count("group") ? n.attrs.at("group").i : 1;
      ls.out_channels = w.size(1) * groups;
    } else if (l.op == "Gemm") {
      ls.out_channels = n.attrs.count("transB") && n.attrs.at("transB").i ? w.size(0) : w.size(1);
    } else {
      ls.out_channels = l.weight_input == 1 ? w.size(-1) : w.size(-2);
    }
    // Per sample: the whole run's MACs over the input batch. Not y.size(0): transformer layouts
    // put tokens first ([T, N, E]).
    if (l.op == "Conv") {
      // Each output element takes (C_in / groups) * prod(kernel) products: w[1:] exactly.
      ls.macs =
          y.numel() / batch * numel(std::vector<int64_t>(w.sizes().begin() + 1, w.sizes().end()));
    } else if (l.op == "ConvTranspose") {
      ls.macs =
          x.numel() / batch * numel(std::vector<int64_t>(w.sizes().begin() + 1, w.sizes().end()));
    } else if (l.op == "Gemm") {
      int64_t trans_b = n.attrs.count("transB") ? n.attrs.at("transB").i : 0;
      ls.macs = y.numel() * (trans_b ? w.size(1) : w.size(0)) / batch;
    } else {  // MatMul: every output element sums over the shared dimension K
      int64_t k = l.weight_input == 1 ? w.size(-2) : w.size(-1);
      ls.macs = y.numel() * k / batch;
    }
    s.quantizable_params += ls.params;
    s.total_macs += ls.macs;
    s.layers.push_back(ls);
  }
  return s;
}

nlohmann::json to_json(const ModelSummary& s) {
  nlohmann::json j;
  j["model"] = s.source;
  j["opset"] = s.opset;
  j["input_shapes"] = s.input_shapes;
  j["total_params"] = s.total_params;
  j["quantizable_params"] = s.quantizable_params;
  j["total_macs"] = s.total_macs;
  j["op_counts"] = s.op_counts;
  for (const auto& l : s.layers) {
    j["layers"].push_back({{"name", l.name},
                           {"op", l.op},
                           {"weight", l.weight},
                           {"weight_shape", l.weight_shape},
                           {"output_shape", l.output_shape},
                           {"params", l.params},
                           {"weight_elems", l.weight_elems},
                           {"bias_elems", l.bias_elems},
                           {"out_channels", l.out_channels},
                           {"macs", l.macs},
                           {"input_elems", l.input_elems},
                           {"output_elems", l.output_elems}});
  }
  if (s.layers.empty()) j["layers"] = nlohmann::json::array();
  return j;
}

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r;
}
std::string human(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  if (v >= 1e9)
    o << v / 1e9 << "G";
  else if (v >= 1e6)
    o << v / 1e6 << "M";
  else if (v >= 1e3)
    o << v / 1e3 << "K";
  else
    o << std::setprecision(0) << v;
  return o.str();
}
}  // namespace

std::string format_table(const ModelSummary& s) {
  std::ostringstream o;
  o << s.source << " (opset " << s.opset << "), input";
  for (const auto& in : s.input_shapes) o << " " << shape_str(in);
  o << "\n\n";
  size_t w = 5;
  for (const auto& l : s.layers) w = std::max(w, l.name.size());
  o << std::left << std::setw(int(w)) << "layer"
    << "  " << std::setw(14) << "op" << std::setw(16) << "weight" << std::setw(14) << "output"
    << std::right << std::setw(10) << "params" << std::setw(10) << "MACs"
    << "\n";
  for (const auto& l : s.layers) {
    o << std::left << std::setw(int(w)) << l.name << "  " << std::setw(14) << l.op << std::setw(16)
      << shape_str(l.weight_shape) << std::setw(14) << shape_str(l.output_shape) << std::right
      << std::setw(10) << human(double(l.params)) << std::setw(10) << human(double(l.macs)) << "\n";
  }
  o << "\n"
    << s.layers.size() << " quantizable layers, " << human(double(s.quantizable_params)) << " of "
    << human(double(s.total_params)) << " parameters, " << human(double(s.total_macs))
    << " MACs per sample\n";
  return o.str();
}

}  // namespace mpq
