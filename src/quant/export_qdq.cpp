#include "quant/export_qdq.h"

#include <ATen/ATen.h>

#include <set>

#include "core/cpu.h"
#include "core/error.h"
#include "core/int8_format.h"
#include "onnx/builder.h"
#include "onnx/passes/upgrade_opset.h"
#include "onnx/tensor_proto.h"
#include "quant/packing.h"
#include "quant/patches.h"

namespace mpq {
namespace {

// Adds nodes and initializers to the graph being exported and sorts out names and byte counts.
class Writer {
 public:
  Writer(Graph* g, const QdqOptions& o, Int8Format format)
      : g_(*g), opset_(g->opset()), options_(o), format_(format) {}

  // The shift that gives a grid of at most 8 bits the signedness the int8 format wants for it
  // (u8u8: everything unsigned, s8s8: everything signed, else as it is); 0 for wider grids.
  int64_t type_shift(int bits, int64_t qmin) const {
    if (bits > 8) return 0;
    bool is_signed = qmin < 0;
    if (format_ == Int8Format::kU8U8 && is_signed) return int64_t(1) << (bits - 1);
    if (format_ == Int8Format::kS8S8 && !is_signed) return -(int64_t(1) << (bits - 1));
    return 0;
  }

  std::string unique(const std::string& base) {
    std::string name = base;
    for (int k = 1; taken(name); ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    return name;
  }

  std::string tensor(const std::string& base, const at::Tensor& value) {
    std::string name = unique(base);
    g_.initializers[name] = value.contiguous();
    return name;
  }
  std::string weight_tensor(const std::string& base, const at::Tensor& v) {
    std::string name = tensor(base, v);
    weight_names.insert(name);
    return name;
  }
  std::string param_tensor(const std::string& base, const at::Tensor& v) {
    std::string name = tensor(base, v);
    param_names.insert(name);
    return name;
  }

  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::string& base, const Attrs& attrs = {}) {
    Node n;
    n.name = unique(base);
    n.op_type = op;
    n.inputs = inputs;
    n.outputs = {n.name};
    n.attrs = attrs;
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back().outputs[0];
  }

  std::string reshape(const std::string& x, const std::vector<int64_t>& shape,
                      const std::string& base) {
    return node("Reshape", {x, param_tensor(base + "/shape", at::tensor(shape, at::kLong))}, base);
  }

  // Integer weights q (integers in a float tensor) stored for `bits`: an int8/uint8/int16
  // initializer, or bit planes and their unpack subgraph. Returns the integer value's name.
  std::string store_int(const at::Tensor& q, int bits, const IntRange& range,
                        const std::string& base, at::ScalarType* type) {
    // The unpack subgraph costs about kUnpackOverhead bytes of nodes and constants: tensors too
    // small to win that back stay one byte per value.
    if (bits <= 4 && opset_ >= 21 && options_.weight_storage == "packed") {
      // Opset 21 has 4-bit types: DequantizeLinear reads them directly.
      *type = range.qmin < 0 ? at::kChar : at::kByte;
      std::string name = weight_tensor(base + "/int4", q.to(*type));
      int4_types_[name] = g_.initializer_types[name] = range.qmin < 0 ? kOnnxInt4 : kOnnxUint4;
      return name;
    }
    bool worth_it = q.numel() - packed_bytes(bits, q.numel()) > kUnpackOverhead;
    if (bits < 8 && options_.weight_storage == "packed" && worth_it) {
      std::string planes = weight_tensor(base + "/packed", pack_bitplanes(q, bits, range.qmin));
      std::string out = unique(base + "/int");
      // Short node names: eleven nodes per weight, each name stored three times in the file.
      emit_unpack(&g_, planes, bits, range.qmin, q.sizes().vec(), out,
                  unique("unpack" + std::to_string(++unpacks_)));
      *type = packed_type(bits, range.qmin);
      return out;
    }
    if (bits <= 8) {
      *type = range.qmin < 0 ? at::kChar : at::kByte;
    } else {
      *type = range.qmin < 0 ? at::kShort : at::kInt;
    }
    return weight_tensor(base + "/int", q.to(*type));
  }

  // (q - z) * s with s, z per entry of `axis` (or scalars). DequantizeLinear where the opset and
  // type allow it, else Cast, Sub, Mul.
  std::string dequant(const std::string& q, at::ScalarType type, const QParams& p, int64_t axis,
                      int64_t rank, const std::string& base) {
    at::Tensor scale = p.scale.reshape({-1}).to(at::kFloat);
    at::Tensor zp = p.zero_point.reshape({-1});
    bool per_tensor = scale.numel() == 1;
    bool dq_ok = (type == at::kChar || type == at::kByte) && opset_ >= (per_tensor ? 10 : 13);
    if (dq_ok) {
      std::string s = param_tensor(base + "/scale", per_tensor ? scale.reshape({}) : scale);
      std::string z =
          param_tensor(base + "/zero_point", (per_tensor ? zp.reshape({}) : zp).round().to(type));
      auto int4 = int4_types_.find(q);  // DequantizeLinear wants x and its zero point alike
      if (int4 != int4_types_.end()) g_.initializer_types[z] = int4->second;
      Attrs a;
      if (!per_tensor) a["axis"] = attr(axis);
      return node("DequantizeLinear", {q, s, z}, base + "/dequantize", a);
    }
    std::vector<int64_t> shape(size_t(rank), 1);
    if (!per_tensor) shape[size_t(axis)] = scale.numel();
    std::string x = node("Cast", {q}, base + "/cast", {{"to", attr(int64_t(1))}});
    if (zp.ne(0).any().item<bool>()) {
      x = node("Sub", {x, param_tensor(base + "/zero_point", zp.to(at::kFloat).reshape(shape))},
               base + "/center");
    }
    return node("Mul", {x, param_tensor(base + "/scale", scale.reshape(shape))},
                base + "/dequantize");
  }

  // The row view [rows, row_size] back to the weight's shape (scheme.h from_rows, as ONNX ops).
  std::string from_rows_nodes(const std::string& rows, const RowLayout& l,
                              const std::string& base) {
    std::vector<int64_t> moved = l.shape;
    moved.erase(moved.begin() + l.channel_axis);
    moved.insert(moved.begin(), l.shape[size_t(l.channel_axis)]);
    std::string x = rows;
    if (l.granularity == Granularity::kGroup) {
      x = reshape(x, {l.channels, l.padded_k}, base + "/channels");
      if (l.padded_k > l.k) {
        x = node("Slice",
                 {x, param_tensor(base + "/starts", at::tensor({int64_t(0)}, at::kLong)),
                  param_tensor(base + "/ends", at::tensor({l.k}, at::kLong)),
                  param_tensor(base + "/axes", at::tensor({int64_t(1)}, at::kLong))},
                 base + "/unpad");
      }
    }
    x = reshape(x, moved, base + "/reshape");
    if (l.channel_axis != 0) {
      std::vector<int64_t> perm;
      for (int64_t d = 1; d <= l.channel_axis; ++d) perm.push_back(d);
      perm.push_back(0);
      for (int64_t d = l.channel_axis + 1; d < int64_t(l.shape.size()); ++d) perm.push_back(d);
      x = node("Transpose", {x}, base + "/transpose", {{"perm", attr(perm)}});
    }
    return x;
  }

  std::set<std::string> weight_names;  // integer weight storage
  std::set<std::string> param_names;   // scales, zero points, shapes, indices

 private:
  bool taken(const std::string& name) const {
    if (used_.count(name) || g_.initializers.count(name)) return true;
    for (const auto& n : g_.nodes) {
      if (n.name == name) return true;
      for (const auto& o : n.outputs) {
        if (o == name) return true;
      }
    }
    return false;
  }

  static constexpr int64_t kUnpackOverhead = 600;
  Graph& g_;
  int64_t opset_;
  int unpacks_ = 0;
  std::map<std::string, int32_t> int4_types_;
  QdqOptions options_;
  Int8Format format_;
  std::set<std::string> used_;
};

// Integers, their range and parameters moved by `shift` (Writer::type_shift): same real values.
void shift_grid(int64_t shift, at::Tensor* q, IntRange* range, QParams* p) {
  if (shift == 0) return;
  *q = *q + double(shift);
  range->qmin += shift;
  range->qmax += shift;
  p->zero_point = p->zero_point + double(shift);
  p->qmin = range->qmin;
  p->qmax = range->qmax;
}

std::string export_weight(Writer& w, const QuantizedLayer& ql, const at::Tensor& weight) {
  const std::string base = ql.layer.weight;
  const QuantSpec& spec = ql.plan.weight;
  int bits = spec.bits;
  if (ql.multipoint) {
    const MultipointLayer& mp = ql.points;
    IntRange range = int_range(bits, true);
    at::Tensor count = mp.count;
    int64_t channels = mp.points.size(1), k = mp.points.size(2);
    int64_t used = count.max().item<int64_t>();
    std::vector<std::string> terms;
    for (int64_t i = 0; i < used; ++i) {
      std::string pb = base + "/point" + std::to_string(i + 1);
      at::Tensor idx = at::nonzero(count.gt(i)).reshape({-1});
      at::Tensor q = mp.points[i].index_select(0, idx).to(at::kFloat);
      QParams p;
      p.scale = mp.scales[i].index_select(0, idx).to(at::kFloat);
      p.zero_point = at::zeros_like(p.scale);
      p.qmin = range.qmin;
      p.qmax = range.qmax;
      IntRange stored = range;
      shift_grid(w.type_shift(bits, range.qmin), &q, &stored, &p);
      at::ScalarType type;
      std::string qi = w.store_int(q, bits, stored, pb, &type);
      std::string x = w.dequant(qi, type, p, 0, 2, pb);
      if (idx.numel() < channels) {
        // Channels without this point read a zero row.
        // A zero row made at load time (ConstantOfShape) rather than stored: 4 K bytes saved.
        std::string zero =
            w.node("ConstantOfShape",
                   {w.param_tensor(pb + "/zero_row_shape", at::tensor({int64_t(1), k}))},
                   pb + "/zero_row", {{"value", attr(at::zeros({1}, at::kFloat))}});
        std::string padded =
            w.node("Concat", {x, zero}, pb + "/concat", {{"axis", attr(int64_t(0))}});
        at::Tensor where = at::full({channels}, idx.numel(), at::kInt);
        where.index_put_({idx}, at::arange(idx.numel(), at::kInt));
        x = w.node("Gather", {padded, w.param_tensor(pb + "/channels", where)}, pb + "/scatter",
                   {{"axis", attr(int64_t(0))}});
      }
      terms.push_back(x);
    }
    std::string sum = terms.size() == 1 ? terms[0] : w.node("Sum", terms, base + "/points_sum");
    RowLayout l = make_row_layout(weight.sizes().vec(), ql.channel_axis, weight_spec(bits));
    return w.from_rows_nodes(sum, l, base);
  }
  const RowLayout& l = ql.layout;
  IntRange range{ql.weight_params.qmin, ql.weight_params.qmax};
  QParams params = ql.weight_params;
  const int64_t shift = w.type_shift(bits, range.qmin);
  at::ScalarType type;
  if (l.granularity == Granularity::kGroup) {
    at::Tensor rows_int = ql.weight_int;
    shift_grid(shift, &rows_int, &range, &params);
    std::string q = w.store_int(rows_int, bits, range, base, &type);
    std::string rows = w.dequant(q, type, params, 0, 2, base);
    return w.from_rows_nodes(rows, l, base);
  }
  // Per tensor or per channel: keep the weight's own shape and dequantize along its axis.
  at::Tensor q = from_rows(ql.weight_int, l);
  shift_grid(shift, &q, &range, &params);
  std::string qi = w.store_int(q, bits, range, base, &type);
  return w.dequant(qi, type, params, ql.channel_axis, q.dim(), base);
}

// The activation quantizer on `input`; returns its output. The graph is at opset >= 13
// (qdq_opset): Clip takes its bounds as inputs.
std::string export_activation(Writer& w, const QuantizedLayer& ql, const std::string& input) {
  QParams p = ql.act_params;
  const std::string base = ql.layer.name + "/input";
  int bits = ql.plan.act.bits;
  double s = p.scale.item<double>(), z = p.zero_point.item<double>();
  float lo = float((double(p.qmin) - z) * s), hi = float((double(p.qmax) - z) * s);
  const int64_t shift = w.type_shift(bits, p.qmin);  // the real range [lo, hi] stays
  p.qmin += shift;
  p.qmax += shift;
  p.zero_point = p.zero_point + double(shift);
  auto clip = [&](const std::string& x, double a, double b, const std::string& name) {
    return w.node("Clip",
                  {x, w.param_tensor(name + "_min", at::scalar_tensor(a, at::kFloat)),
                   w.param_tensor(name + "_max", at::scalar_tensor(b, at::kFloat))},
                  name);
  };
  std::string out;
  if (bits <= 8) {
    at::ScalarType type = p.qmin < 0 ? at::kChar : at::kByte;
    std::string x = input;
    if (bits < 8) x = clip(x, lo, hi, base + "/clip");
    std::string scale = w.param_tensor(base + "/scale", p.scale.reshape({}).to(at::kFloat));
    std::string zp =
        w.param_tensor(base + "/zero_point", p.zero_point.reshape({}).round().to(type));
    std::string q = w.node("QuantizeLinear", {x, scale, zp}, base + "/quantize");
    out = w.node("DequantizeLinear", {q, scale, zp}, base + "/dequantize");
  } else {
    std::string scale = w.param_tensor(base + "/scale", p.scale.reshape({}).to(at::kFloat));
    std::string zp = w.param_tensor(base + "/zero_point", p.zero_point.reshape({}).to(at::kFloat));
    std::string x = w.node("Div", {input, scale}, base + "/divide");
    x = w.node("Round", {x}, base + "/round");
    x = w.node("Add", {x, zp}, base + "/add_zero_point");
    x = clip(x, double(p.qmin), double(p.qmax), base + "/saturate");
    x = w.node("Sub", {x, zp}, base + "/sub_zero_point");
    out = w.node("Mul", {x, scale}, base + "/dequantize");
  }
  return out;
}

}  // namespace

int64_t qdq_opset(const Graph& model) { return std::max<int64_t>(model.opset(), 13); }

void check_exportable(const Graph& model) {
  std::string why = upgrade_problem(model, qdq_opset(model));
  MPQ_CHECK(why.empty(), why, " (needed for the QDQ export)");
}

Graph export_qdq(const QuantizedModel& model, const QdqOptions& options, SizeReport* sizes) {
  MPQ_CHECK(options.weight_storage == "packed" || options.weight_storage == "int8",
            "--weight-storage: expected packed or int8, found '", options.weight_storage, "'");
  const Int8Format format = resolve_int8_format(options.int8_format, host_cpu(), "--int8");
  if (format == Int8Format::kReduceRange) {
    for (const QuantizedLayer& ql : model.layers)
      MPQ_ASSERT(!can_saturate(ql.plan), "layer '", ql.layer.name,
                 "': reduce-range export of a plan that was not reduced (apply_int8_format)");
  }
  Graph g = model.graph;
  check_exportable(g);
  upgrade_opset(&g, qdq_opset(g));
  Writer w(&g, options, format);
  std::set<std::string> identities;
  double paper_bytes = 0, float_paper = 0, quantizable = 0;
  for (const QuantizedLayer& ql : model.layers) {
    identities.insert(ql.act_value);
    const at::Tensor weight = model.graph.initializers.at(ql.layer.weight);
    std::string weight_value = ql.layer.weight;
    if (ql.weight_quantized) {
      weight_value = export_weight(w, ql, weight);
      if (ql.multipoint) {
        paper_bytes += double(ql.points.count.sum().item<int64_t>()) *
                       double(ql.points.points.size(2)) * ql.plan.weight.bits / 8.0;
      } else {
        paper_bytes += double(weight.numel()) * ql.plan.weight.bits / 8.0;
      }
    } else {
      paper_bytes += double(weight.numel()) * 4.0;
    }
    float_paper += double(weight.numel()) * 4.0;
    quantizable += double(weight.numel());
    std::string act_value = ql.act_value;
    if (ql.act_quantized) {
      int64_t id = g.find_node(ql.act_value);
      MPQ_ASSERT(id >= 0, "missing ", ql.act_value);
      act_value = export_activation(w, ql, g.nodes[size_t(id)].inputs[0]);
    } else {
      act_value = g.nodes[size_t(g.find_node(ql.act_value))].inputs[0];
    }
    Node& node = g.nodes[size_t(g.find_node(ql.layer.name))];
    node.inputs[size_t(ql.layer.weight_input)] = weight_value;
    node.inputs[size_t(activation_input(ql.layer))] = act_value;
  }
  // Drop the Identity placeholders and every initializer nothing reads any more.
  std::vector<Node> kept;
  for (auto& n : g.nodes) {
    if (!(n.op_type == "Identity" && identities.count(n.name))) kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  std::set<std::string> read;
  for (const auto& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    if (!read.count(it->first) && !g.is_graph_output(it->first)) {
      it = g.initializers.erase(it);
    } else {
      ++it;
    }
  }
  g.topological_sort();
  // Integer weights; float tensors the model keeps (biases, float layers); the rest are the
  // quantizers' parameters (scales, zero points, indices, shapes, unpack constants).
  SizeReport r;
  for (const auto& [name, t] : g.initializers) {
    int64_t bytes = g.initializer_types.count(name) ? (t.numel() + 1) / 2  // INT4 / UINT4
                                                    : int64_t(t.numel() * t.element_size());
    if (w.weight_names.count(name)) {
      r.weight_bytes += bytes;
    } else if (at::isFloatingType(t.scalar_type()) && !w.param_names.count(name)) {
      r.float_bytes += bytes;
    } else {
      r.param_bytes += bytes;
    }
  }
  r.paper_bytes = paper_bytes;
  r.float_paper_bytes = float_paper;
  r.weight_bits_average = quantizable > 0 ? paper_bytes * 8 / quantizable : 0;
  if (sizes) *sizes = r;
  nlohmann::json layers = nlohmann::json::object();
  for (const QuantizedLayer& ql : model.layers) {
    layers[ql.layer.name] = {{"weight_bits", ql.weight_quantized ? ql.plan.weight.bits : 32},
                             {"act_bits", ql.act_quantized ? ql.plan.act.bits : 32}};
    if (ql.multipoint) layers[ql.layer.name]["extra_points"] = extra_points(ql.points);
  }
  nlohmann::json info = model.info;
  info["int8_format"] = int8_format_info(format).name;
  if (options.int8_format == "auto") info["int8_format_auto"] = auto_int8_reason(host_cpu());
  g.metadata["mpq.quantization"] = nlohmann::json({{"info", info}, {"layers", layers}}).dump();
  return g;
}

}  // namespace mpq
