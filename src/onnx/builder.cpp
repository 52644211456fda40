#include "onnx/builder.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "onnx/tensor_proto.h"

namespace mpq {

Attribute attr(int64_t v) {
  Attribute a;
  a.type = AttrType::kInt;
  a.i = v;
  return a;
}
Attribute attr(int v) { return attr(int64_t(v)); }
Attribute attr(double v) {
  Attribute a;
  a.type = AttrType::kFloat;
  a.f = v;
  return a;
}
Attribute attr(const std::string& v) {
  Attribute a;
  a.type = AttrType::kString;
  a.s = v;
  return a;
}
Attribute attr(const char* v) { return attr(std::string(v)); }
Attribute attr(const std::vector<int64_t>& v) {
  Attribute a;
  a.type = AttrType::kInts;
  a.ints = v;
  return a;
}
Attribute attr(const std::vector<double>& v) {
  Attribute a;
  a.type = AttrType::kFloats;
  a.floats = v;
  return a;
}
Attribute attr(const at::Tensor& v) {
  Attribute a;
  a.type = AttrType::kTensor;
  a.t = v;
  return a;
}

namespace {
ValueInfo value_info(const std::string& name, const std::vector<DimSpec>& shape,
                     int32_t elem_type) {
  ValueInfo vi;
  vi.name = name;
  vi.elem_type = elem_type;
  vi.has_shape = !shape.empty();
  for (const auto& d : shape) {
    Dim dim;
    if (std::holds_alternative<int64_t>(d))
      dim.value = std::get<int64_t>(d);
    else
      dim.param = std::get<std::string>(d);
    vi.shape.push_back(dim);
  }
  return vi;
}
}  // namespace

GraphBuilder::GraphBuilder(std::string name, int64_t opset) {
  graph_.name = name;
  graph_.source = name;
  graph_.opsets[""] = opset;
  graph_.ir_version = opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : opset >= 9 ? 4 : 3;
  graph_.producer_name = "mpq";
}

std::string GraphBuilder::unique(const std::string& prefix) {
  int& n = used_[prefix];
  std::string name = n == 0 ? prefix : prefix + "_" + std::to_string(n);
  ++n;
  return used_.count(name) && name != prefix ? unique(prefix) : name;
}

std::string GraphBuilder::input(const std::string& name, const std::vector<DimSpec>& shape,
                                int32_t elem_type) {
  graph_.inputs.push_back(value_info(name, shape, elem_type));
  used_[name]++;
  return name;
}

std::string GraphBuilder::weight(const std::string& name, const at::Tensor& value) {
  if (weights_as_constants_) return constant(name, value);
  std::string n = unique(name);
  graph_.initializers[n] = value.detach().contiguous();
  return n;
}

std::string GraphBuilder::constant(const std::string& name, const at::Tensor& value) {
  std::string n = unique(name);
  Node node;
  node.name = n + "_const";
  node.op_type = "Constant";
  node.outputs = {n};
  node.attrs["value"] = attr(value.detach().contiguous());
  graph_.nodes.push_back(std::move(node));
  return n;
}

std::vector<std::string> GraphBuilder::node_n(const std::string& op,
                                              const std::vector<std::string>& inputs,
                                              int num_outputs, const Attrs& attrs,
                                              const std::string& name) {
  Node node;
  node.name = unique(name.empty() ? op : name);
  node.op_type = op;
  node.inputs = inputs;
  node.attrs = attrs;
  for (int k = 0; k < num_outputs; ++k)
    node.outputs.push_back(num_outputs == 1 ? node.name : node.name + "_out" + std::to_string(k));
  std::vector<std::string> outs = node.outputs;
  graph_.nodes.push_back(std::move(node));
  return outs;
}

std::string GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                               const Attrs& attrs, const std::string& name) {
  return node_n(op, inputs, 1, attrs, name)[0];
}

void GraphBuilder::output(const std::string& value, const std::vector<DimSpec>& shape,
                          int32_t elem_type) {
  graph_.outputs.push_back(value_info(value, shape, elem_type));
}

void GraphBuilder::set_metadata(const std::string& key, const std::string& value) {
  graph_.metadata[key] = value;
}

Graph GraphBuilder::build() {
  Graph g = graph_;
  g.topological_sort();
  return g;
}

}  // namespace mpq
