// The integer types of the QDQ export (core/int8_format.h): "auto" follows the CPU (exact u8 x s8
// with VNNI, AMX or off x86; u8u8 otherwise), every format writes the types it names with the
// zero points moved along, and reduce-range puts the weights of 8-bit layers with integer
// activations on a 7-bit grid. That the files compute the simulation in mpq and in ONNX Runtime is
// checked by ptq_test.cpp's export cases; that ONNX Runtime's kernels on a CPU without VNNI agree
// with the exact formats, by tests/model (an emulated AVX2 CPU).
#include "core/int8_format.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "core/cpu.h"
#include "core/error.h"
#include "pipeline/quantize.h"
#include "quant/export_qdq.h"
#include "quant/ptq.h"
#include "support/error_of.h"
#include "support/test_data.h"

namespace mpq {
namespace {

CpuInfo cpu(bool vnni, bool x86 = true) {
  CpuInfo c;
  c.x86 = x86;
  c.avx2 = c.fma = x86;
  c.avx512f = c.avx512bw = x86 && vnni;
  c.avx512_vnni = x86 && vnni;
  return c;
}

TEST(Int8Format, AutoFollowsTheCpu) {
  EXPECT_EQ(resolve_int8_format("auto", cpu(true), "--int8"), Int8Format::kU8S8);
  EXPECT_EQ(resolve_int8_format("auto", cpu(false), "--int8"), Int8Format::kU8U8);
  EXPECT_EQ(resolve_int8_format("auto", cpu(false, false), "--int8"), Int8Format::kU8S8);
  CpuInfo avx_vnni = cpu(false);
  avx_vnni.avx_vnni = true;
  EXPECT_EQ(resolve_int8_format("auto", avx_vnni, "--int8"), Int8Format::kU8S8);
  EXPECT_EQ(mlas_int8_kernels(cpu(false)), "avx2");
  EXPECT_EQ(mlas_int8_kernels(cpu(true)), "avx512_vnni");
  EXPECT_FALSE(u8s8_exact(cpu(false)));
  // Named formats whatever the CPU; every row resolves to itself.
  for (const auto& row : int8_format_table()) {
    EXPECT_EQ(resolve_int8_format(row.name, cpu(false), "--int8"), row.format);
    EXPECT_EQ(int8_format_info(row.format).name, std::string(row.name));
  }
  std::string e = testing::error_of([] { resolve_int8_format("u4s4", cpu(true), "--int8"); });
  for (const char* needle : {"--int8", "u4s4", "auto", "u8u8", "reduce-range"})
    EXPECT_NE(e.find(needle), std::string::npos) << e;
  EXPECT_FALSE(host_cpu().model.empty());
}

TEST(Int8Format, ReduceRangeLowersOnlyLayersThatCanSaturate) {
  Graph g = test::tiny_zoo("resnet20", 12);
  Plan plan = uniform_plan(g, 8, 8);
  plan.layers[1].weight.bits = 4;                   // 4-bit weights: no overflow possible
  plan.layers[2].act.bits = 32;                     // float activations: no integer kernel
  plan.layers[3].weight.scheme = "affine-channel";  // unsigned weights: not u8 x s8
  Plan reduced = apply_int8_format(plan, Int8Format::kReduceRange);
  ASSERT_EQ(reduced.layers.size(), plan.layers.size());
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    int want = i == 1 ? 4 : (i == 2 || i == 3) ? 8 : 7;
    EXPECT_EQ(reduced.layers[i].weight.bits, want) << plan.layers[i].name;
  }
  for (Int8Format f : {Int8Format::kU8S8, Int8Format::kS8S8, Int8Format::kU8U8}) {
    Plan same = apply_int8_format(plan, f);
    for (size_t i = 0; i < plan.layers.size(); ++i)
      EXPECT_EQ(same.layers[i].weight.bits, plan.layers[i].weight.bits);
  }
}

// The element type of every DequantizeLinear's integer input, split into weights (an initializer
// or a constant subgraph) and activations (a QuantizeLinear's output).
struct Types {
  std::set<at::ScalarType> weights, activations;
};
Types dequantize_types(const Graph& g) {
  Types t;
  for (const Node& n : g.nodes) {
    if (n.op_type != "DequantizeLinear") continue;
    at::ScalarType zp = g.initializers.at(n.inputs[2]).scalar_type();
    int64_t p = g.producer(n.inputs[0]);
    bool activation = p >= 0 && g.nodes[size_t(p)].op_type == "QuantizeLinear";
    (activation ? t.activations : t.weights).insert(zp);
  }
  return t;
}

TEST(Int8Format, EachFormatWritesItsTypes) {
  Graph g = test::tiny_zoo("resnet20", 12);
  auto data = test::random_images(32, 12);
  Plan plan = uniform_plan(g, 8, 8);
  for (size_t i = 0; i < plan.layers.size(); i += 3) plan.layers[i].weight.bits = 4;
  PtqOptions o;
  o.calibration_samples = 32;
  o.progress = false;
  QuantizedModel q = quantize_ptq(g, plan, data.get(), o);
  struct Want {
    const char* format;
    std::set<at::ScalarType> weights, activations;
  };
  for (const Want& w :
       {Want{"u8s8", {at::kChar}, {at::kByte}}, Want{"s8s8", {at::kChar}, {at::kChar}},
        Want{"u8u8", {at::kByte}, {at::kByte}}}) {
    QdqOptions qo;
    qo.int8_format = w.format;
    Graph out = export_qdq(q, qo, nullptr);
    Types t = dequantize_types(out);
    EXPECT_EQ(t.weights, w.weights) << w.format;
    EXPECT_EQ(t.activations, w.activations) << w.format;
    EXPECT_NE(out.metadata.at("mpq.quantization")
                  .find(std::string("\"int8_format\":\"") + w.format + "\""),
              std::string::npos)
        << w.format;
  }
  // u8u8 moves the symmetric weights' zero point to 2^(b-1) (128 at 8 bits, 8 at 4 bits).
  QdqOptions qo;
  qo.int8_format = "u8u8";
  Graph out = export_qdq(q, qo, nullptr);
  std::set<int64_t> zero_points;
  for (const Node& n : out.nodes) {
    if (n.op_type != "DequantizeLinear") continue;
    int64_t p = out.producer(n.inputs[0]);
    if (p >= 0 && out.nodes[size_t(p)].op_type == "QuantizeLinear") continue;
    at::Tensor zp = out.initializers.at(n.inputs[2]).to(at::kLong);
    zero_points.insert(zp.min().item<int64_t>());
    zero_points.insert(zp.max().item<int64_t>());
  }
  EXPECT_EQ(zero_points, (std::set<int64_t>{8, 128}));
}

TEST(Int8Format, ReduceRangeQuantizesAndExportsSevenBitWeights) {
  Graph g = test::tiny_zoo("resnet20", 12);
  auto data = test::random_images(32, 12);
  PtqOptions o;
  o.calibration_samples = 32;
  o.progress = false;
  QdqOptions qo;
  qo.int8_format = "reduce-range";
  QuantizeResult r = run_quantize(g, uniform_plan(g, 8, 8), data.get(), o, qo, "");
  EXPECT_EQ(r.int8_format, "reduce-range");
  EXPECT_NEAR(r.sizes.weight_bits_average, 7.0, 1e-9);
  for (const QuantizedLayer& l : r.model.layers) {
    EXPECT_EQ(l.plan.weight.bits, 7) << l.layer.name;
    EXPECT_LE(l.weight_int.abs().max().item<double>(), 64) << l.layer.name;
  }
  // A model quantized for another format is not exported as reduce-range.
  QuantizeResult plain = run_quantize(g, uniform_plan(g, 8, 8), data.get(), o, {}, "");
  EXPECT_THROW(export_qdq(plain.model, qo, nullptr), std::exception);
}

}  // namespace
}  // namespace mpq
