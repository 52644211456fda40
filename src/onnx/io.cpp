#include "onnx/io.h"

#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "onnx/internal/proto.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace {

// The newest opset the installed ONNX checker knows; newer models are written unchecked.
constexpr int64_t kCheckerMaxOpset = 17;

ValueInfo value_info_from_proto(const onnx::ValueInfoProto& proto) {
  ValueInfo info;
  info.name = proto.name();
  info.is_tensor = !proto.has_type() || proto.type().has_tensor_type();
  if (proto.type().has_tensor_type()) {
    const auto& tt = proto.type().tensor_type();
    info.elem_type = tt.elem_type();
    if (tt.has_shape()) {
      info.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        Dim dim;
        if (d.has_dim_value()) dim.value = d.dim_value();
        if (d.has_dim_param()) dim.param = d.dim_param();
        info.shape.push_back(dim);
      }
    }
  }
  return info;
}

void value_info_to_proto(const ValueInfo& info, onnx::ValueInfoProto* proto) {
  proto->set_name(info.name);
  auto* tt = proto->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(info.elem_type == 0 ? kOnnxFloat : info.elem_type);
  if (info.has_shape) {
    auto* shape = tt->mutable_shape();
    for (const auto& d : info.shape) {
      auto* dim = shape->add_dim();
      if (d.fixed())
        dim->set_dim_value(d.value);
      else if (!d.param.empty())
        dim->set_dim_param(d.param);
    }
  }
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& base_dir,
                               const std::string& where) {
  Attribute attr;
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT:
      attr.type = AttrType::kFloat;
      attr.f = a.f();
      break;
    case onnx::AttributeProto::INT:
      attr.type = AttrType::kInt;
      attr.i = a.i();
      break;
    case onnx::AttributeProto::STRING:
      attr.type = AttrType::kString;
      attr.s = a.s();
      break;
    case onnx::AttributeProto::TENSOR:
      attr.type = AttrType::kTensor;
      attr.t = internal::tensor_from_proto(a.t(), base_dir, where);
      break;
    case onnx::AttributeProto::GRAPH:
      attr.type = AttrType::kGraph;
      break;
    case onnx::AttributeProto::FLOATS:
      attr.type = AttrType::kFloats;
      attr.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      attr.type = AttrType::kInts;
      attr.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      attr.type = AttrType::kStrings;
      attr.strings.assign(a.strings().begin(), a.strings().end());
      break;
    default:
      // Sparse tensors, type protos and lists of tensors or graphs: no supported op uses them.
      attr.type = AttrType::kUndefined;
      break;
  }
  return attr;
}

void attribute_to_proto(const std::string& name, const Attribute& attr, onnx::AttributeProto* a) {
  a->set_name(name);
  switch (attr.type) {
    case AttrType::kFloat:
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_f(float(attr.f));
      break;
    case AttrType::kInt:
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(attr.i);
      break;
    case AttrType::kString:
      a->set_type(onnx::AttributeProto::STRING);
      a->set_s(attr.s);
      break;
    case AttrType::kTensor:
      a->set_type(onnx::AttributeProto::TENSOR);
      internal::tensor_to_proto(attr.t, "", a->mutable_t());
      break;
    case AttrType::kFloats:
      a->set_type(onnx::AttributeProto::FLOATS);
      for (double v : attr.floats) a->add_floats(float(v));
      break;
    case AttrType::kInts:
      a->set_type(onnx::AttributeProto::INTS);
      for (int64_t v : attr.ints) a->add_ints(v);
      break;
    case AttrType::kStrings:
      a->set_type(onnx::AttributeProto::STRINGS);
      for (const auto& v : attr.strings) a->add_strings(v);
      break;
    default:
      MPQ_FAIL("attribute '", name, "' cannot be exported (graph or unknown type)");
  }
}

// The tensor a Constant node holds, if it is one mpq folds into an initializer.
bool constant_value(const Node& node, at::Tensor* value) {
  if (node.op_type != "Constant" || !node.domain.empty() || node.outputs.size() != 1) return false;
  if (node.attrs.size() != 1) return false;
  const auto& [name, attr] = *node.attrs.begin();
  if (name == "value" && attr.type == AttrType::kTensor) {
    *value = attr.t;
  } else if (name == "value_float") {
    *value = at::scalar_tensor(attr.f, at::kFloat);
  } else if (name == "value_floats") {
    *value = at::tensor(std::vector<float>(attr.floats.begin(), attr.floats.end()));
  } else if (name == "value_int") {
    *value = at::scalar_tensor(attr.i, at::kLong);
  } else if (name == "value_ints") {
    *value = at::tensor(attr.ints, at::kLong);
  } else {
    return false;
  }
  return true;
}

}  // namespace

Graph import_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                        const std::string& label, const ImportOptions& options) {
  onnx::ModelProto model;
  MPQ_CHECK(!bytes.empty(), label, ": file is empty (expected an ONNX model)");
  MPQ_CHECK(model.ParseFromString(bytes), label,
            ": not an ONNX model (protobuf parsing failed; truncated or another format?)");
  MPQ_CHECK(model.has_graph() && model.graph().node_size() > 0, label,
            ": not an ONNX model (no graph or no nodes)");
  Graph g;
  g.source = label;
  g.ir_version = model.ir_version();
  g.producer_name = model.producer_name();
  g.producer_version = model.producer_version();
  for (const auto& op : model.opset_import()) {
    std::string domain = op.domain() == "ai.onnx" ? "" : op.domain();
    g.opsets[domain] = op.version();
  }
  if (model.opset_import_size() == 0) g.opsets[""] = 1;  // IR < 3 models: opset 1
  for (const auto& kv : model.metadata_props()) g.metadata[kv.key()] = kv.value();
  int64_t opset = g.opset();
  MPQ_CHECK(opset >= kMinOpset && opset <= kMaxOpset, label, ": opset ", opset,
            " of the default domain is not supported (expected ", kMinOpset, " to ", kMaxOpset,
            ")");

  const auto& graph = model.graph();
  g.name = graph.name();
  MPQ_CHECK(graph.sparse_initializer_size() == 0, label, ": sparse initializers are not supported");
  for (const auto& init : graph.initializer()) {
    MPQ_CHECK(!init.name().empty(), label, ": an initializer has no name");
    int32_t type = 0;
    g.initializers[init.name()] = internal::tensor_from_proto(init, base_dir, label, &type);
    if (type == kOnnxInt4 || type == kOnnxUint4) g.initializer_types[init.name()] = type;
  }
  for (const auto& in : graph.input())
    if (!g.initializers.count(in.name())) g.inputs.push_back(value_info_from_proto(in));
  for (const auto& out : graph.output()) g.outputs.push_back(value_info_from_proto(out));
  for (const auto& vi : graph.value_info()) g.value_infos.push_back(value_info_from_proto(vi));

  std::set<std::string> names;
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& n = graph.node(i);
    Node node;
    node.op_type = n.op_type();
    node.domain = n.domain() == "ai.onnx" ? "" : n.domain();
    node.name = n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name();
    while (names.count(node.name)) node.name += "_" + std::to_string(i);
    names.insert(node.name);
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    std::string where = label + ": node '" + node.name + "' (" + node.op_type + ")";
    for (const auto& a : n.attribute()) {
      node.attrs[a.name()] = attribute_from_proto(a, base_dir, where);
    }
    at::Tensor value;
    if (options.fold_constants && constant_value(node, &value)) {
      g.initializers[node.outputs[0]] = value;
      continue;
    }
    g.nodes.push_back(std::move(node));
  }
  // A graph output may be a folded constant: keep it, the executor returns initializers too.
  g.topological_sort();
  return g;
}

Graph import_onnx(const std::string& path, const ImportOptions& options) {
  return import_onnx_bytes(read_file(path), parent_dir(path), path, options);
}

namespace {

onnx::ModelProto to_proto(const Graph& g, const ExportOptions& options, const std::string& path,
                          std::string* external_bytes) {
  onnx::ModelProto model;
  model.set_ir_version(g.ir_version > 0 ? g.ir_version : 8);
  model.set_producer_name(g.producer_name.empty() ? "mpq" : g.producer_name);
  model.set_producer_version(g.producer_version);
  for (const auto& [domain, version] : g.opsets) {
    auto* op = model.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  for (const auto& [k, v] : g.metadata) {
    auto* kv = model.add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
  auto* graph = model.mutable_graph();
  graph->set_name(g.name.empty() ? "mpq" : g.name);
  for (const auto& in : g.inputs) value_info_to_proto(in, graph->add_input());
  for (const auto& out : g.outputs) value_info_to_proto(out, graph->add_output());
  for (const auto& vi : g.value_infos) value_info_to_proto(vi, graph->add_value_info());
  for (const auto& [name, tensor] : g.initializers) {
    auto* init = graph->add_initializer();
    auto type = g.initializer_types.find(name);
    internal::tensor_to_proto(tensor, name, init,
                              type == g.initializer_types.end() ? 0 : type->second);
    if (options.external_threshold > 0 && int64_t(tensor.nbytes()) >= options.external_threshold) {
      MPQ_CHECK(!path.empty(), "external data needs a file path");
      std::string location = std::filesystem::path(path).filename().string() + ".data";
      // Align each tensor to 64 bytes, as ONNX's own writer does, so readers may map it.
      external_bytes->resize((external_bytes->size() + 63) / 64 * 64, '\0');
      int64_t offset = int64_t(external_bytes->size());
      external_bytes->append(init->raw_data());
      init->clear_raw_data();
      init->set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const char* key, const std::string& value) {
        auto* kv = init->add_external_data();
        kv->set_key(key);
        kv->set_value(value);
      };
      add("location", location);
      add("offset", std::to_string(offset));
      add("length", std::to_string(tensor.nbytes()));
    }
  }
  for (const auto& node : g.nodes) {
    auto* n = graph->add_node();
    n->set_name(node.name);
    n->set_op_type(node.op_type);
    if (!node.domain.empty()) n->set_domain(node.domain);
    for (const auto& in : node.inputs) n->add_input(in);
    for (const auto& out : node.outputs) n->add_output(out);
    for (const auto& [name, attr] : node.attrs) attribute_to_proto(name, attr, n->add_attribute());
  }
  return model;
}

// Runs the ONNX checker on a model about to be written to `path` ("" for bytes).
void check_model(const Graph& g, const onnx::ModelProto& model, const std::string& path) {
  if (g.opset() > kCheckerMaxOpset) return;
  try {
    onnx::checker::CheckerContext ctx;
    ctx.set_ir_version(int(model.ir_version()));
    std::unordered_map<std::string, int> opsets;
    for (const auto& [d, v] : g.opsets) opsets[d] = int(v);
    ctx.set_opset_imports(opsets);
    if (!path.empty()) ctx.set_model_dir(parent_dir(path));
    onnx::checker::LexicalScopeContext lex;
    onnx::checker::check_graph(model.graph(), ctx, lex);
  } catch (const std::exception& e) {
    MPQ_FAIL(path.empty() ? std::string("model") : path,
             ": the exported model fails the ONNX checker: ", e.what());
  }
}

}  // namespace

std::string export_onnx_bytes(const Graph& graph, const ExportOptions& options) {
  MPQ_CHECK(options.external_threshold == 0, "external data needs export_onnx with a path");
  std::string unused;
  onnx::ModelProto model = to_proto(graph, options, "", &unused);
  if (options.check) check_model(graph, model, "");
  return model.SerializeAsString();
}

void export_onnx(const Graph& graph, const std::string& path, const ExportOptions& options) {
  std::string external;
  // The external data is written first so that the checker can resolve it.
  onnx::ModelProto model = to_proto(graph, options, path, &external);
  if (!external.empty()) write_file_atomic(path + ".data", external);
  if (options.check) check_model(graph, model, path);
  write_file_atomic(path, model.SerializeAsString());
}

}  // namespace mpq
