// PTQ, simulation and QDQ export on small zoo models with random data: the exported file must
// compute what the simulation computes (in mpq's executor exactly up to float rounding, in ONNX
// Runtime within a bound), sizes must be real, and the corrections must do what they claim.
#include "quant/ptq.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "core/cpu.h"
#include "core/error.h"
#include "core/int8_format.h"
#include "data/dataset.h"
#include "exec/executor.h"
#include "onnx/io.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/quantize.h"
#include "pipeline/zoo.h"
#include "quant/export_qdq.h"
#include "quant/packing.h"
#include "quant/patches.h"
#include "quant/simulate.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

constexpr int64_t kSize = 12;

Graph tiny(const std::string& arch, uint64_t seed = 0, int64_t opset = 17) {
  return test::tiny_zoo(arch, kSize, 0.5, seed, opset);
}

// Random images with labels, written as .npy files (the data module reads them lazily).
std::unique_ptr<Dataset> random_data(int64_t n, int64_t size = kSize, uint64_t seed = 0) {
  std::string dir = test::temp_dir();
  at::manual_seed(int64_t(seed));
  save_npy(dir + "/x.npy", at::randn({n, 1, size, size}));
  save_npy(dir + "/y.npy", at::randint(0, 10, {n}, at::kLong));
  DataOptions o;
  o.spec = dir + "/x.npy";
  o.labels = dir + "/y.npy";
  return open_dataset(o);
}

at::Tensor run_simulation(const QuantizedModel& q, const at::Tensor& x,
                          SimulationMode mode = SimulationMode::kStatic) {
  Executor ex(q.graph);
  attach_quantizers(&ex, q, mode);
  c10::InferenceMode guard;
  return ex.run({x})[0];
}

at::Tensor run_float(const Graph& g, const at::Tensor& x) {
  c10::InferenceMode guard;
  return Executor(g).run({x})[0];
}

double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  return ((a - ref).abs().max() / ref.abs().max()).item<double>();
}

PtqOptions quick(const std::string& method = "mse") {
  PtqOptions o;
  o.method = method;
  o.calibration_samples = 32;
  o.batch_size = 16;
  o.progress = false;
  return o;
}

TEST(Ptq, W8A8IsCloseToFloat) {
  Graph g = tiny("resnet20");
  auto data = random_data(32);
  at::Tensor x = data->read({0, 1, 2, 3, 4, 5, 6, 7}).x;
  QuantizedModel q = quantize_ptq(g, uniform_plan(g, 8, 8), data.get(), quick());
  EXPECT_LT(rel_err(run_simulation(q, x), run_float(g, x)), 0.05);
  QuantizedModel w2 = quantize_ptq(g, uniform_plan(g, 2, 8), data.get(), quick());
  EXPECT_GT(rel_err(run_simulation(w2, x), run_float(g, x)), 0.05);  // the test can fail
}

TEST(Ptq, DifferentiableSimulationMatchesStaticAndReachesWeights) {
  Graph g = tiny("resnet20");
  auto data = random_data(32);
  at::Tensor x = data->read({0, 1, 2, 3}).x;
  QuantizedModel q = quantize_ptq(g, uniform_plan(g, 4, 8), data.get(), quick("rtn"));
  at::Tensor fixed = run_simulation(q, x);
  Executor ex(q.graph);
  attach_quantizers(&ex, q, SimulationMode::kDifferentiable);
  // Bias correction changed the graph's biases but not its weights: with rtn scales the
  // re-quantized float weights are the PTQ integers again.
  std::string w = q.layers[0].layer.weight;
  at::Tensor& weight = q.graph.initializers.at(w);
  weight = weight.detach().clone().requires_grad_();
  at::Tensor y = ex.run({x})[0];
  EXPECT_LT((y.detach() - fixed).abs().max().item<double>(), 1e-4);
  y.square().sum().backward();
  ASSERT_TRUE(weight.grad().defined());
  EXPECT_GT(weight.grad().abs().sum().item<double>(), 0);
}

struct ExportCase {
  std::string name, arch;
  int weight_bits, act_bits;
  std::string weight_scheme = "sym-channel";
  int64_t group = 0;
  std::string method = "mse";
  std::string storage = "packed";
  double points = 0;
  int64_t opset = 17;
  std::string int8 = "auto";  // the integer types (core/int8_format.h)
};

std::vector<ExportCase> export_cases() {
  return {
      {"resnet_w4a8", "resnet20", 4, 8},
      {"resnet_w3a6_int8", "resnet20", 3, 6, "sym-channel", 0, "rtn", "int8"},
      {"resnet_w2a8_group", "resnet20", 2, 8, "sym-group", 8},
      {"resnet_w5a16_affine", "resnet20", 5, 16, "affine-channel"},
      {"resnet_w8a4_tensor", "resnet20", 8, 4, "saffine-tensor"},
      {"mobilenet_w3a8_multipoint", "mobilenetv2", 3, 8, "sym-channel", 0, "multipoint", "packed",
       0.5},
      {"vit_w4a8", "vit", 4, 8},
      {"vit_w6a8_group", "vit", 6, 8, "usym-group", 16},
      {"cnn_w4_float_acts", "cnn", 4, 32},
      // Opset 21: 4-bit weights as INT4 / UINT4 initializers instead of bit planes.
      {"resnet_w4a8_int4_opset21", "resnet20", 4, 8, "sym-channel", 0, "mse", "packed", 0, 21},
      {"resnet_w3a8_uint4_opset21", "resnet20", 3, 8, "affine-channel", 0, "rtn", "packed", 0, 21},
      // The other integer types: the same values shifted, so the same results.
      {"resnet_w8a8_u8u8", "resnet20", 8, 8, "sym-channel", 0, "mse", "packed", 0, 17, "u8u8"},
      {"resnet_w8a8_s8s8", "resnet20", 8, 8, "sym-channel", 0, "mse", "packed", 0, 17, "s8s8"},
      {"resnet_w3a6_u8u8", "resnet20", 3, 6, "sym-channel", 0, "rtn", "packed", 0, 17, "u8u8"},
      {"vit_w8a8_s8s8_group", "vit", 8, 8, "sym-group", 16, "mse", "packed", 0, 17, "s8s8"},
      {"mobilenet_w4a8_multipoint_u8u8", "mobilenetv2", 4, 8, "sym-channel", 0, "multipoint",
       "packed", 0.5, 17, "u8u8"},
      {"resnet_w4a8_uint4_u8u8_opset21", "resnet20", 4, 8, "sym-channel", 0, "mse", "packed", 0, 21,
       "u8u8"},
  };
}

class PtqExport : public ::testing::TestWithParam<ExportCase> {};

TEST_P(PtqExport, FileComputesTheSimulation) {
  const ExportCase& c = GetParam();
  Graph g = tiny(c.arch, 0, c.opset);
  auto data = random_data(32);
  Plan plan = uniform_plan(g, c.weight_bits, c.act_bits);
  for (auto& l : plan.layers) {
    l.weight.scheme = c.weight_scheme;
    l.weight.group_size = c.group;
  }
  PtqOptions o = quick(c.method);
  o.extra_points = c.points;
  QuantizedModel q = quantize_ptq(g, plan, data.get(), o);
  SizeReport sizes;
  QdqOptions qo;
  qo.weight_storage = c.storage;
  qo.int8_format = c.int8;
  Graph out = export_qdq(q, qo, &sizes);
  std::string path = test::temp_dir() + "/" + c.name + ".onnx";
  export_onnx(out, path);
  Graph back = import_onnx(path);
  EXPECT_EQ(back.initializer_types, out.initializer_types);
  EXPECT_EQ(out.initializer_types.empty(), c.opset < 21) << c.name;

  at::Tensor x = data->read({0, 1, 2, 3, 4, 5, 6, 7}).x;
  at::Tensor sim = run_simulation(q, x);
  at::Tensor file = run_float(back, x);
  // The same arithmetic on the same values: equal up to float rounding.
  EXPECT_LT(rel_err(file, sim), 1e-5) << c.name;

  // Sizes: the papers' bytes follow the bit widths; packed weights take n * b / 8 bytes.
  double n = 0, expected_paper = 0;
  for (const auto& l : q.layers) {
    double numel = double(q.graph.initializers.at(l.layer.weight).numel());
    n += numel;
    expected_paper += l.multipoint ? double(l.points.count.sum().item<int64_t>()) *
                                         double(l.points.points.size(2)) * c.weight_bits / 8
                                   : numel * c.weight_bits / 8;
  }
  EXPECT_NEAR(sizes.paper_bytes, expected_paper, 1e-6);
  EXPECT_NEAR(sizes.float_paper_bytes, 4 * n, 1e-6);
  if (c.storage == "int8" || c.weight_bits == 8) {
    EXPECT_GE(double(sizes.weight_bytes), n);
  }
  if (c.storage == "packed" && c.weight_bits <= 4 && !c.points) {
    // Tensors too small to repay the unpack subgraph stay one byte per value.
    EXPECT_LT(double(sizes.weight_bytes), 0.8 * n) << c.name;
  }

  std::string why;
  if (!onnxruntime_available(&why)) GTEST_SKIP() << why;
  at::Tensor ort = run_onnxruntime(path, {x})[0];
  // u8s8 and s8s8 are computed exactly by ONNX Runtime only on CPUs with VNNI (or AMX, or not
  // x86); elsewhere 8-bit layers may saturate, which
  // QuantizedModels.ExactInt8FormatsAgreeOnAnEmulatedCpuWithoutVnni checks on an emulated CPU. Here
  // the file must then run, and the comparison is left to that test.
  const Int8Format format = resolve_int8_format(c.int8, host_cpu(), "--int8");
  if (!int8_format_info(format).exact_everywhere && !u8s8_exact(host_cpu())) {
    EXPECT_EQ(ort.sizes(), sim.sizes()) << c.name;
    std::printf("[%s] %s on %s: not compared (saturating kernels)\n", c.name.c_str(),
                int8_format_info(format).name, mlas_int8_kernels(host_cpu()).c_str());
    return;
  }
  // ONNX Runtime may round an activation that sits at a half step the other way; one such step
  // moves the logits by far less than this.
  EXPECT_LT(rel_err(ort, sim), 0.05) << c.name;
  EXPECT_TRUE(ort.argmax(1).equal(sim.argmax(1))) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, PtqExport, ::testing::ValuesIn(export_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Ptq, PackedWeightsShrinkTheFile) {
  Graph g = tiny("resnet20");
  auto data = random_data(16);
  QuantizedModel q = quantize_ptq(g, uniform_plan(g, 3, 8), data.get(), quick());
  SizeReport packed, bytes;
  QdqOptions p, b;
  b.weight_storage = "int8";
  int64_t packed_file = int64_t(export_onnx_bytes(export_qdq(q, p, &packed)).size());
  int64_t int8_file = int64_t(export_onnx_bytes(export_qdq(q, b, &bytes)).size());
  EXPECT_LT(packed.weight_bytes, bytes.weight_bytes * 0.5);
  EXPECT_LT(packed_file, int8_file);
  // A packed weight reads back as the integers the quantizer chose.
  Graph out = export_qdq(q, p, nullptr);
  int found = 0;
  for (const auto& l : q.layers) {
    for (const auto& n : out.nodes) {
      if (n.op_type != "DequantizeLinear" || n.outputs[0] != l.layer.weight + "/dequantize")
        continue;
      at::Tensor ints;
      if (!read_packed(out, n.inputs[0], &ints)) continue;
      ++found;
      EXPECT_TRUE(ints.to(at::kFloat).equal(from_rows(l.weight_int, l.layout))) << l.layer.name;
    }
  }
  EXPECT_GT(found, 2);
}

TEST(Ptq, BiasCorrectionRemovesTheMeanShiftOfTheFirstLayer) {
  Graph g = tiny("resnet20", 3);
  auto data = random_data(32);
  Plan plan = uniform_plan(g, 3, 32);
  PtqOptions with = quick("rtn"), without = quick("rtn");
  without.bias_correction = false;
  QuantizedModel a = quantize_ptq(g, plan, data.get(), with);
  QuantizedModel b = quantize_ptq(g, plan, data.get(), without);
  // The first conv's output over the calibration samples themselves: with the correction its
  // per-channel mean equals the float layer's (E[x] is exact there).
  const std::string first = a.layers[0].layer.name;
  at::Tensor x = data->read([] {
                       std::vector<int64_t> all(32);
                       for (int64_t i = 0; i < 32; ++i) all[size_t(i)] = i;
                       return all;
                     }())
                     .x;
  auto layer_mean = [&](const QuantizedModel& q, bool quantized) {
    Executor ex(q.graph);
    if (quantized) attach_quantizers(&ex, q);
    c10::InferenceMode guard;
    const Node& n = q.graph.nodes[size_t(q.graph.find_node(first))];
    at::Tensor y = ex.run_named({{q.graph.inputs[0].name, x}}, {n.outputs[0]}).at(n.outputs[0]);
    return y.mean({0, 2, 3});
  };
  at::Tensor f = layer_mean(b, false);
  double shift_without = (layer_mean(b, true) - f).abs().max().item<double>();
  double shift_with = (layer_mean(a, true) - f).abs().max().item<double>();
  EXPECT_GT(shift_without, 1e-3);
  EXPECT_LT(shift_with, shift_without * 1e-2);
}

TEST(Ptq, MultipointLowersTheOutputError) {
  Graph g = tiny("resnet20", 5);
  auto data = random_data(32);
  at::Tensor x = data->read({0, 1, 2, 3, 4, 5, 6, 7}).x;
  at::Tensor ref = run_float(g, x);
  Plan plan = uniform_plan(g, 3, 32);
  PtqOptions plain = quick("mse"), points = quick("multipoint");
  plain.bias_correction = points.bias_correction = false;
  double e_plain = (run_simulation(quantize_ptq(g, plan, data.get(), plain), x) - ref)
                       .square()
                       .mean()
                       .item<double>();
  double last = INFINITY;
  for (double extra : {0.0, 0.25, 1.0}) {
    points.extra_points = extra;
    QuantizedModel q = quantize_ptq(g, plan, data.get(), points);
    int64_t spent = 0, channels = 0;
    for (const auto& l : q.layers) {
      spent += extra_points(l.points);
      channels += l.points.count.numel();
    }
    EXPECT_NEAR(double(spent), extra * double(channels), double(q.layers.size()));
    double e = (run_simulation(q, x) - ref).square().mean().item<double>();
    EXPECT_LT(e, last) << extra;
    last = e;
    if (extra == 0) {
      EXPECT_LE(e, e_plain * 1.1);  // one point: per-channel quantization, no better or worse
    }
    if (extra == 1.0) {
      EXPECT_LT(e, e_plain * 0.5);
    }
  }
}

// The "output" clip error minimises each channel's d^T G d with G the layer's calibration Gram:
// measured with the same G (all patches kept), no layer may come out worse than with the plain
// weight error, and the layers' output error must drop overall.
TEST(Ptq, OutputAwareClippingLowersEachLayersOutputError) {
  Graph g = tiny("resnet20", 7);
  auto data = random_data(32);
  Plan plan = uniform_plan(g, 3, 32);
  PtqOptions output = quick("mse"), weight = quick("mse");
  output.bias_correction = weight.bias_correction = false;
  output.gram_rows = weight.gram_rows = 0;
  output.batch_size = weight.batch_size = 32;  // one batch: the same patches in the same order
  weight.clip_error = "weight";
  QuantizedModel a = quantize_ptq(g, plan, data.get(), output);
  QuantizedModel b = quantize_ptq(g, plan, data.get(), weight);
  EXPECT_EQ(a.info.at("clip_error"), "output");
  ASSERT_EQ(a.layers.size(), b.layers.size());

  // Each layer's Gram of input patches over the 32 calibration samples, in the float model.
  std::vector<at::Tensor> grams(a.layers.size());
  Executor ex(a.graph);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const QuantizedLayer& ql = a.layers[i];
    ex.set_value_hook(ql.act_value, [&, i](const std::string&, const at::Tensor& x) {
      at::Tensor p = layer_patches(a.graph, ql.layer, x).to(at::kDouble);
      grams[i] = at::bmm(p.transpose(1, 2), p) / double(p.size(1));
      return x;
    });
  }
  std::vector<int64_t> all(32);
  for (int64_t i = 0; i < 32; ++i) all[size_t(i)] = i;
  {
    c10::InferenceMode guard;
    ex.run({data->read(all).x});
  }
  double sum_a = 0, sum_b = 0;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const QuantizedLayer& la = a.layers[i];
    const at::Tensor& w = a.graph.initializers.at(la.layer.weight);
    auto output_error = [&](const QuantizedLayer& l) {
      at::Tensor d = to_channel_rows((l.weight_hat - w).to(at::kDouble), l.channel_axis);
      int64_t groups = grams[i].size(0);
      at::Tensor dg = d.reshape({groups, -1, d.size(1)});
      return (at::bmm(dg, grams[i]) * dg).sum(-1).reshape({-1});
    };
    at::Tensor ea = output_error(la), eb = output_error(b.layers[i]);
    EXPECT_TRUE((ea <= eb * (1 + 1e-4) + 1e-12).all().item<bool>())
        << la.layer.name << ": worst ratio " << (ea / eb.clamp_min(1e-30)).max().item<double>();
    sum_a += ea.sum().item<double>();
    sum_b += eb.sum().item<double>();
  }
  EXPECT_LT(sum_a, 0.95 * sum_b);
}

TEST(Ptq, LayersSharingAnInputGetTheirOwnActivationBits) {
  Graph g = tiny("resnet20");
  auto data = random_data(16);
  Plan plan = uniform_plan(g, 8, 8);
  // The first downsample conv reads the same tensor as the block's first conv.
  std::string downsample, sibling;
  std::vector<QuantLayer> layers = find_quantizable_layers(g);
  for (const auto& l : layers) {
    if (l.name.find("downsample") == std::string::npos) continue;
    downsample = l.name;
    for (const auto& m : layers) {
      if (m.name != l.name &&
          g.nodes[size_t(m.node)].inputs[0] == g.nodes[size_t(l.node)].inputs[0])
        sibling = m.name;
    }
    break;
  }
  ASSERT_FALSE(downsample.empty());
  ASSERT_FALSE(sibling.empty());
  for (auto& l : plan.layers) {
    if (l.name == downsample) l.act.bits = 4;
  }
  QuantizedModel q = quantize_ptq(g, plan, data.get(), quick());
  EXPECT_EQ(q.find(downsample)->plan.act.bits, 4);
  EXPECT_EQ(q.find(sibling)->plan.act.bits, 8);
  Graph out = export_qdq(q, {}, nullptr);
  int clips = 0;
  for (const auto& n : out.nodes) clips += n.op_type == "Clip" && n.name.rfind(downsample, 0) == 0;
  EXPECT_EQ(clips, 1);  // the 4-bit grid on its own branch
}

// A calibration kept for many plans quantizes each plan as quantize_ptq does from scratch: the
// same integers, scales, activation ranges and corrected biases, whatever the order of the plans.
TEST(Ptq, KeptCalibrationEqualsQuantizingFromScratch) {
  Graph g = tiny("resnet20");
  auto data = random_data(32);
  at::Tensor x = data->read({0, 1, 2, 3}).x;
  ObserverOptions p999;
  p999.percentile = 99.9;
  std::vector<ObserverSetting> observers = {{"minmax", {}}, {"percentile", p999}, {"mse", {}}};
  PtqCalibration kept(g, uniform_plan(g, 8, 8), *data, quick(), observers);
  Plan mixed = uniform_plan(g, 4, 8);
  for (size_t i = 0; i < mixed.layers.size(); i += 3) mixed.layers[i].weight.bits = 2;
  mixed.layers.back().act.bits = 32;
  struct Case {
    Plan plan;
    std::string scale;
    size_t observer;
  };
  std::vector<Case> cases = {{mixed, "mse", 2},
                             {uniform_plan(g, 3, 6), "maxabs", 0},
                             {mixed, "maxabs", 1},
                             {mixed, "mse", 2}};
  for (const Case& c : cases) {
    PtqOptions o = quick(c.scale == "mse" ? "mse" : "rtn");
    o.observer = observers[c.observer].name;
    o.observer_options = observers[c.observer].options;
    QuantizedModel want = quantize_ptq(g, c.plan, data.get(), o);
    QuantizedModel got = kept.quantize(c.plan, c.scale, c.observer);
    ASSERT_EQ(got.layers.size(), want.layers.size());
    for (size_t i = 0; i < got.layers.size(); ++i) {
      const QuantizedLayer &a = got.layers[i], &b = want.layers[i];
      SCOPED_TRACE(a.layer.name + " " + c.scale + " " + observers[c.observer].name);
      EXPECT_TRUE(at::equal(a.weight_int, b.weight_int));
      EXPECT_TRUE(at::allclose(a.weight_params.scale, b.weight_params.scale));
      ASSERT_EQ(a.act_quantized, b.act_quantized);
      if (a.act_quantized) {
        EXPECT_TRUE(at::allclose(a.act_params.scale, b.act_params.scale));
        EXPECT_TRUE(at::equal(a.act_params.zero_point, b.act_params.zero_point));
      }
      EXPECT_NEAR(a.bias_shift, b.bias_shift, 1e-6 * (1 + std::abs(b.bias_shift)));
    }
    EXPECT_LT(rel_err(run_simulation(got, x), run_simulation(want, x)), 1e-5);
  }
  Plan other = uniform_plan(g, 4, 8);
  other.layers[0].weight.scheme = "sym-tensor";
  EXPECT_THROW(kept.quantize(other, "mse", 0), Error);
  EXPECT_THROW(kept.quantize(mixed, "kl", 0), Error);
  EXPECT_THROW(kept.quantize(mixed, "mse", 3), Error);
}

TEST(Ptq, BadInput) {
  Graph g = tiny("resnet20");
  auto data = random_data(8);
  Plan plan = uniform_plan(g, 4, 8);
  plan.layers[0].name = "conv99";
  try {
    quantize_ptq(g, plan, data.get(), quick());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'conv99': the model (resnet20) has no quantizable "
                                         "layer of that name"),
              std::string::npos)
        << e.what();
  }
  auto wrong = random_data(8, 20);
  try {
    quantize_ptq(g, uniform_plan(g, 4, 8), wrong.get(), quick());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit the model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quantize_ptq(g, uniform_plan(g, 4, 8), nullptr, quick()), Error);
  PtqOptions bad = quick("gptq");
  EXPECT_THROW(quantize_ptq(g, uniform_plan(g, 4, 8), data.get(), bad), Error);
  EXPECT_THROW(parse_bits("9/8", "--bits"), Error);
  EXPECT_THROW(parse_bits("4/x", "--bits"), Error);
  EXPECT_EQ(parse_bits("4", "--bits"), std::make_pair(4, 32));
  EXPECT_EQ(parse_bits("3/6", "--bits"), std::make_pair(3, 6));
}

}  // namespace
}  // namespace mpq
