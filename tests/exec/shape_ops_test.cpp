// Shape and data-movement kernels: gradients against finite differences for every op that passes
// data through, and the behaviour ONNX's node tests (ONNX 1.12, opsets up to 17) do not reach:
// Split's num_outputs (18), Pad's axes input (18) and wrap mode (19), attribute forms of old
// opsets, Reshape's allowzero, Cast truncation, negative-step and out-of-range Slice bounds, and
// the clear errors for what mpq rejects.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "exec/op_test_util.h"

namespace mpq {
namespace {

using test::check_gradient;
using test::float_attr;
using test::int_attr;
using test::ints_attr;
using test::single_node_graph;
using test::string_attr;

using Attrs = std::map<std::string, Attribute>;

Graph graph_of(const std::string& op, int num_inputs, int64_t opset, const Attrs& attrs = {},
               int num_outputs = 1) {
  Graph g = single_node_graph(op, num_inputs, num_outputs, opset);
  g.nodes[0].attrs = attrs;
  return g;
}

std::vector<at::Tensor> run_all(const std::string& op, const std::vector<at::Tensor>& inputs,
                                int64_t opset, const Attrs& attrs = {}, int num_outputs = 1) {
  Graph g = graph_of(op, int(inputs.size()), opset, attrs, num_outputs);
  return Executor(g).run(inputs);
}

at::Tensor run_op(const std::string& op, const std::vector<at::Tensor>& inputs, int64_t opset,
                  const Attrs& attrs = {}) {
  return run_all(op, inputs, opset, attrs)[0];
}

at::Tensor ints(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }

at::Tensor doubles(int64_t n, at::IntArrayRef shape) {
  return at::arange(n, at::kDouble).mul(0.37).sin().reshape(shape);
}

// The error an op raises, or "" if it ran.
std::string error_of(const std::string& op, const std::vector<at::Tensor>& inputs, int64_t opset,
                     const Attrs& attrs = {}, int num_outputs = 1) {
  try {
    run_all(op, inputs, opset, attrs, num_outputs);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_equal(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  ASSERT_EQ(got.scalar_type(), want.scalar_type());
  EXPECT_TRUE(at::equal(got, want)) << "got " << got << "\nwant " << want;
}

struct GradCase {
  std::string op;
  int64_t opset;
  Attrs attrs;
  std::vector<at::Tensor> inputs;
};

TEST(ShapeOps, GradientsMatchFiniteDifferences) {
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const std::vector<GradCase> cases = {
      {"Flatten", 17, {{"axis", int_attr(2)}}, {doubles(12, {2, 3, 2})}},
      {"Reshape", 17, {}, {doubles(6, {2, 3}), ints({3, -1})}},
      {"Transpose", 17, {{"perm", ints_attr({1, 2, 0})}}, {doubles(12, {2, 3, 2})}},
      {"Concat", 17, {{"axis", int_attr(-1)}}, {doubles(4, {2, 2}), doubles(6, {2, 3})}},
      {"Slice",
       17,
       {},
       {doubles(20, {4, 5}), ints({3, -1}), ints({0, -kMax}), ints({0, 1}), ints({-1, -2})}},
      {"Slice",
       17,
       {},
       {doubles(20, {4, 5}), ints({1, -100}), ints({kMax, 100}), ints({-2, 1}), ints({2, 2})}},
      {"Squeeze", 17, {}, {doubles(6, {1, 6, 1}), ints({-1})}},
      {"Unsqueeze", 17, {}, {doubles(6, {2, 3}), ints({-1, 0})}},
      {"Gather", 17, {{"axis", int_attr(1)}}, {doubles(12, {3, 4}), ints({-1, 0, 3, 0})}},
      {"Gather", 17, {}, {doubles(12, {3, 4}), at::scalar_tensor(2, at::kLong)}},
      {"GatherElements",
       17,
       {{"axis", int_attr(0)}},
       {doubles(6, {3, 2}), ints({0, -1, 2, 2}).reshape({2, 2})}},
      {"Cast", 17, {{"to", int_attr(11)}}, {doubles(6, {2, 3})}},
      {"Identity", 17, {}, {doubles(6, {2, 3})}},
      {"Dropout", 17, {}, {doubles(6, {2, 3})}},
      {"Pad", 17, {}, {doubles(6, {2, 3}), ints({1, -1, 0, 2})}},
      {"Pad", 17, {{"mode", string_attr("reflect")}}, {doubles(12, {3, 4}), ints({2, 1, 1, 3})}},
      {"Pad", 17, {{"mode", string_attr("edge")}}, {doubles(12, {3, 4}), ints({1, 0, 2, 1})}},
      {"Pad", 19, {{"mode", string_attr("wrap")}}, {doubles(12, {3, 4}), ints({1, 2, 2, 5})}},
      {"Pad",
       10,
       {{"pads", ints_attr({0, 1, 1, 0})}, {"value", float_attr(1.5)}},
       {doubles(6, {2, 3})}},
      {"Expand", 17, {}, {doubles(3, {3, 1}), ints({2, 1, 4})}},
      {"Tile", 17, {}, {doubles(6, {2, 3}), ints({2, 3})}},
      {"DepthToSpace", 17, {{"blocksize", int_attr(2)}}, {doubles(16, {1, 4, 2, 2})}},
      {"DepthToSpace",
       17,
       {{"blocksize", int_attr(2)}, {"mode", string_attr("CRD")}},
       {doubles(16, {1, 4, 2, 2})}},
      {"SpaceToDepth", 17, {{"blocksize", int_attr(2)}}, {doubles(16, {1, 1, 4, 4})}},
      {"Trilu", 17, {{"upper", int_attr(0)}}, {doubles(12, {3, 4}), ints({1})}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op + " opset " + std::to_string(c.opset));
    check_gradient(graph_of(c.op, int(c.inputs.size()), c.opset, c.attrs), c.inputs);
  }
  // Split's second part: the probe reads output 0 only, so make the part of interest come first.
  check_gradient(graph_of("Split", 2, 17, {{"axis", int_attr(1)}}, 2),
                 {doubles(8, {2, 4}), ints({3, 1})});
}

TEST(ShapeOps, SliceClampsAndStepsBackwards) {
  at::Tensor x = at::arange(10, at::kLong);
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  // Every third element from the end; INT64_MIN end means "through the first element".
  expect_equal(run_op("Slice", {x, ints({-1}), ints({-kMax - 1}), ints({0}), ints({-3})}, 13),
               ints({9, 6, 3, 0}));
  expect_equal(run_op("Slice", {x, ints({20}), ints({2}), ints({0}), ints({-4})}, 13),
               ints({9, 5}));
  expect_equal(run_op("Slice", {x, ints({-20}), ints({kMax}), ints({0}), ints({4})}, 13),
               ints({0, 4, 8}));
  expect_equal(run_op("Slice", {x, ints({5}), ints({5})}, 13), ints({}));
  expect_equal(run_op("Slice", {x, ints({2}), ints({7})}, 13), ints({2, 3, 4, 5, 6}));
  // Opset 1-9: attributes.
  expect_equal(run_op("Slice", {x}, 9, {{"starts", ints_attr({-3})}, {"ends", ints_attr({kMax})}}),
               ints({7, 8, 9}));
  EXPECT_NE(
      error_of("Slice", {x, ints({0}), ints({5}), ints({0}), ints({0})}, 13).find("non-zero steps"),
      std::string::npos);
}

TEST(ShapeOps, SplitFormsOfEveryOpset) {
  at::Tensor x = at::arange(7, at::kLong);
  auto sizes = [](const std::vector<at::Tensor>& parts) {
    std::vector<int64_t> s;
    for (const auto& p : parts) s.push_back(p.numel());
    return s;
  };
  // Opset 18: num_outputs with a smaller last chunk.
  EXPECT_EQ(sizes(run_all("Split", {x}, 18, {{"num_outputs", int_attr(3)}}, 3)),
            (std::vector<int64_t>{3, 3, 1}));
  // Opset 11: sizes as attribute; opset 13: as input.
  EXPECT_EQ(sizes(run_all("Split", {x}, 11, {{"split", ints_attr({2, 5})}}, 2)),
            (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(sizes(run_all("Split", {x, ints({4, 0, 3})}, 13, {}, 3)),
            (std::vector<int64_t>{4, 0, 3}));
  expect_equal(run_all("Split", {x, ints({4, 3})}, 13, {}, 2)[1], ints({4, 5, 6}));
  EXPECT_NE(error_of("Split", {x, ints({4, 4})}, 13, {}, 2).find("add up to 8"), std::string::npos);
}

TEST(ShapeOps, ReshapeZeroCopiesUnlessAllowzero) {
  at::Tensor x = at::zeros({2, 0, 3});
  EXPECT_EQ(run_op("Reshape", {x, ints({0, -1, 3})}, 13).sizes().vec(),
            (std::vector<int64_t>{2, 0, 3}));
  EXPECT_EQ(run_op("Reshape", {x, ints({3, 0, 2})}, 14, {{"allowzero", int_attr(1)}}).sizes().vec(),
            (std::vector<int64_t>{3, 0, 2}));
  // allowzero exists from opset 14 on; before, 0 copies the input dimension.
  EXPECT_EQ(run_op("Reshape", {at::zeros({2, 3}), ints({0, 3})}, 13, {{"allowzero", int_attr(1)}})
                .sizes()
                .vec(),
            (std::vector<int64_t>{2, 3}));
  EXPECT_NE(error_of("Reshape", {at::zeros({2, 3}), ints({-1, -1})}, 13).find("at most one -1"),
            std::string::npos);
  EXPECT_NE(error_of("Reshape", {at::zeros({2, 3}), ints({4, 2})}, 13).find("expected 6"),
            std::string::npos);
}

TEST(ShapeOps, SqueezeAndUnsqueezeTakeAxesAsAttributeBeforeOpset13) {
  at::Tensor x = at::zeros({1, 3, 1});
  EXPECT_EQ(run_op("Squeeze", {x}, 11, {{"axes", ints_attr({-1})}}).sizes().vec(),
            (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(run_op("Squeeze", {x}, 13).sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(run_op("Unsqueeze", {x}, 11, {{"axes", ints_attr({1, -1})}}).sizes().vec(),
            (std::vector<int64_t>{1, 1, 3, 1, 1}));
  EXPECT_NE(error_of("Squeeze", {x, ints({1})}, 13).find("cannot squeeze axis 1 of size 3"),
            std::string::npos);
}

TEST(ShapeOps, PadAxesModesAndOldAttributes) {
  at::Tensor x = at::arange(1, 5, at::kLong).reshape({1, 4});  // [[1, 2, 3, 4]]
  // Opset 18: pads for the listed axes only.
  expect_equal(run_op("Pad", {x, ints({1, 2}), at::scalar_tensor(9, at::kLong), ints({-1})}, 18),
               ints({9, 1, 2, 3, 4, 9, 9}).reshape({1, 7}));
  expect_equal(run_op("Pad", {x, ints({0, 2, 0, 3})}, 19, {{"mode", string_attr("wrap")}}),
               ints({3, 4, 1, 2, 3, 4, 1, 2, 3}).reshape({1, 9}));
  expect_equal(run_op("Pad", {x, ints({0, 2, 0, 1})}, 17, {{"mode", string_attr("reflect")}}),
               ints({3, 2, 1, 2, 3, 4, 3}).reshape({1, 7}));
  expect_equal(run_op("Pad", {x, ints({0, 2, 0, -1})}, 17, {{"mode", string_attr("edge")}}),
               ints({1, 1, 1, 2, 3}).reshape({1, 5}));
  expect_equal(run_op("Pad", {x, ints({0, -1, 0, 1})}, 17), ints({2, 3, 4, 0}).reshape({1, 4}));
  expect_equal(run_op("Pad", {x}, 2, {{"pads", ints_attr({0, 1, 0, 0})}, {"value", float_attr(7)}}),
               ints({7, 1, 2, 3, 4}).reshape({1, 5}));
  std::string err = error_of("Pad", {x, ints({0, 1, 0, 1})}, 18, {{"mode", string_attr("wrap")}});
  EXPECT_NE(err.find("attribute 'mode': expected constant, reflect, edge, found wrap"),
            std::string::npos)
      << err;
}

TEST(ShapeOps, CastTruncatesTowardsZero) {
  at::Tensor x = at::tensor({-1.7f, -0.2f, 0.0f, 2.9f});
  expect_equal(run_op("Cast", {x}, 13, {{"to", int_attr(6)}}), at::tensor({-1, 0, 0, 2}, at::kInt));
  expect_equal(run_op("Cast", {x}, 13, {{"to", int_attr(9)}}),
               at::tensor({1, 1, 0, 1}).to(at::kBool));
  expect_equal(run_op("CastLike", {x, ints({0})}, 15), ints({-1, 0, 0, 2}));
  at::Tensor bf = run_op("Cast", {x}, 13, {{"to", int_attr(16)}});
  expect_equal(run_op("Cast", {bf}, 13, {{"to", int_attr(1)}}), x.to(at::kBFloat16).to(at::kFloat));
  EXPECT_NE(error_of("Cast", {x}, 13, {{"to", int_attr(8)}}).find("casting to string"),
            std::string::npos);
  EXPECT_NE(error_of("Cast", {x}, 13, {{"to", int_attr(12)}}).find("UINT32"), std::string::npos);
}

TEST(ShapeOps, DropoutIsIdentityWithFullMask) {
  at::Tensor x = doubles(6, {2, 3});
  auto out = run_all("Dropout", {x, at::scalar_tensor(0.0), at::scalar_tensor(true)}, 13, {}, 2);
  expect_equal(out[0], x);
  expect_equal(out[1], at::ones({2, 3}, at::kBool));
  // Opset 7-9: the mask has the data's type.
  EXPECT_EQ(run_all("Dropout", {x}, 7, {}, 2)[1].scalar_type(), at::kDouble);
  std::string err =
      error_of("Dropout", {x, at::scalar_tensor(0.5), at::scalar_tensor(true)}, 13, {}, 2);
  EXPECT_NE(err.find("random dropout is not supported"), std::string::npos) << err;
}

TEST(ShapeOps, ConstantsAndShapes) {
  EXPECT_TRUE(
      at::equal(run_op("Constant", {}, 13, {{"value_ints", ints_attr({3, 4})}}), ints({3, 4})));
  at::Tensor f = run_op("Constant", {}, 13, {{"value_float", float_attr(0.5)}});
  EXPECT_EQ(f.dim(), 0);
  EXPECT_EQ(f.item<float>(), 0.5f);
  Attribute s;
  s.type = AttrType::kString;
  s.s = "hi";
  EXPECT_NE(error_of("Constant", {}, 13, {{"value_string", s}}).find("value_string"),
            std::string::npos);
  expect_equal(run_op("ConstantOfShape", {ints({2, 1})}, 13), at::zeros({2, 1}));
  Attribute v;
  v.type = AttrType::kTensor;
  v.t = at::full({1}, 3, at::kInt);
  expect_equal(run_op("ConstantOfShape", {ints({2})}, 13, {{"value", v}}),
               at::full({2}, 3, at::kInt));
  at::Tensor x = at::zeros({2, 3, 4, 5});
  expect_equal(run_op("Shape", {x}, 15, {{"start", int_attr(-3)}, {"end", int_attr(-1)}}),
               ints({3, 4}));
  expect_equal(run_op("Shape", {x}, 15, {{"start", int_attr(9)}}), ints({}));
  expect_equal(run_op("Size", {x}, 13), at::scalar_tensor(120, at::kLong));
}

TEST(ShapeOps, RangeArgExtremesAndIndices) {
  expect_equal(run_op("Range",
                      {at::scalar_tensor(10, at::kInt), at::scalar_tensor(3, at::kInt),
                       at::scalar_tensor(-3, at::kInt)},
                      11),
               at::tensor({10, 7, 4}, at::kInt));
  expect_equal(
      run_op("Range", {at::scalar_tensor(1.0), at::scalar_tensor(2.0), at::scalar_tensor(0.25)},
             11),
      at::tensor({1.0f, 1.25f, 1.5f, 1.75f}));
  at::Tensor x = at::tensor({1, 3, 3, 0, 3}, at::kFloat);
  expect_equal(run_op("ArgMax", {x}, 13, {{"keepdims", int_attr(0)}}),
               at::scalar_tensor(1, at::kLong));
  expect_equal(run_op("ArgMax", {x}, 13, {{"select_last_index", int_attr(1)}}), ints({4}));
  expect_equal(run_op("ArgMin", {x}, 13, {{"select_last_index", int_attr(1)}}), ints({3}));
  std::string err = error_of("Gather", {x, ints({5})}, 13);
  EXPECT_NE(err.find("input 'indices': expected values in [-5, 4], found 5"), std::string::npos)
      << err;
  expect_equal(run_op("NonZero", {at::tensor({0, 2, 0, 1}).reshape({2, 2})}, 13),
               ints({0, 1, 1, 1}).reshape({2, 2}));
}

}  // namespace
}  // namespace mpq
