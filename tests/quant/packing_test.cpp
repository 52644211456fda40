// Tests for bit-plane packing: the packer against a bit-by-bit reference for every width, the
// documented bytes of small examples, the unpack subgraph in mpq's executor at every supported
// opset and, inside a QDQ model, in ONNX Runtime, and the recognition of that subgraph after an
// export and import.
#include "quant/packing.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/io.h"
#include "onnx/tensor_proto.h"
#include "pipeline/onnxruntime.h"
#include "support/test_util.h"

namespace mpq {
namespace {

// The layout of packing.h, one bit at a time.
at::Tensor reference_pack(const at::Tensor& q, int bits, int64_t qmin) {
  at::Tensor v = q.reshape({-1}).to(at::kLong).contiguous();
  int64_t n = v.numel(), nbytes = (n + 7) / 8;
  at::Tensor planes = at::zeros({bits, nbytes}, at::kByte);
  auto out = planes.accessor<uint8_t, 2>();
  const int64_t* values = v.data_ptr<int64_t>();
  for (int64_t e = 0; e < n; ++e) {
    int64_t u = values[e] - qmin;
    for (int k = 0; k < bits; ++k)
      if ((u >> k) & 1) out[k][e / 8] |= uint8_t(1 << (e % 8));
  }
  return planes;
}

// Random values of the grid, with both ends present when there are two elements or more.
at::Tensor random_grid(int bits, int64_t qmin, const std::vector<int64_t>& shape) {
  int64_t qmax = qmin + (int64_t(1) << bits) - 1;
  at::Tensor q = at::randint(qmin, qmax + 1, shape, at::kLong);
  at::Tensor flat = q.view({-1});
  flat[0].fill_(qmin);
  if (flat.numel() > 1) flat[flat.numel() - 1].fill_(qmax);
  return q;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& texts) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing: " << texts[0];
  } catch (const Error& e) {
    for (const auto& text : texts)
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Packing, RoundTripsEveryWidthAndSize) {
  at::manual_seed(1);
  const std::vector<std::vector<int64_t>> shapes = {{}, {7}, {8}, {3, 3}, {8, 5, 25}};
  for (int bits = 1; bits <= 8; ++bits) {
    for (bool is_signed : {true, false}) {
      int64_t qmin = is_signed ? -(int64_t(1) << (bits - 1)) : 0;
      at::ScalarType type = is_signed ? at::kChar : at::kByte;
      for (const auto& shape : shapes) {
        at::Tensor q = random_grid(bits, qmin, shape);
        SCOPED_TRACE(::testing::Message() << bits << " bits, qmin " << qmin << ", n " << q.numel());
        at::Tensor planes = pack_bitplanes(q, bits, qmin);
        ASSERT_EQ(planes.scalar_type(), at::kByte);
        ASSERT_EQ(planes.sizes().vec(), std::vector<int64_t>({bits, (q.numel() + 7) / 8}));
        EXPECT_EQ(planes.numel(), packed_bytes(bits, q.numel()));
        EXPECT_TRUE(at::equal(planes, reference_pack(q, bits, qmin)));
        at::Tensor back = unpack_bitplanes(planes, bits, qmin, shape);
        EXPECT_EQ(back.scalar_type(), type);
        EXPECT_EQ(packed_type(bits, qmin), type);
        EXPECT_TRUE(at::equal(back.to(at::kLong), q));
        // Floating tensors holding integers pack the same.
        EXPECT_TRUE(at::equal(pack_bitplanes(q.to(at::kFloat), bits, qmin), planes));
      }
      at::Tensor low = at::full({1}, qmin, at::kLong);  // the one-element case of the low end
      EXPECT_TRUE(at::equal(
          unpack_bitplanes(pack_bitplanes(low, bits, qmin), bits, qmin, {1}).to(at::kLong), low));
    }
  }
  EXPECT_EQ(packed_bytes(4, 1000), 500);
  EXPECT_EQ(packed_bytes(3, 9), 6);
}

TEST(Packing, GoldenBytes) {
  at::Tensor two_bit = pack_bitplanes(at::tensor({0, 1, 2, 3, 0, 1, 2, 3, 3}), 2, 0);
  EXPECT_TRUE(at::equal(two_bit, at::tensor({0xAA, 0x01, 0xCC, 0x01}, at::kByte).view({2, 2})))
      << two_bit;
  at::Tensor three_bit = pack_bitplanes(at::tensor({-4, 3, 0, -1}), 3, -4);
  EXPECT_TRUE(at::equal(three_bit, at::tensor({0x0A, 0x0A, 0x06}, at::kByte).view({3, 1})))
      << three_bit;
  at::Tensor q = unpack_bitplanes(three_bit, 3, -4, {2, 2});
  EXPECT_TRUE(at::equal(q, at::tensor({-4, 3, 0, -1}, at::kChar).view({2, 2}))) << q;
}

TEST(Packing, Errors) {
  at::Tensor q = at::tensor({0, 1, 9, 2});
  expect_error([&] { pack_bitplanes(q, 3, -4); }, {"value 9 at index 2", "3-bit range [-4, 3]"});
  expect_error([&] { pack_bitplanes(at::tensor({-5}), 3, -4); }, {"value -5", "[-4, 3]"});
  expect_error(
      [&] {
        pack_bitplanes(at::tensor({0.0, 1.5}), 3, 0);
      },
      {"expected integer values", "1.5 at index 1"});
  for (int bits : {0, 9}) {
    expect_error([&] { pack_bitplanes(q, bits, 0); }, {"bits must be in 1..8"});
    expect_error(
        [&] {
          unpack_bitplanes(at::zeros({1, 1}, at::kByte), bits, 0, {4});
        },
        {"bits must be in 1..8"});
  }
  expect_error([&] { pack_bitplanes(q, 8, -1); }, {"[-1, 254]"});
  at::Tensor planes = pack_bitplanes(q, 4, 0);
  expect_error([&] { unpack_bitplanes(planes, 4, 0, {9}); },
               {"expected uint8 planes of shape [4, 2]", "found Byte of shape [4, 1]"});
  expect_error([&] { unpack_bitplanes(planes, 3, 0, {4}); }, {"shape [3, 1]"});
  expect_error([&] { unpack_bitplanes(planes.to(at::kChar), 4, 0, {4}); }, {"found Char"});

  Graph g;
  g.opsets[""] = 13;
  g.initializers["planes"] = planes;
  expect_error([&] { emit_unpack(&g, "nope", 4, 0, {4}, "q", "u"); },
               {"no initializer named 'nope'"});
  expect_error([&] { emit_unpack(&g, "planes", 4, 0, {3, 3}, "q", "u"); }, {"shape [4, 2]"});
  expect_error([&] { emit_unpack(&g, "planes", 9, 0, {4}, "q", "u"); }, {"bits must be in 1..8"});
  expect_error([&] { emit_unpack(&g, "planes", 4, 0, {4}, "planes", "u"); },
               {"'planes' is already a value"});
  g.initializers["u_shifts"] = at::zeros({1});
  expect_error([&] { emit_unpack(&g, "planes", 4, 0, {4}, "q", "u"); },
               {"name 'u_shifts' is already used"});
  EXPECT_TRUE(g.nodes.empty());
  g.opsets[""] = 10;
  expect_error([&] { emit_unpack(&g, "planes", 4, 0, {4}, "q", "v"); }, {"opset in 11..21"});
}

// The subgraph computes what unpack_bitplanes computes, at every opset where it changes.
TEST(Packing, SubgraphMatchesUnpackInExecutor) {
  at::manual_seed(2);
  const std::vector<std::vector<int64_t>> shapes = {{}, {16}, {3, 3}};
  for (int64_t opset : {11, 12, 13, 18, 21}) {
    for (int bits = 1; bits <= 8; ++bits) {
      for (int64_t qmin : {-(int64_t(1) << (bits - 1)), int64_t(0)}) {
        for (const auto& shape : shapes) {
          at::Tensor q = random_grid(bits, qmin, shape);
          SCOPED_TRACE(::testing::Message() << "opset " << opset << ", " << bits << " bits, qmin "
                                            << qmin << ", n " << q.numel());
          Graph g;
          g.opsets[""] = opset;
          g.initializers["w_planes"] = pack_bitplanes(q, bits, qmin);
          std::vector<std::string> nodes =
              emit_unpack(&g, "w_planes", bits, qmin, shape, "w_q", "w_unpack");
          ASSERT_EQ(nodes.size(), g.nodes.size());
          ValueInfo out;
          out.name = "w_q";
          g.outputs.push_back(out);
          at::Tensor got = Executor(g).run({})[0];
          EXPECT_EQ(got.scalar_type(), packed_type(bits, qmin));
          ASSERT_EQ(got.sizes(), q.sizes());
          EXPECT_TRUE(at::equal(got.to(at::kLong), q)) << got;
          std::optional<PackedWeight> w = find_packed(g, "w_q");
          ASSERT_TRUE(w.has_value());
          EXPECT_EQ(w->planes, "w_planes");
          EXPECT_EQ(w->bits, bits);
          EXPECT_EQ(w->qmin, qmin);
          EXPECT_EQ(w->shape, shape);
          EXPECT_EQ(w->nodes, nodes);
        }
      }
    }
  }
}

// A QDQ model whose two weights are packed: a 4-bit signed Conv weight with 108 elements (the
// Slice path) and a 3-bit unsigned MatMul weight with 512 (no Slice, no Add).
struct PackedModel {
  Graph graph;
  at::Tensor q1, q2, reference;
  at::Tensor x;
};

PackedModel packed_model(int64_t opset) {
  PackedModel m;
  at::manual_seed(3 + opset);
  bool per_channel = opset >= 13;  // DequantizeLinear has an axis from opset 13
  m.q1 = random_grid(4, -8, {4, 3, 3, 3});
  m.q2 = random_grid(3, 0, {64, 8});
  at::Tensor s1 = per_channel ? at::rand({4}) * 0.03 + 0.02 : at::full({}, 0.03);
  at::Tensor s2 = at::full({}, 0.02);
  const int64_t z2 = 4;
  m.x = at::randn({2, 3, 6, 6});

  GraphBuilder b("packed", opset);
  std::string x = b.input("x", {int64_t(2), int64_t(3), int64_t(6), int64_t(6)});
  std::string w1_q = b.weight("w1_q", m.q1.to(at::kChar));
  std::string w2_q = b.weight("w2_q", m.q2.to(at::kByte));
  std::string z1 =
      b.weight("w1_zero", per_channel ? at::zeros({4}, at::kChar) : at::zeros({}, at::kChar));
  std::string w1 = per_channel ? b.node("DequantizeLinear", {w1_q, b.weight("w1_scale", s1), z1},
                                        {{"axis", attr(0)}})
                               : b.node("DequantizeLinear", {w1_q, b.weight("w1_scale", s1), z1});
  std::string w2 = b.node("DequantizeLinear", {w2_q, b.weight("w2_scale", s2),
                                               b.weight("w2_zero", at::full({}, z2, at::kByte))});
  std::string y = b.node("Conv", {x, w1});
  y = b.node("Flatten", {y});
  y = b.node("MatMul", {y, w2});
  b.output(y, {int64_t(2), int64_t(8)});
  m.graph = b.build();

  // Replace the integer initializers by their packed planes, as an exporter does.
  Graph& g = m.graph;
  g.initializers.erase(w1_q);
  g.initializers.erase(w2_q);
  g.initializers["w1_planes"] = pack_bitplanes(m.q1, 4, -8);
  g.initializers["w2_planes"] = pack_bitplanes(m.q2, 3, 0);
  emit_unpack(&g, "w1_planes", 4, -8, {4, 3, 3, 3}, w1_q, "w1_unpack");
  emit_unpack(&g, "w2_planes", 3, 0, {64, 8}, w2_q, "w2_unpack");

  at::Tensor f1 = m.q1.to(at::kFloat) * (per_channel ? s1.view({4, 1, 1, 1}) : s1);
  at::Tensor f2 = (m.q2.to(at::kFloat) - z2) * s2;
  m.reference = at::matmul(at::conv2d(m.x, f1).flatten(1), f2);
  return m;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(Packing, QdqModelRunsInExecutorAndOnnxRuntime) {
  std::string why;
  bool have_ort = onnxruntime_available(&why);
  for (int64_t opset : {11, 13, 17}) {
    SCOPED_TRACE(::testing::Message() << "opset " << opset);
    PackedModel m = packed_model(opset);
    at::Tensor ours = Executor(m.graph).run({m.x})[0];
    ASSERT_EQ(ours.sizes(), m.reference.sizes());
    EXPECT_LT(max_diff(ours, m.reference), 1e-5);

    std::string path = test::temp_dir() + "/packed_" + std::to_string(opset) + ".onnx";
    export_onnx(m.graph, path);
    Graph back = import_onnx(path);
    at::Tensor q;
    ASSERT_TRUE(read_packed(back, "w1_q", &q));
    EXPECT_EQ(q.scalar_type(), at::kChar);
    EXPECT_TRUE(at::equal(q.to(at::kLong), m.q1));
    ASSERT_TRUE(read_packed(back, "w2_q", &q));
    EXPECT_EQ(q.scalar_type(), at::kByte);
    EXPECT_TRUE(at::equal(q.to(at::kLong), m.q2));
    for (const auto& other : {"w1_planes", "x", back.outputs[0].name.c_str(), "w1_unpack_sum"})
      EXPECT_FALSE(read_packed(back, other, &q)) << other;
    EXPECT_LT(max_diff(Executor(back).run({m.x})[0], m.reference), 1e-5);

    if (!have_ort) continue;
    std::vector<at::Tensor> theirs = run_onnxruntime(path, {m.x});
    ASSERT_EQ(theirs.size(), 1u);
    ASSERT_EQ(theirs[0].sizes(), m.reference.sizes());
    EXPECT_LT(max_diff(theirs[0], ours), 1e-5);
    EXPECT_LT(max_diff(theirs[0], m.reference), 1e-5);
  }
  if (!have_ort) GTEST_SKIP() << "ONNX Runtime comparison skipped: " << why;
}

// A subgraph that differs from emit_unpack's in one constant is not taken for a packed weight.
TEST(Packing, FindPackedRejectsAlteredSubgraph) {
  at::manual_seed(4);
  Graph g;
  g.opsets[""] = 17;
  at::Tensor q = random_grid(4, -8, {3, 5});
  g.initializers["planes"] = pack_bitplanes(q, 4, -8);
  emit_unpack(&g, "planes", 4, -8, {3, 5}, "q", "u");
  at::Tensor got;
  ASSERT_TRUE(read_packed(g, "q", &got));
  EXPECT_TRUE(at::equal(got.to(at::kLong), q));
  g.initializers["u_shifts"] = at::arange(8, at::kByte).flip(0);
  EXPECT_FALSE(read_packed(g, "q", &got));
  g.initializers["u_shifts"] = at::arange(8, at::kByte);
  g.nodes[size_t(g.find_node("u_shift"))].attrs["direction"] = attr("LEFT");
  EXPECT_FALSE(find_packed(g, "q").has_value());
}

}  // namespace
}  // namespace mpq
