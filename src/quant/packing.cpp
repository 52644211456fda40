#include "quant/packing.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "onnx/builder.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace {

int64_t qmax_of(int bits, int64_t qmin) { return qmin + (int64_t(1) << bits) - 1; }

// The range fits uint8 (qmin >= 0) or int8 (qmin < 0); bits are in 1..8.
bool grid_fits(int bits, int64_t qmin) {
  if (bits < 1 || bits > 8) return false;
  int64_t qmax = qmax_of(bits, qmin);
  return qmin >= 0 ? qmax <= 255 : qmin >= -128 && qmax <= 127;
}

at::ScalarType checked_type(const std::string& where, int bits, int64_t qmin) {
  MPQ_CHECK(bits >= 1 && bits <= 8, where, ": bits must be in 1..8, found ", bits);
  MPQ_CHECK(grid_fits(bits, qmin), where, ": the ", bits, "-bit range [", qmin, ", ",
            qmax_of(bits, qmin),
            "] must lie in uint8 [0, 255] (qmin >= 0) or in int8 [-128, 127] (qmin < 0)");
  return qmin >= 0 ? at::kByte : at::kChar;
}

int64_t checked_numel(const std::string& where, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    MPQ_CHECK(d >= 0, where, ": expected a shape of sizes >= 0, found ", at::IntArrayRef(shape));
    n *= d;
  }
  return n;
}

int64_t num_bytes(int64_t numel) { return (numel + 7) / 8; }

void check_planes(const std::string& where, const at::Tensor& planes, int bits, int64_t numel,
                  const std::vector<int64_t>& shape) {
  int64_t nbytes = num_bytes(numel);
  MPQ_CHECK(planes.scalar_type() == at::kByte && planes.dim() == 2 && planes.size(0) == bits &&
                planes.size(1) == nbytes,
            where, ": expected uint8 planes of shape [", bits, ", ", nbytes, "] for ", bits,
            " bits and ", numel, " elements (shape ", at::IntArrayRef(shape), "), found ",
            planes.scalar_type(), " of shape ", planes.sizes());
}

at::Tensor int64s(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

// Index of the first true element of a 1-D bool tensor that has one.
int64_t first_true(const at::Tensor& mask) { return at::nonzero(mask)[0][0].item<int64_t>(); }

bool same_attr(const Attribute& a, const Attribute& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case AttrType::kInt:
      return a.i == b.i;
    case AttrType::kInts:
      return a.ints == b.ints;
    case AttrType::kString:
      return a.s == b.s;
    default:
      return false;  // emit_unpack writes no other kinds
  }
}

bool same_attrs(const std::map<std::string, Attribute>& a,
                const std::map<std::string, Attribute>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    if (it == b.end() || !same_attr(value, it->second)) return false;
  }
  return true;
}

bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && at::equal(a, b);
}

}  // namespace

at::ScalarType packed_type(int bits, int64_t qmin) {
  return checked_type("packed_type", bits, qmin);
}

int64_t packed_bytes(int bits, int64_t numel) { return bits * num_bytes(numel); }

at::Tensor pack_bitplanes(const at::Tensor& q, int bits, int64_t qmin) {
  const std::string where = "pack_bitplanes";
  checked_type(where, bits, qmin);
  int64_t qmax = qmax_of(bits, qmin);
  at::ScalarType type = q.scalar_type();
  MPQ_CHECK(at::isIntegralType(type, /*includeBool=*/false) || at::isFloatingType(type), where,
            ": expected an integer or floating-point tensor, found ", type);
  at::Tensor flat = q.detach().reshape({-1}).cpu();
  if (at::isFloatingType(type)) {
    at::Tensor d = flat.to(at::kDouble);
    at::Tensor bad = at::logical_not(at::isfinite(d)) | (d != at::round(d));
    if (bad.any().item<bool>()) {
      int64_t i = first_true(bad);
      MPQ_FAIL(where, ": expected integer values, found ", d[i].item<double>(), " at index ", i);
    }
  }
  at::Tensor v = flat.to(at::kLong);
  at::Tensor outside = (v < qmin) | (v > qmax);
  if (outside.any().item<bool>()) {
    int64_t i = first_true(outside);
    MPQ_FAIL(where, ": value ", v[i].item<int64_t>(), " at index ", i, " is outside the ", bits,
             "-bit range [", qmin, ", ", qmax, "]");
  }
  int64_t n = v.numel(), nbytes = num_bytes(n);
  at::Tensor u = at::zeros({nbytes * 8}, at::kLong);
  u.slice(0, 0, n).copy_(v - qmin);
  at::Tensor plane = at::arange(bits, at::kLong).view({bits, 1, 1});
  at::Tensor position = at::arange(8, at::kLong);
  at::Tensor bit = at::bitwise_and(at::bitwise_right_shift(u.view({1, nbytes, 8}), plane), 1);
  return at::bitwise_left_shift(bit, position).sum(-1).to(at::kByte);
}

at::Tensor unpack_bitplanes(const at::Tensor& planes, int bits, int64_t qmin,
                            const std::vector<int64_t>& shape) {
  const std::string where = "unpack_bitplanes";
  at::ScalarType type = checked_type(where, bits, qmin);
  int64_t n = checked_numel(where, shape);
  check_planes(where, planes, bits, n, shape);
  int64_t nbytes = num_bytes(n);
  at::Tensor p = planes.detach().cpu().to(at::kLong).reshape({bits, nbytes, 1});
  at::Tensor bit = at::bitwise_and(at::bitwise_right_shift(p, at::arange(8, at::kLong)), 1);
  at::Tensor plane = at::arange(bits, at::kLong).view({bits, 1, 1});
  at::Tensor u = at::bitwise_left_shift(bit, plane).sum(0).reshape({-1}).slice(0, 0, n);
  return (u + qmin).to(type).reshape(shape);
}

std::vector<std::string> emit_unpack(Graph* graph, const std::string& planes, int bits,
                                     int64_t qmin, const std::vector<int64_t>& shape,
                                     const std::string& output, const std::string& name_prefix) {
  MPQ_ASSERT(graph != nullptr);
  const std::string where = internal::concat(graph->source.empty() ? "" : graph->source + ": ",
                                             "unpacking '", planes, "' into '", output, "'");
  at::ScalarType type = checked_type(where, bits, qmin);
  int64_t opset = graph->opset();
  MPQ_CHECK(opset >= kMinPackedOpset && opset <= kMaxPackedOpset, where,
            ": packed weights need an ai.onnx opset in ", kMinPackedOpset, "..", kMaxPackedOpset,
            ", found ", opset);
  auto it = graph->initializers.find(planes);
  MPQ_CHECK(it != graph->initializers.end(), where, ": no initializer named '", planes, "'");
  int64_t n = checked_numel(where, shape);
  MPQ_CHECK(n > 0, where, ": expected a shape with elements, found ", at::IntArrayRef(shape));
  check_planes(where, it->second, bits, n, shape);
  int64_t nbytes = num_bytes(n);

  std::vector<Node> nodes;
  std::map<std::string, at::Tensor> constants;
  std::string last = planes;
  auto constant = [&](const std::string& tag, const at::Tensor& value) {
    std::string name = name_prefix + "_" + tag;
    constants[name] = value;
    return name;
  };
  auto add = [&](const std::string& tag, const std::string& op,
                 const std::vector<std::string>& constant_inputs, const Attrs& attrs = {}) {
    Node node;
    node.name = name_prefix + "_" + tag;
    node.op_type = op;
    node.inputs = {last};
    node.inputs.insert(node.inputs.end(), constant_inputs.begin(), constant_inputs.end());
    node.outputs = {node.name};
    node.attrs = attrs;
    last = node.name;
    nodes.push_back(std::move(node));
  };

  add("reshape_planes", "Reshape", {constant("planes_shape", int64s({bits, nbytes, 1}))});
  add("shift", "BitShift", {constant("shifts", at::arange(8, at::kByte))},
      {{"direction", attr("RIGHT")}});
  add("mod", "Mod", {constant("two", at::scalar_tensor(2, at::kByte))});
  add("cast_int32", "Cast", {}, {{"to", attr(int64_t(kOnnxInt32))}});
  std::vector<int32_t> weights;
  for (int k = 0; k < bits; ++k) weights.push_back(int32_t(1) << k);
  add("mul", "Mul", {constant("weights", at::tensor(weights, at::kInt).view({bits, 1, 1}))});
  if (opset < 13) {
    add("sum", "ReduceSum", {}, {{"axes", attr(std::vector<int64_t>{0})}, {"keepdims", attr(0)}});
  } else {
    add("sum", "ReduceSum", {constant("axes", int64s({0}))}, {{"keepdims", attr(0)}});
  }
  if (n % 8 != 0) {
    add("flatten", "Reshape", {constant("flat_shape", int64s({nbytes * 8}))});
    add("slice", "Slice", {constant("starts", int64s({0})), constant("ends", int64s({n}))});
  }
  add("reshape", "Reshape", {constant("shape", int64s(shape))});
  if (qmin != 0) add("add_qmin", "Add", {constant("qmin", at::scalar_tensor(qmin, at::kInt))});
  add("cast", "Cast", {}, {{"to", attr(int64_t(onnx_type_from_scalar(type)))}});
  nodes.back().outputs[0] = output;

  // Every new name must be new to the graph, so that no value gets two meanings.
  std::set<std::string> taken;
  for (const auto& in : graph->inputs) taken.insert(in.name);
  for (const auto& kv : graph->initializers) taken.insert(kv.first);
  for (const auto& node : graph->nodes) {
    taken.insert(node.name);
    taken.insert(node.outputs.begin(), node.outputs.end());
  }
  MPQ_CHECK(!taken.count(output), where, ": '", output, "' is already a value of the graph");
  std::vector<std::string> fresh = {output};
  for (const auto& node : nodes) {
    fresh.push_back(node.name);  // also the name of its output, except for the last node
  }
  for (const auto& kv : constants) fresh.push_back(kv.first);
  std::set<std::string> seen;
  for (const auto& name : fresh) {
    MPQ_CHECK(!taken.count(name) && seen.insert(name).second, where, ": name '", name,
              "' is already used in the graph; choose another prefix than '", name_prefix, "'");
  }

  for (auto& kv : constants) graph->initializers[kv.first] = kv.second;
  std::vector<std::string> names;
  for (const auto& node : nodes) names.push_back(node.name);
  std::vector<int64_t> readers = graph->consumers(output);
  auto at_pos = readers.empty() ? graph->nodes.end() : graph->nodes.begin() + readers.front();
  graph->nodes.insert(at_pos, nodes.begin(), nodes.end());
  return names;
}

std::optional<PackedWeight> find_packed(const Graph& graph, const std::string& value) {
  constexpr size_t kMaxNodes = 11;  // the longest subgraph emit_unpack writes
  std::vector<const Node*> chain;
  std::string v = value;
  while (!graph.is_initializer(v)) {
    if (chain.size() == kMaxNodes) return std::nullopt;
    int64_t i = graph.producer(v);
    if (i < 0) return std::nullopt;
    const Node& node = graph.nodes[size_t(i)];
    if (node.outputs.size() != 1 || node.inputs.empty()) return std::nullopt;
    chain.push_back(&node);
    v = node.inputs[0];
  }
  if (chain.empty()) return std::nullopt;
  std::reverse(chain.begin(), chain.end());
  const at::Tensor& planes = graph.initializers.at(v);
  if (planes.scalar_type() != at::kByte || planes.dim() != 2) return std::nullopt;

  // The parameters the chain states: bits from the planes, qmin from the Add, shape from the last
  // Reshape. Whether they are consistent is settled by the comparison below.
  PackedWeight w;
  w.planes = v;
  w.bits = int(planes.size(0));
  auto constant_input = [&](const Node* node) -> const at::Tensor* {
    if (node->inputs.size() < 2) return nullptr;
    auto it = graph.initializers.find(node->inputs[1]);
    return it == graph.initializers.end() ? nullptr : &it->second;
  };
  for (const Node* node : chain) {
    const at::Tensor* c = constant_input(node);
    if (node->op_type == "Add") {
      if (!c || c->scalar_type() != at::kInt || c->numel() != 1) return std::nullopt;
      w.qmin = c->item<int64_t>();
    } else if (node->op_type == "Reshape") {
      if (!c || c->scalar_type() != at::kLong || c->dim() != 1) return std::nullopt;
      at::Tensor s = c->contiguous();
      w.shape.assign(s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel());
    }
  }
  int64_t opset = graph.opset();
  if (!grid_fits(w.bits, w.qmin) || opset < kMinPackedOpset || opset > kMaxPackedOpset)
    return std::nullopt;
  int64_t n = 1, limit = planes.size(1) * 8;
  for (int64_t d : w.shape) {
    if (d < 0 || (d > 0 && n > limit / d)) return std::nullopt;
    n *= d;
  }
  if (n == 0 || planes.size(1) != num_bytes(n)) return std::nullopt;

  // What emit_unpack writes for these parameters; a prefix that neither the planes' name nor
  // `value` starts with keeps its names apart from theirs.
  Graph expected;
  expected.opsets = graph.opsets;
  expected.initializers[v] = planes;
  std::string prefix = "p";
  while (v.rfind(prefix, 0) == 0 || value.rfind(prefix, 0) == 0) prefix += "p";
  emit_unpack(&expected, v, w.bits, w.qmin, w.shape, value, prefix);
  if (expected.nodes.size() != chain.size()) return std::nullopt;
  for (size_t i = 0; i < chain.size(); ++i) {
    const Node &want = expected.nodes[i], &got = *chain[i];
    if (got.op_type != want.op_type || got.domain != want.domain ||
        got.inputs.size() != want.inputs.size() || !same_attrs(got.attrs, want.attrs))
      return std::nullopt;
    for (size_t k = 1; k < want.inputs.size(); ++k) {
      auto it = graph.initializers.find(got.inputs[k]);
      if (it == graph.initializers.end() ||
          !same_tensor(it->second, expected.initializers.at(want.inputs[k])))
        return std::nullopt;
    }
    w.nodes.push_back(got.name);
  }
  return w;
}

bool read_packed(const Graph& graph, const std::string& value, at::Tensor* q) {
  MPQ_ASSERT(q != nullptr);
  std::optional<PackedWeight> w = find_packed(graph, value);
  if (!w) return false;
  *q = unpack_bitplanes(graph.initializers.at(w->planes), w->bits, w->qmin, w->shape);
  return true;
}

}  // namespace mpq
