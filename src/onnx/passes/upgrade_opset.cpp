// Opset upgrade; see upgrade_opset.h.
#include "onnx/passes/upgrade_opset.h"

#include <ATen/ATen.h>
#include <onnx/defs/schema.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "onnx/builder.h"

namespace mpq {
namespace {

// A name no value, node or initializer of `g` has yet.
std::string fresh_name(const Graph& g, const std::string& base) {
  std::set<std::string> taken;
  for (const auto& [name, t] : g.initializers) taken.insert(name);
  for (const auto& n : g.nodes) {
    taken.insert(n.name);
    taken.insert(n.outputs.begin(), n.outputs.end());
  }
  for (const auto& v : g.inputs) taken.insert(v.name);
  std::string name = base;
  for (int k = 1; taken.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

std::string add_constant(Graph* g, const std::string& base, const at::Tensor& value) {
  std::string name = fresh_name(*g, base);
  g->initializers[name] = value;
  return name;
}

std::string int64_list(Graph* g, const Node& n, const char* what, const std::vector<int64_t>& v) {
  return add_constant(g, n.name + "/" + what, at::tensor(v, at::kLong));
}

std::string float_scalar(Graph* g, const Node& n, const char* what, double v) {
  return add_constant(g, n.name + "/" + what, at::scalar_tensor(v, at::kFloat));
}

// The node's input list padded with omitted inputs up to `count`.
void pad_inputs(Node* n, size_t count) {
  if (n->inputs.size() < count) n->inputs.resize(count);
}

// Drops trailing omitted inputs (ONNX allows leaving them out).
void trim_inputs(Node* n) {
  while (!n->inputs.empty() && n->inputs.back().empty()) n->inputs.pop_back();
}

// An ints attribute `name` becomes input `index` (int64 1-D), when present.
void ints_to_input(Graph* g, Node* n, const char* name, size_t index) {
  auto it = n->attrs.find(name);
  if (it == n->attrs.end()) return;
  std::string value = int64_list(g, *n, name, it->second.ints);
  n->attrs.erase(it);
  pad_inputs(n, index + 1);
  n->inputs[index] = value;
}

void clip_11(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  pad_inputs(&n, 3);
  for (auto [name, index] : {std::pair<const char*, size_t>{"min", 1}, {"max", 2}}) {
    auto it = n.attrs.find(name);
    if (it == n.attrs.end()) continue;
    double v = it->second.f;
    n.attrs.erase(it);
    n.inputs[index] = float_scalar(g, g->nodes[i], name, v);
  }
  trim_inputs(&g->nodes[i]);
}

void pad_11(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  auto pads = n.attrs.find("pads");
  MPQ_CHECK(pads != n.attrs.end(), g->where(n), ": Pad without 'pads'");
  std::vector<int64_t> values = pads->second.ints;
  n.attrs.erase(pads);
  double fill = 0;
  auto value = n.attrs.find("value");
  if (value != n.attrs.end()) {
    fill = value->second.f;
    n.attrs.erase(value);
  }
  n.inputs.resize(1);
  n.inputs.push_back(int64_list(g, g->nodes[i], "pads", values));
  if (fill != 0) g->nodes[i].inputs.push_back(float_scalar(g, g->nodes[i], "value", fill));
}

void slice_10(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  n.inputs.resize(1);
  ints_to_input(g, &g->nodes[i], "starts", 1);
  ints_to_input(g, &g->nodes[i], "ends", 2);
  ints_to_input(g, &g->nodes[i], "axes", 3);
}

void upsample_9(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  auto scales = n.attrs.find("scales");
  MPQ_CHECK(scales != n.attrs.end(), g->where(n), ": Upsample without 'scales'");
  std::vector<float> s(scales->second.floats.begin(), scales->second.floats.end());
  n.attrs.erase(scales);
  std::string name = add_constant(g, n.name + "/scales", at::tensor(s, at::kFloat));
  g->nodes[i].inputs.resize(1);
  g->nodes[i].inputs.push_back(name);
}

// Upsample is deprecated at 10: Resize of opset 10 has its inputs (X, scales) and mode.
void upsample_10(Graph* g, size_t i) { g->nodes[i].op_type = "Resize"; }

// Resize 11 adds roi and coordinate modes; opset 10's behaviour is "asymmetric" coordinates with
// nearest rounding down.
void resize_11(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  MPQ_CHECK(n.inputs.size() >= 2, g->where(n), ": Resize-10 needs X and scales");
  std::string scales = n.inputs[1];
  std::string roi = add_constant(g, n.name + "/roi", at::zeros({0}, at::kFloat));
  Node& m = g->nodes[i];
  m.inputs = {m.inputs[0], roi, scales};
  m.attrs["coordinate_transformation_mode"] = attr("asymmetric");
  auto mode = m.attrs.find("mode");
  if (mode == m.attrs.end() || mode->second.s == "nearest") m.attrs["nearest_mode"] = attr("floor");
}

void dropout_12(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  auto ratio = n.attrs.find("ratio");
  if (ratio == n.attrs.end()) return;
  double r = ratio->second.f;
  n.attrs.erase(ratio);
  std::string name = float_scalar(g, n, "ratio", r);
  g->nodes[i].inputs.resize(1);
  g->nodes[i].inputs.push_back(name);
}

void axes_input_13(Graph* g, size_t i) { ints_to_input(g, &g->nodes[i], "axes", 1); }
void split_13(Graph* g, size_t i) { ints_to_input(g, &g->nodes[i], "split", 1); }

// Before 13, Softmax, LogSoftmax and Hardmax flatten the input to 2-D at `axis` (default 1) and
// work on the second dimension; from 13 they work on one axis (default -1). Axis -1 means the same
// in both; anything else becomes Flatten -> op on the last axis -> Reshape to the input's shape.
void coerced_axis_13(Graph* g, size_t i) {
  Node& n = g->nodes[i];
  int64_t axis = 1;
  auto it = n.attrs.find("axis");
  if (it != n.attrs.end()) axis = it->second.i;
  n.attrs["axis"] = attr(int64_t(-1));
  if (axis == -1) return;
  const std::string x = n.inputs[0], y = n.outputs[0], base = n.name;
  Node shape, flatten, reshape;
  shape.name = fresh_name(*g, base + "/shape");
  shape.op_type = "Shape";
  shape.inputs = {x};
  shape.outputs = {shape.name};
  g->nodes.push_back(shape);
  flatten.name = fresh_name(*g, base + "/flatten");
  flatten.op_type = "Flatten";
  flatten.inputs = {x};
  flatten.outputs = {flatten.name};
  flatten.attrs["axis"] = attr(axis);
  g->nodes.push_back(flatten);
  const std::string flat_out = fresh_name(*g, base + "/2d");
  g->nodes[i].inputs[0] = flatten.name;
  g->nodes[i].outputs[0] = flat_out;
  reshape.name = fresh_name(*g, base + "/reshape");
  reshape.op_type = "Reshape";
  reshape.inputs = {flat_out, shape.name};
  reshape.outputs = {y};
  g->nodes.push_back(reshape);
}

void batchnorm_9(Graph* g, size_t i) { g->nodes[i].attrs.erase("spatial"); }

// One row per (op, version) where the schema changed between opsets 8 and 13; the rest of the
// table's purpose is to say that a change was looked at. Sorted by op, then version.
constexpr const char* kTypes = "more tensor types";
constexpr const char* kNegAxis = "negative axes";
constexpr std::array<UpgradeRule, kNumUpgradeRules> kRules = {{
    {"Abs", 13, kTypes, nullptr},
    {"Add", 13, kTypes, nullptr},
    {"ArgMax", 11, kNegAxis, nullptr},
    {"ArgMax", 12, "select_last_index (default 0: as before)", nullptr},
    {"ArgMax", 13, kTypes, nullptr},
    {"ArgMin", 11, kNegAxis, nullptr},
    {"ArgMin", 12, "select_last_index (default 0: as before)", nullptr},
    {"ArgMin", 13, kTypes, nullptr},
    {"AveragePool", 10, "ceil_mode (default 0: as before)", nullptr},
    {"AveragePool", 11, "pads may be given with auto_pad unset; same results", nullptr},
    {"BatchNormalization", 9, "'spatial' removed (spatial 1 is the only mode left)", batchnorm_9},
    {"Cast", 9, "string types", nullptr},
    {"Cast", 13, kTypes, nullptr},
    {"Ceil", 13, kTypes, nullptr},
    {"Clip", 11, "min and max become inputs", clip_11},
    {"Clip", 12, kTypes, nullptr},
    {"Clip", 13, kTypes, nullptr},
    {"Concat", 11, kNegAxis, nullptr},
    {"Concat", 13, kTypes, nullptr},
    {"Constant", 9, kTypes, nullptr},
    {"Constant", 11, "sparse values", nullptr},
    {"Constant", 12, "value_float and other value_* attributes", nullptr},
    {"Constant", 13, kTypes, nullptr},
    {"Conv", 11, "kernel_shape may be inferred; same results", nullptr},
    {"ConvTranspose", 11, "kernel_shape may be inferred; same results", nullptr},
    {"DepthToSpace", 11, "mode (default DCR: as before)", nullptr},
    {"DepthToSpace", 13, kTypes, nullptr},
    {"DequantizeLinear", 13, "per-axis scales", nullptr},
    {"Div", 13, kTypes, nullptr},
    {"Dropout", 10, "mask output as bool", nullptr},
    {"Dropout", 12, "ratio becomes an input, training_mode input", dropout_12},
    {"Dropout", 13, kTypes, nullptr},
    {"Equal", 11, kTypes, nullptr},
    {"Equal", 13, kTypes, nullptr},
    {"Erf", 13, kTypes, nullptr},
    {"Exp", 13, kTypes, nullptr},
    {"Expand", 13, kTypes, nullptr},
    {"Flatten", 9, kTypes, nullptr},
    {"Flatten", 11, kNegAxis, nullptr},
    {"Flatten", 13, kTypes, nullptr},
    {"Floor", 13, kTypes, nullptr},
    {"Gather", 11, "negative indices", nullptr},
    {"Gather", 13, kTypes, nullptr},
    {"GatherElements", 13, kTypes, nullptr},
    {"Gemm", 9, kTypes, nullptr},
    {"Gemm", 11, "C optional", nullptr},
    {"Gemm", 13, kTypes, nullptr},
    {"Greater", 9, kTypes, nullptr},
    {"Greater", 13, kTypes, nullptr},
    {"Hardmax", 11, kNegAxis, nullptr},
    {"Hardmax", 13, "one axis instead of a 2-D coercion", coerced_axis_13},
    {"Identity", 13, kTypes, nullptr},
    {"IsNaN", 13, kTypes, nullptr},
    {"Less", 9, kTypes, nullptr},
    {"Less", 13, kTypes, nullptr},
    {"Log", 13, kTypes, nullptr},
    {"LogSoftmax", 11, kNegAxis, nullptr},
    {"LogSoftmax", 13, "one axis instead of a 2-D coercion", coerced_axis_13},
    {"MatMul", 9, kTypes, nullptr},
    {"MatMul", 13, kTypes, nullptr},
    {"Max", 8, "multidirectional broadcasting", nullptr},
    {"Max", 12, kTypes, nullptr},
    {"Max", 13, kTypes, nullptr},
    {"MaxPool", 8, "storage_order and an Indices output", nullptr},
    {"MaxPool", 10, "ceil_mode and dilations (defaults: as before)", nullptr},
    {"MaxPool", 11, "pads may be given with auto_pad unset; same results", nullptr},
    {"MaxPool", 12, kTypes, nullptr},
    {"Mean", 8, "multidirectional broadcasting", nullptr},
    {"Mean", 13, kTypes, nullptr},
    {"Min", 8, "multidirectional broadcasting", nullptr},
    {"Min", 12, kTypes, nullptr},
    {"Min", 13, kTypes, nullptr},
    {"Mod", 13, kTypes, nullptr},
    {"Mul", 13, kTypes, nullptr},
    {"Neg", 13, kTypes, nullptr},
    {"NonZero", 13, kTypes, nullptr},
    {"PRelu", 9, kTypes, nullptr},
    {"Pad", 11, "pads and value become inputs", pad_11},
    {"Pad", 13, kTypes, nullptr},
    {"Pow", 12, "exponent of another type", nullptr},
    {"Pow", 13, kTypes, nullptr},
    {"QuantizeLinear", 13, "per-axis scales", nullptr},
    {"Reciprocal", 13, kTypes, nullptr},
    {"ReduceL1", 11, kNegAxis, nullptr},
    {"ReduceL1", 13, kTypes, nullptr},
    {"ReduceL2", 11, kNegAxis, nullptr},
    {"ReduceL2", 13, kTypes, nullptr},
    {"ReduceLogSum", 11, kNegAxis, nullptr},
    {"ReduceLogSum", 13, kTypes, nullptr},
    {"ReduceLogSumExp", 11, kNegAxis, nullptr},
    {"ReduceLogSumExp", 13, kTypes, nullptr},
    {"ReduceMax", 11, kNegAxis, nullptr},
    {"ReduceMax", 12, kTypes, nullptr},
    {"ReduceMax", 13, kTypes, nullptr},
    {"ReduceMean", 11, kNegAxis, nullptr},
    {"ReduceMean", 13, kTypes, nullptr},
    {"ReduceMin", 11, kNegAxis, nullptr},
    {"ReduceMin", 12, kTypes, nullptr},
    {"ReduceMin", 13, kTypes, nullptr},
    {"ReduceProd", 11, kNegAxis, nullptr},
    {"ReduceProd", 13, kTypes, nullptr},
    {"ReduceSum", 11, kNegAxis, nullptr},
    {"ReduceSum", 13, "axes becomes an input", axes_input_13},
    {"ReduceSumSquare", 11, kNegAxis, nullptr},
    {"ReduceSumSquare", 13, kTypes, nullptr},
    {"Relu", 13, kTypes, nullptr},
    {"Reshape", 13, kTypes, nullptr},
    {"Resize", 11, "roi input and coordinate modes (opset 10: asymmetric, floor)", resize_11},
    {"Resize", 13, "roi optional, more modes (defaults: as in 11)", nullptr},
    {"Shape", 13, kTypes, nullptr},
    {"Sigmoid", 13, kTypes, nullptr},
    {"Sign", 13, kTypes, nullptr},
    {"Size", 13, kTypes, nullptr},
    {"Slice", 10, "starts, ends and axes become inputs, steps input", slice_10},
    {"Slice", 11, kNegAxis, nullptr},
    {"Slice", 13, kTypes, nullptr},
    {"Softmax", 11, kNegAxis, nullptr},
    {"Softmax", 13, "one axis instead of a 2-D coercion", coerced_axis_13},
    {"SpaceToDepth", 13, kTypes, nullptr},
    {"Split", 11, kNegAxis, nullptr},
    {"Split", 13, "split becomes an input", split_13},
    {"Sqrt", 13, kTypes, nullptr},
    {"Squeeze", 11, kNegAxis, nullptr},
    {"Squeeze", 13, "axes becomes an input", axes_input_13},
    {"Sub", 13, kTypes, nullptr},
    {"Sum", 8, "multidirectional broadcasting", nullptr},
    {"Sum", 13, kTypes, nullptr},
    {"Tanh", 13, kTypes, nullptr},
    {"Tile", 13, kTypes, nullptr},
    {"Transpose", 13, kTypes, nullptr},
    {"Unsqueeze", 11, kNegAxis, nullptr},
    {"Unsqueeze", 13, "axes becomes an input", axes_input_13},
    {"Upsample", 9, "scales becomes an input", upsample_9},
    {"Upsample", 10, "deprecated: Resize", upsample_10},
}};

constexpr bool every_row_filled() {
  for (const auto& r : kRules)
    if (r.op == nullptr) return false;
  return true;
}
static_assert(every_row_filled(), "kNumUpgradeRules counts more rows than the table has");

const UpgradeRule* find_rule(const std::string& op, int64_t version) {
  for (const auto& r : kRules)
    if (op == r.op && version == r.version) return &r;
  return nullptr;
}

// What stops `n` (at `from`) reaching `target`, or "".
std::string node_problem(const Graph& g, const Node& n, int64_t from, int64_t target) {
  if (!n.domain.empty() && n.domain != "ai.onnx") return "";
  std::string op = n.op_type;
  for (int64_t v = from + 1; v <= target; ++v) {
    const auto* before = onnx::OpSchemaRegistry::Schema(op, int(v - 1), "");
    const auto* now = onnx::OpSchemaRegistry::Schema(op, int(v), "");
    if (!before) continue;  // not an op at the previous opset: nothing to carry over
    if (!now || now->SinceVersion() != v) continue;
    const UpgradeRule* rule = find_rule(op, v);
    if (!rule) {
      return g.where(n) + " cannot be upgraded from opset " + std::to_string(from) + " to " +
             std::to_string(target) + ": " + op + " changed at opset " + std::to_string(v) +
             " and mpq has no rule for that change";
    }
    if (rule->rewrite == batchnorm_9) {
      auto s = n.attrs.find("spatial");
      if (s != n.attrs.end() && s->second.i == 0)
        return g.where(n) + " cannot be upgraded to opset " + std::to_string(target) +
               ": spatial=0 (per-position statistics) has no form after opset 8";
    }
    if (rule->rewrite == upsample_10) op = "Resize";
  }
  return "";
}

}  // namespace

const std::array<UpgradeRule, kNumUpgradeRules>& upgrade_rules() { return kRules; }

std::vector<int64_t> schema_changes(const std::string& op, int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t v = from + 1; v <= to; ++v) {
    const auto* before = onnx::OpSchemaRegistry::Schema(op, int(v - 1), "");
    const auto* now = onnx::OpSchemaRegistry::Schema(op, int(v), "");
    if (before && now && now->SinceVersion() == v) out.push_back(v);
  }
  return out;
}

int64_t newest_known_opset() {
  return onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("").second;
}

std::string upgrade_problem(const Graph& graph, int64_t target) {
  const int64_t from = graph.opset();
  if (from >= target) return "";
  if (target > newest_known_opset())
    return graph.source + ": cannot upgrade to opset " + std::to_string(target) +
           ": this build knows operators up to opset " + std::to_string(newest_known_opset());
  for (const Node& n : graph.nodes) {
    std::string why = node_problem(graph, n, from, target);
    if (!why.empty()) return why;
  }
  return "";
}

void upgrade_opset(Graph* graph, int64_t target) {
  const int64_t from = graph->opset();
  if (from >= target) return;
  std::string why = upgrade_problem(*graph, target);
  MPQ_CHECK(why.empty(), why);
  const size_t count = graph->nodes.size();  // rewrites append nodes; those are already new
  for (size_t i = 0; i < count; ++i) {
    if (!graph->nodes[i].domain.empty() && graph->nodes[i].domain != "ai.onnx") continue;
    for (int64_t v = from + 1; v <= target; ++v) {
      const std::string op = graph->nodes[i].op_type;
      const auto* before = onnx::OpSchemaRegistry::Schema(op, int(v - 1), "");
      const auto* now = onnx::OpSchemaRegistry::Schema(op, int(v), "");
      if (!before || !now || now->SinceVersion() != v) continue;
      const UpgradeRule* rule = find_rule(op, v);
      MPQ_ASSERT(rule, "no rule for ", op, " ", v, " after upgrade_problem");
      if (rule->rewrite) rule->rewrite(graph, i);
    }
  }
  graph->opsets[""] = target;
  graph->opsets.erase("ai.onnx");
  // The IR version each opset came with (onnx/helper.py's table): an older IR cannot carry it.
  const int64_t ir = target >= 21   ? 10
                     : target >= 19 ? 9
                     : target >= 15 ? 8
                     : target >= 13 ? 7
                     : target >= 12 ? 7
                     : target >= 11 ? 6
                     : target >= 10 ? 5
                                    : 4;
  graph->ir_version = std::max(graph->ir_version, ir);
  graph->topological_sort();
}

}  // namespace mpq
