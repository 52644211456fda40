// The opset upgrade (onnx/passes/upgrade_opset.h): the rule table covers every change ONNX's
// schema registry records for the executor's ops up to opset 13; each row's rewrite keeps the
// node's meaning, checked by running an example of the node at the opset before the change and
// after the upgrade in ONNX Runtime (and the upgraded node in mpq's executor); nodes it cannot
// carry are named before any work; whole models exported by PyTorch at opset 9 and 11 compute the
// same after an upgrade to 13.
#include "onnx/passes/upgrade_opset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "exec/executor.h"
#include "exec/op_registry.h"
#include "onnx/builder.h"
#include "onnx/io.h"
#include "pipeline/onnxruntime.h"
#include "support/error_of.h"
#include "support/test_util.h"

namespace mpq {
namespace {

TEST(UpgradeOpset, TableCoversEveryChangeOfTheExecutorsOps) {
  std::set<std::pair<std::string, int64_t>> rows;
  for (const auto& r : upgrade_rules()) {
    EXPECT_TRUE(rows.insert({r.op, r.version}).second)
        << "duplicate row " << r.op << " " << r.version;
    // A row names a real change: the schema begins at that version and existed before it.
    EXPECT_EQ(schema_changes(r.op, r.version - 1, r.version), std::vector<int64_t>{r.version})
        << r.op << " " << r.version;
  }
  for (const std::string& op : OpRegistry::builtin().op_types()) {
    for (int64_t v : schema_changes(op, 7, 13))
      EXPECT_TRUE(rows.count({op, v})) << op << " changed at " << v << " without a rule";
  }
  EXPECT_GE(newest_known_opset(), 13);
}

// One node (or a few) of `op` at `opset` with its inputs.
struct Example {
  Graph graph;
  std::vector<at::Tensor> inputs;
};

std::vector<int64_t> ints(std::initializer_list<int64_t> v) { return v; }

// A builder for the example; at IR version 3 (opsets 7 and 8) initializers would also have to be
// graph inputs, so weights are Constant nodes there.
GraphBuilder builder(const std::string& op, int64_t opset) {
  GraphBuilder b(op + "_example", opset);
  b.set_weights_as_constants(opset < 9);
  return b;
}

Example example(const std::string& op, int64_t opset) {
  GraphBuilder b = builder(op, opset);
  at::manual_seed(7);
  at::Tensor x = at::rand({2, 3, 4}) + 0.5;  // positive: Log, Sqrt, Pow, ReduceLogSum
  std::vector<at::Tensor> inputs = {x};
  std::string in = b.input("x", {2, 3, 4});
  std::vector<std::string> outs;
  auto one = [&](const std::string& y) { outs = {y}; };
  const std::set<std::string> unary = {"Abs",      "Ceil", "Erf",  "Exp",        "Floor",
                                       "Identity", "Log",  "Neg",  "Reciprocal", "Relu",
                                       "Sigmoid",  "Sign", "Sqrt", "Tanh",       "IsNaN"};
  const std::set<std::string> binary = {"Add", "Div", "Mul", "Sub", "Pow", "Greater", "Less"};
  const std::set<std::string> variadic = {"Max", "Min", "Mean", "Sum"};
  const std::set<std::string> reduce = {
      "ReduceL1",   "ReduceL2",  "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
      "ReduceMean", "ReduceMin", "ReduceProd",   "ReduceSum",       "ReduceSumSquare"};
  auto second_input = [&](const at::Tensor& t) {
    inputs.push_back(t);
    std::vector<DimSpec> shape(t.sizes().begin(), t.sizes().end());
    return b.input("x2", shape, t.scalar_type() == at::kLong ? 7 : 1);
  };
  auto image = [&](at::IntArrayRef shape) {
    inputs = {at::randn(shape)};
    b = builder(op, opset);  // the declared input changes
    std::vector<DimSpec> dims(shape.begin(), shape.end());
    return b.input("x", dims);
  };
  if (unary.count(op)) {
    one(b.node(op, {in}));
  } else if (binary.count(op)) {
    one(b.node(op, {in, second_input(at::rand({3, 4}) + 0.5)}));
  } else if (variadic.count(op)) {
    one(b.node(op, {in, second_input(at::rand({2, 3, 4}))}));
  } else if (op == "Equal" || op == "Mod") {
    inputs = {at::randint(1, 5, {2, 3}, at::kLong)};
    b = builder(op, opset);
    std::string a = b.input("x", {2, 3}, 7);
    one(b.node(op, {a, second_input(at::randint(1, 5, {2, 3}, at::kLong))}));
  } else if (reduce.count(op)) {
    if (op == "ReduceSum" && opset >= 13)
      one(b.node(op, {in, b.constant("axes", at::tensor(ints({1})))}, {{"keepdims", attr(1)}}));
    else
      one(b.node(op, {in}, {{"axes", attr(ints({1}))}, {"keepdims", attr(1)}}));
  } else if (op == "ArgMax" || op == "ArgMin") {
    one(b.node(op, {in}, {{"axis", attr(int64_t(1))}, {"keepdims", attr(1)}}));
  } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
    // axis 1 of a 3-D input: before 13 the op sees [2, 12], from 13 it would see axis 1 alone.
    one(b.node(op, {in}, {{"axis", attr(int64_t(1))}}));
    outs.push_back(b.node(op, {in}, {{"axis", attr(int64_t(-1))}}, op + "_last"));
  } else if (op == "AveragePool" || op == "MaxPool") {
    std::string x4 = image({1, 2, 7, 7});
    one(b.node(op, {x4},
               {{"kernel_shape", attr(ints({3, 3}))},
                {"strides", attr(ints({2, 2}))},
                {"pads", attr(ints({1, 1, 1, 1}))}}));
  } else if (op == "BatchNormalization") {
    std::string x4 = image({2, 3, 4, 4});
    Attrs a = {{"epsilon", attr(1e-3)}};
    if (opset < 9) a["spatial"] = attr(int64_t(1));
    one(b.node(op,
               {x4, b.weight("scale", at::rand({3}) + 0.5), b.weight("bias", at::randn({3})),
                b.weight("mean", at::randn({3})), b.weight("var", at::rand({3}) + 0.5)},
               a));
  } else if (op == "Cast") {
    one(b.node(op, {in}, {{"to", attr(int64_t(11))}}));  // double
  } else if (op == "Clip") {
    if (opset < 11)
      one(b.node(op, {in}, {{"min", attr(0.7)}, {"max", attr(1.2)}}));
    else
      one(b.node(op, {in, b.constant("lo", at::scalar_tensor(0.7, at::kFloat)),
                      b.constant("hi", at::scalar_tensor(1.2, at::kFloat))}));
  } else if (op == "Concat") {
    one(b.node(op, {in, second_input(at::randn({2, 2, 4}))}, {{"axis", attr(int64_t(1))}}));
  } else if (op == "Constant") {
    one(b.node("Add", {in, b.constant("c", at::randn({3, 4}))}));
  } else if (op == "Conv" || op == "ConvTranspose") {
    std::string x4 = image({1, 2, 5, 5});
    at::Tensor w = op == "Conv" ? at::randn({3, 2, 3, 3}) : at::randn({2, 3, 3, 3});
    one(b.node(op, {x4, b.weight("w", w)}, {{"pads", attr(ints({1, 1, 1, 1}))}}));
  } else if (op == "DepthToSpace" || op == "SpaceToDepth") {
    std::string x4 =
        image(op == "DepthToSpace" ? at::IntArrayRef({1, 8, 2, 3}) : at::IntArrayRef({1, 2, 4, 6}));
    one(b.node(op, {x4}, {{"blocksize", attr(int64_t(2))}}));
  } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    std::string s = b.constant("s", at::scalar_tensor(0.01, at::kFloat));
    std::string z = b.constant("z", at::scalar_tensor(3, at::kByte));
    one(b.node("DequantizeLinear", {b.node("QuantizeLinear", {in, s, z}), s, z}));
  } else if (op == "Dropout") {
    if (opset < 12)
      one(b.node(op, {in}, {{"ratio", attr(0.3)}}));
    else
      one(b.node(op, {in, b.constant("ratio", at::scalar_tensor(0.3, at::kFloat))}));
  } else if (op == "Expand") {
    one(b.node(op, {in, b.constant("shape", at::tensor(ints({2, 2, 3, 4})))}));
  } else if (op == "Flatten") {
    one(b.node(op, {in}, {{"axis", attr(int64_t(2))}}));
  } else if (op == "Gather") {
    one(b.node(op, {in, b.constant("i", at::tensor(ints({2, 0, 1})))},
               {{"axis", attr(int64_t(1))}}));
  } else if (op == "GatherElements") {
    one(b.node(op, {in, b.constant("i", at::randint(0, 3, {2, 3, 4}, at::kLong))},
               {{"axis", attr(int64_t(1))}}));
  } else if (op == "Gemm") {
    inputs = {at::randn({2, 3})};
    b = builder(op, opset);
    std::string a = b.input("x", {2, 3});
    one(b.node(op, {a, b.weight("b", at::randn({4, 3})), b.weight("c", at::randn({4}))},
               {{"transB", attr(int64_t(1))}}));
  } else if (op == "MatMul") {
    one(b.node(op, {in, b.weight("w", at::randn({4, 5}))}));
  } else if (op == "NonZero") {
    one(b.node(op, {b.node("Greater", {in, b.constant("t", at::scalar_tensor(1.0, at::kFloat))})}));
  } else if (op == "PRelu") {
    one(b.node(op, {in, b.weight("slope", at::randn({3, 1}))}));
  } else if (op == "Pad") {
    std::vector<int64_t> pads = {0, 1, 2, 0, 2, 1};
    if (opset < 11)
      one(b.node(op, {in}, {{"pads", attr(pads)}, {"value", attr(0.25)}}));
    else
      one(b.node(op, {in, b.constant("pads", at::tensor(pads)),
                      b.constant("v", at::scalar_tensor(0.25, at::kFloat))}));
  } else if (op == "Reshape") {
    one(b.node(op, {in, b.constant("shape", at::tensor(ints({4, 6})))}));
  } else if (op == "Resize" || op == "Upsample") {
    std::string x4 = image({1, 1, 3, 4});
    at::Tensor scales = at::tensor(std::vector<float>{1, 1, 2, 1.5});
    for (const char* mode : {"nearest", "linear"}) {
      Attrs a = {{"mode", attr(mode)}};
      std::string y;
      if (op == "Upsample" && opset < 9) {
        a["scales"] = attr(std::vector<double>{1, 1, 2, 1.5});
        y = b.node(op, {x4}, a, std::string("up_") + mode);
      } else if (op == "Upsample" || opset == 10) {
        y = b.node(op, {x4, b.constant(std::string("s_") + mode, scales)}, a,
                   std::string("up_") + mode);
      } else {
        y = b.node(op,
                   {x4, b.constant(std::string("roi_") + mode, at::zeros({0})),
                    b.constant(std::string("s_") + mode, scales)},
                   a, std::string("up_") + mode);
      }
      outs.push_back(y);
    }
  } else if (op == "Shape" || op == "Size") {
    one(b.node(op, {in}));
  } else if (op == "Slice") {
    if (opset < 10)
      one(b.node(op, {in},
                 {{"starts", attr(ints({0, 1}))},
                  {"ends", attr(ints({2, 3}))},
                  {"axes", attr(ints({1, 2}))}}));
    else
      one(b.node(op, {in, b.constant("st", at::tensor(ints({0, 1}))),
                      b.constant("en", at::tensor(ints({2, 3}))),
                      b.constant("ax", at::tensor(ints({1, 2})))}));
  } else if (op == "Split") {
    Attrs a = {{"axis", attr(int64_t(2))}};
    std::vector<std::string> ys;
    if (opset < 13) {
      a["split"] = attr(ints({1, 3}));
      ys = b.node_n(op, {in}, 2, a);
    } else {
      ys = b.node_n(op, {in, b.constant("split", at::tensor(ints({1, 3})))}, 2, a);
    }
    outs = ys;
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    int64_t axis = op == "Squeeze" ? 0 : 1;
    std::string src = in;
    if (op == "Squeeze") {  // a dimension of 1 to squeeze: the first sample
      at::Tensor first = at::randn({1, 3, 4});
      inputs = {first};
      b = builder(op, opset);
      src = b.input("x", {1, 3, 4});
    }
    if (opset < 13)
      one(b.node(op, {src}, {{"axes", attr(ints({axis}))}}));
    else
      one(b.node(op, {src, b.constant("axes", at::tensor(ints({axis})))}));
  } else if (op == "Tile") {
    one(b.node(op, {in, b.constant("r", at::tensor(ints({1, 2, 1})))}));
  } else if (op == "Transpose") {
    one(b.node(op, {in}, {{"perm", attr(ints({1, 0, 2}))}}));
  } else {
    ADD_FAILURE() << "no example for " << op;
    one(b.node("Identity", {in}));
  }
  for (const auto& y : outs) b.output(y);
  Example e{b.build(), inputs};
  // Declared outputs need a type and a rank: mpq's executor says what they are.
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> ys = Executor(e.graph).run(e.inputs);
  for (size_t k = 0; k < ys.size(); ++k) {
    ValueInfo& v = e.graph.outputs[k];
    v.elem_type = ys[k].scalar_type() == at::kBool     ? 9
                  : ys[k].scalar_type() == at::kLong   ? 7
                  : ys[k].scalar_type() == at::kDouble ? 11
                                                       : 1;
    v.has_shape = true;
    v.shape.clear();
    for (int64_t d = 0; d < ys[k].dim(); ++d) v.shape.push_back(Dim{-1, "d" + std::to_string(d)});
  }
  return e;
}

void expect_same(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].sizes(), want[k].sizes()) << what << " output " << k;
    at::Tensor a = got[k].to(at::kDouble), b = want[k].to(at::kDouble);
    double scale = std::max(1.0, b.numel() ? b.abs().max().item<double>() : 0.0);
    EXPECT_LE(b.numel() ? (a - b).abs().max().item<double>() : 0.0, 1e-5 * scale)
        << what << " output " << k;
  }
}

TEST(UpgradeOpset, EveryRuleKeepsTheNodesMeaningInOnnxRuntime) {
  std::string why;
  if (!onnxruntime_available(&why)) GTEST_SKIP() << why;
  const std::string dir = test::temp_dir();
  int checked = 0;
  for (const auto& r : upgrade_rules()) {
    const std::string what = std::string(r.op) + " " + std::to_string(r.version - 1) + " -> " +
                             std::to_string(r.version) + " (" + r.change + ")";
    SCOPED_TRACE(what);
    Example e = example(r.op, r.version - 1);
    const std::string before = dir + "/before.onnx", after = dir + "/after.onnx",
                      to13 = dir + "/to13.onnx";
    export_onnx(e.graph, before);
    std::vector<at::Tensor> want = run_onnxruntime(before, e.inputs);
    for (int64_t target : {r.version, std::max<int64_t>(r.version, 13)}) {
      Graph up = e.graph;
      upgrade_opset(&up, target);
      EXPECT_EQ(up.opset(), target);
      const std::string file = target == r.version ? after : to13;
      export_onnx(up, file);  // through the ONNX checker at the new opset
      expect_same(run_onnxruntime(file, e.inputs), want,
                  what + ", ONNX Runtime at " + std::to_string(target));
      Graph back = import_onnx(file);
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> ours = Executor(back).run(e.inputs);
      expect_same(ours, want, what + ", mpq at " + std::to_string(target));
    }
    ++checked;
  }
  EXPECT_EQ(checked, int(upgrade_rules().size()));
}

TEST(UpgradeOpset, WholeModelsComputeTheSameAfterTheUpgrade) {
  std::string why;
  if (!onnxruntime_available(&why)) GTEST_SKIP() << why;
  for (const char* file :
       {"tests/models/torch_resnet_op9.onnx", "tests/models/torch_resnet_op11.onnx"}) {
    Graph g = import_onnx(test::source_path(file));
    ASSERT_LT(g.opset(), 13) << file;
    Graph up = g;
    upgrade_opset(&up, 13);
    const std::string out = test::temp_dir() + "/up.onnx";
    export_onnx(up, out);
    at::manual_seed(1);
    std::vector<int64_t> shape;
    for (const auto& d : g.inputs[0].shape) shape.push_back(d.fixed() ? d.value : 2);
    at::Tensor x = at::randn(shape);
    expect_same(run_onnxruntime(out, {x}), run_onnxruntime(test::source_path(file), {x}), file);
  }
}

TEST(UpgradeOpset, NodesItCannotCarryAreNamedBeforeAnyWork) {
  GraphBuilder b("bn", 8);
  std::string x = b.input("x", {1, 2, 3, 3});
  b.output(b.node("BatchNormalization",
                  {x, b.weight("s", at::ones({2})), b.weight("b", at::zeros({2})),
                   b.weight("m", at::zeros({2})), b.weight("v", at::ones({2}))},
                  {{"spatial", attr(int64_t(0))}}, "per_position_bn"));
  Graph g = b.build();
  std::string why = upgrade_problem(g, 13);
  for (const char* needle : {"per_position_bn", "BatchNormalization", "spatial=0", "13"})
    EXPECT_NE(why.find(needle), std::string::npos) << why;
  std::string e = testing::error_of([&] { upgrade_opset(&g, 13); });
  EXPECT_EQ(e, why);
  EXPECT_EQ(g.opset(), 8);  // untouched

  // An op whose change has no row (LRN is not an op mpq runs, so the table has none).
  GraphBuilder c("lrn", 12);
  std::string y = c.input("x", {1, 2, 3, 3});
  c.output(c.node("LRN", {y}, {{"size", attr(int64_t(3))}}, "norm1"));
  why = upgrade_problem(c.build(), 13);
  for (const char* needle : {"norm1", "LRN", "opset 12", "13", "no rule"})
    EXPECT_NE(why.find(needle), std::string::npos) << why;
  EXPECT_EQ(upgrade_problem(c.build(), 12), "");
  EXPECT_NE(upgrade_problem(c.build(), newest_known_opset() + 1).find("knows operators"),
            std::string::npos);
}

}  // namespace
}  // namespace mpq
