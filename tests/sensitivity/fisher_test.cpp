// The `fisher` metric (methods.md §1): the batched computation against a plain per-sample loop
// (batch size 1, the weight gradient by autograd, <g_n, dW>^2) on zoo models (strided and
// depthwise Conv, Gemm, 3-D MatMul) and a graph of the forms they lack (grouped ConvTranspose,
// W @ x MatMul, Gemm without transB); label-free mode; bit ordering; resume.
#include "sensitivity/fisher.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "pipeline/zoo.h"
#include "support/test_data.h"

namespace mpq {
namespace {

constexpr int64_t kSize = 8;

std::unique_ptr<Dataset> random_data(int64_t n) { return test::random_images(n, kSize); }

Graph tiny(const std::string& arch) { return test::tiny_zoo(arch, kSize, 0.25, 2); }

// The layer forms the zoo lacks: Conv -> ConvTranspose (grouped, strided) -> grouped Conv ->
// MatMul with the weight on the left (W @ x) -> Gemm without transB.
Graph odd_layers() {
  at::Generator gen = at::detail::createCPUGenerator(7);
  auto randn = [&](at::IntArrayRef shape, double std) { return at::normal(0.0, std, shape, gen); };
  auto ints = [](std::vector<int64_t> v) { return attr(v); };
  GraphBuilder b("odd", 17);
  std::string x = b.input("x", {"N", 1, kSize, kSize});
  std::string h = b.node("Conv", {x, b.weight("c0.weight", randn({4, 1, 3, 3}, 0.5))},
                         {{"pads", ints({1, 1, 1, 1})}}, "c0");
  h = b.node("ConvTranspose",
             {b.node("Relu", {h}), b.weight("t1.weight", randn({4, 2, 2, 2}, 0.5)),
              b.weight("t1.bias", randn({4}, 0.1))},
             {{"strides", ints({2, 2})}, {"group", attr(int64_t(2))}}, "t1");  // [N, 4, 16, 16]
  h = b.node("Conv", {b.node("Relu", {h}), b.weight("c2.weight", randn({4, 2, 3, 3}, 0.5))},
             {{"strides", ints({4, 4})}, {"pads", ints({1, 1, 1, 1})}, {"group", attr(int64_t(2))}},
             "c2");  // [N, 4, 4, 4]
  h = b.node("Reshape", {h, b.constant("shape", at::tensor(std::vector<int64_t>{0, 4, 16}))});
  h = b.node("MatMul", {b.weight("m3.weight", randn({3, 4}, 0.5)), h}, {}, "m3");  // [N, 3, 16]
  h = b.node("Flatten", {b.node("Relu", {h})}, {{"axis", attr(int64_t(1))}});
  std::string y = b.node(
      "Gemm",
      {h, b.weight("g4.weight", randn({48, 10}, 0.3)), b.weight("g4.bias", randn({10}, 0.1))}, {},
      "g4");
  b.output(y);
  Graph g = b.build();
  g.source = "odd";
  return g;
}

SensitivityOptions quick() {
  SensitivityOptions o;
  o.metric = "fisher";
  o.bits = {2, 4, 8};
  o.samples = 10;
  o.batch_size = 4;  // batches of 4, 4 and 2
  o.progress = false;
  return o;
}

// Omega by the definition: one sample at a time, the weight gradient of its loss by autograd.
// Returns [layer][bit] {omega, mean inner product}.
std::vector<std::vector<std::pair<double, double>>> per_sample_reference(
    const SensitivityContext& c) {
  Executor ex(c.graph);
  std::vector<at::Tensor> leaves;
  for (const auto& l : c.layers) {
    leaves.push_back(c.graph.initializers.at(l.weight).detach().requires_grad_(true));
    at::Tensor leaf = leaves.back();
    ex.set_weight_hook(l.weight, [leaf](const std::string&, const at::Tensor&) { return leaf; });
  }
  std::vector<std::vector<at::Tensor>> dws(c.layers.size());
  for (size_t l = 0; l < c.layers.size(); ++l)
    for (int bits : c.options.bits)
      dws[l].push_back(delta_weight(c.graph, c.layers[l], bits, c.options));
  std::vector<std::vector<std::pair<double, double>>> sums(
      c.layers.size(), std::vector<std::pair<double, double>>(c.options.bits.size()));
  const int64_t n = c.data->size();
  for (int64_t i = 0; i < n; ++i) {
    Batch b = c.data->read({i});
    at::Tensor logits = ex.run({b.x})[0];
    at::Tensor loss = at::cross_entropy_loss(logits.reshape({1, -1}), b.y);
    std::vector<at::Tensor> g = torch::autograd::grad({loss}, leaves);
    for (size_t l = 0; l < c.layers.size(); ++l) {
      for (size_t k = 0; k < dws[l].size(); ++k) {
        double s = (g[l].to(at::kDouble) * dws[l][k].to(at::kDouble)).sum().item<double>();
        sums[l][k].first += s * s / (2.0 * double(n));
        sums[l][k].second += s / double(n);
      }
    }
  }
  return sums;
}

TEST(Fisher, BatchedMatchesPerSampleLoop) {
  auto data = random_data(10);
  for (const std::string arch : {"odd", "cnn", "resnet20", "mobilenetv2", "vit"}) {
    SCOPED_TRACE(arch);
    SensitivityContext c =
        make_context(arch == "odd" ? odd_layers() : tiny(arch), data.get(), quick());
    if (arch == "odd") {
      ASSERT_EQ(c.layers.size(), 5u);
    }
    SensitivityResult r = fisher_sensitivity(c);
    auto ref = per_sample_reference(c);
    ASSERT_EQ(r.layers.size(), c.layers.size());
    EXPECT_EQ(r.extra.at("samples").get<int64_t>(), 10);
    for (size_t l = 0; l < c.layers.size(); ++l) {
      ASSERT_EQ(r.layers[l].weight.size(), 3u);
      for (size_t b = 0; b < 3; ++b) {
        const BitSensitivity& s = r.layers[l].weight[b];
        EXPECT_EQ(s.bits, c.options.bits[b]);
        EXPECT_GT(ref[l][b].first, 0) << c.layers[l].name;
        EXPECT_NEAR(s.omega, ref[l][b].first, 1e-5 * ref[l][b].first)
            << c.layers[l].name << " at " << s.bits << " bits";
        double mean_inner = s.parts.at("mean_inner").get<double>();
        EXPECT_NEAR(mean_inner, ref[l][b].second, 1e-5 * std::sqrt(2 * ref[l][b].first))
            << c.layers[l].name << " at " << s.bits << " bits";
        EXPECT_GT(s.std_error, 0);
        EXPECT_LT(s.std_error, s.omega * 1.5);
      }
    }
  }
}

TEST(Fisher, LabelFreeGivesPositiveOmega) {
  auto data = random_data(10);
  SensitivityOptions o = quick();
  o.label_free = true;
  SensitivityContext c = make_context(tiny("cnn"), data.get(), o);
  SensitivityResult r = fisher_sensitivity(c);
  SensitivityResult again = fisher_sensitivity(c);
  c.options.label_free = false;
  SensitivityResult labelled = fisher_sensitivity(c);
  bool differs = false;
  for (size_t l = 0; l < r.layers.size(); ++l) {
    for (size_t b = 0; b < r.layers[l].weight.size(); ++b) {
      EXPECT_GT(r.layers[l].weight[b].omega, 0) << c.layers[l].name;
      EXPECT_TRUE(std::isfinite(r.layers[l].weight[b].omega));
      EXPECT_EQ(r.layers[l].weight[b].omega, again.layers[l].weight[b].omega);  // seeded labels
      differs |= r.layers[l].weight[b].omega != labelled.layers[l].weight[b].omega;
    }
  }
  EXPECT_TRUE(differs);
}

TEST(Fisher, OmegaGrowsAsBitsDrop) {
  auto data = random_data(16);
  SensitivityOptions o = quick();
  o.samples = 16;
  o.batch_size = 8;
  o.bits = {8, 6, 4, 3, 2};
  SensitivityContext c = make_context(tiny("resnet20"), data.get(), o);
  SensitivityResult r = fisher_sensitivity(c);
  double total[5] = {0, 0, 0, 0, 0};
  for (const auto& l : r.layers) {
    for (size_t b = 0; b < 5; ++b) total[b] += l.weight[b].omega;
    // Each halving of the step size (one bit) cuts Omega by about 4; 8 vs 2 bits is decisive.
    EXPECT_GT(l.weight[4].omega, l.weight[0].omega) << l.name;
    EXPECT_GT(l.weight[4].parts.at("dw_sq").get<double>(),
              l.weight[2].parts.at("dw_sq").get<double>());
  }
  for (size_t b = 1; b < 5; ++b) EXPECT_GT(total[b], total[b - 1]) << o.bits[b] << " bits";
}

TEST(Fisher, ResumeRepeatsAnUninterruptedRun) {
  auto data = random_data(10);
  SensitivityContext c = make_context(tiny("cnn"), data.get(), quick());
  std::vector<nlohmann::json> saved;
  c.resume.save = [&](const nlohmann::json& s) { saved.push_back(s); };
  SensitivityResult full = fisher_sensitivity(c);
  ASSERT_EQ(saved.size(), 3u);  // one per batch

  SensitivityContext again = c;
  again.resume.save = nullptr;
  again.resume.state = nlohmann::json::parse(saved[1].dump());
  SensitivityResult resumed = fisher_sensitivity(again);
  for (size_t l = 0; l < c.layers.size(); ++l) {
    for (size_t b = 0; b < 3; ++b) {
      EXPECT_EQ(resumed.layers[l].weight[b].omega, full.layers[l].weight[b].omega);
      EXPECT_EQ(resumed.layers[l].weight[b].std_error, full.layers[l].weight[b].std_error);
    }
  }
  again.options.bits = {2, 3, 4};
  EXPECT_THROW(fisher_sensitivity(again), Error);
}

}  // namespace
}  // namespace mpq
