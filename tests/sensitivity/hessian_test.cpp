// The `hessian` metric (methods.md §2): Hessian-vector products against finite differences of
// gradients, Hutchinson traces against the exact trace of a tiny model's per-layer Hessian (built
// from H e_i over every unit vector), determinism, the two probe modes and resume.
#include "sensitivity/hessian.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "quant/patches.h"
#include "quant/scheme.h"
#include "sensitivity/tiny_net.h"
#include "support/test_data.h"

namespace mpq {
namespace {

std::unique_ptr<Dataset> random_data(int64_t n, at::ScalarType type) {
  return test::random_images(n, 4, 3, 4, type);
}

// Conv (stride 2) -> Tanh -> Flatten -> MatMul -> Tanh -> Gemm: 27 + 72 + 24 weights, smooth so
// that finite differences behave.
Graph tiny_model(at::ScalarType type) {
  GraphBuilder b("tiny", 17);
  std::string y = test::tiny_smooth_net(b, 4, type);
  b.output(y, {}, type == at::kDouble ? 11 : 1);
  Graph g = b.build();
  g.source = "tiny";
  return g;
}

SensitivityOptions quick(int64_t probes = 16) {
  SensitivityOptions o;
  o.metric = "hessian";
  o.bits = {2, 4, 8};
  o.samples = 24;
  o.batch_size = 10;  // batches of 10, 10 and 4
  o.min_probes = probes;
  o.max_probes = probes;
  o.progress = false;
  return o;
}

// The gradient of the mean loss over the context's batches, by plain autograd; the label-free
// loss compares with the logits of `reference`'s graph.
std::vector<at::Tensor> gradient(const SensitivityContext& c, const SensitivityContext& reference) {
  Executor float_model(reference.graph);
  Executor ex(c.graph);
  std::vector<at::Tensor> leaves;
  for (const auto& l : c.layers) {
    leaves.push_back(c.graph.initializers.at(l.weight).detach().requires_grad_(true));
    at::Tensor leaf = leaves.back();
    ex.set_weight_hook(l.weight, [leaf](const std::string&, const at::Tensor&) { return leaf; });
  }
  SampleBatches batches(*c.data, c.options);
  std::vector<at::Tensor> sum;
  for (const auto& l : leaves) sum.push_back(at::zeros_like(l));
  for (const Batch& b : batches) {
    at::Tensor logits = ex.run({b.x})[0];
    at::Tensor ref = float_model.run({b.x})[0].detach();
    at::Tensor loss = sensitivity_loss(logits, b.y, ref, c.options.label_free);
    auto g = torch::autograd::grad({loss}, leaves);
    for (size_t i = 0; i < g.size(); ++i)
      sum[i] += g[i].detach() * (double(b.x.size(0)) / double(c.options.samples));
  }
  return sum;
}

// Exact per-layer traces: sum_i e_i^T H_ll e_i over every unit vector of each layer.
std::vector<double> exact_traces(const SensitivityContext& c) {
  std::vector<double> traces;
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const at::Tensor& w = c.graph.initializers.at(c.layers[l].weight);
    double trace = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      std::vector<at::Tensor> probe(c.layers.size());
      probe[l] = at::zeros_like(w);
      probe[l].view(-1)[i] = 1.0;
      HessianProduct p = hessian_vector_product(c, probe);
      trace += p.hv[l].reshape(-1)[i].item<double>();
    }
    traces.push_back(trace);
  }
  return traces;
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

TEST(Hessian, VectorProductMatchesFiniteDifferences) {
  for (bool label_free : {false, true}) {
    SCOPED_TRACE(label_free ? "label-free" : "labels");
    auto data = random_data(24, at::kDouble);
    SensitivityOptions o = quick();
    o.label_free = label_free;
    SensitivityContext c = make_context(tiny_model(at::kDouble), data.get(), o);
    ASSERT_EQ(c.layers.size(), 3u);
    at::Generator gen = at::detail::createCPUGenerator(5);
    std::vector<at::Tensor> v;
    for (const auto& l : c.layers)
      v.push_back(
          at::normal(0.0, 1.0, c.graph.initializers.at(l.weight).sizes(), gen).to(at::kDouble));
    HessianProduct hv = hessian_vector_product(c, v);
    if (label_free) {
      EXPECT_NEAR(hv.loss, 0, 1e-12);  // KL of the float model to itself
    } else {
      EXPECT_GT(hv.loss, 0);
    }

    const double eps = 1e-5;
    SensitivityContext plus = c, minus = c;
    for (size_t l = 0; l < c.layers.size(); ++l) {
      const at::Tensor& w = c.graph.initializers.at(c.layers[l].weight);
      plus.graph.initializers[c.layers[l].weight] = w + eps * v[l];
      minus.graph.initializers[c.layers[l].weight] = w - eps * v[l];
    }
    std::vector<at::Tensor> gp = gradient(plus, c), gm = gradient(minus, c);
    for (size_t l = 0; l < c.layers.size(); ++l) {
      at::Tensor fd = (gp[l] - gm[l]) / (2 * eps);
      EXPECT_GT(max_abs(hv.hv[l]), 1e-4) << c.layers[l].name;
      EXPECT_LT(max_abs(hv.hv[l] - fd), 1e-6 * max_abs(fd)) << c.layers[l].name;
    }

    // A probe on one layer only: the product is that layer's block column, H_kl v_l.
    std::vector<at::Tensor> one(c.layers.size());
    one[1] = v[1];
    HessianProduct part = hessian_vector_product(c, one);
    EXPECT_FALSE(part.hv[0].defined());
    EXPECT_FALSE(part.hv[2].defined());
    EXPECT_TRUE(part.hv[1].defined());
    HessianProduct none = hessian_vector_product(c, std::vector<at::Tensor>(c.layers.size()));
    for (const auto& t : none.hv) EXPECT_FALSE(t.defined());
    EXPECT_DOUBLE_EQ(none.loss, hv.loss);
  }
}

TEST(Hessian, HutchinsonMatchesExactTrace) {
  auto data = random_data(24, at::kFloat);
  SensitivityOptions o = quick(300);
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), o);
  std::vector<double> exact = exact_traces(c);
  for (const std::string probe : {"global", "layer"}) {
    SCOPED_TRACE(probe);
    c.options.probe = probe;
    SensitivityResult r = hessian_sensitivity(c);
    ASSERT_EQ(r.layers.size(), c.layers.size());
    EXPECT_EQ(r.extra.at("probes").get<int64_t>(), 300);
    for (size_t l = 0; l < c.layers.size(); ++l) {
      double trace = r.layers[l].extra.at("trace").get<double>();
      double se = r.layers[l].extra.at("trace_std_error").get<double>();
      EXPECT_GT(exact[l], 0) << c.layers[l].name;
      EXPECT_GT(se, 0) << c.layers[l].name;
      EXPECT_LT(se, 0.2 * exact[l]) << c.layers[l].name;
      EXPECT_NEAR(trace, exact[l], 4 * se + 1e-4 * exact[l]) << c.layers[l].name;
      // Omega = Tr / n * ||dW||^2 for every bit width, in the options' order.
      const at::Tensor& w = c.graph.initializers.at(c.layers[l].weight);
      ASSERT_EQ(r.layers[l].weight.size(), o.bits.size());
      for (size_t b = 0; b < o.bits.size(); ++b) {
        const BitSensitivity& s = r.layers[l].weight[b];
        EXPECT_EQ(s.bits, o.bits[b]);
        double dw_sq = delta_weight(c.graph, c.layers[l], o.bits[b], o)
                           .to(at::kDouble)
                           .pow(2)
                           .sum()
                           .item<double>();
        EXPECT_NEAR(s.parts.at("dw_sq").get<double>(), dw_sq, 1e-12 * dw_sq);
        EXPECT_NEAR(s.omega, trace / double(w.numel()) * dw_sq, 1e-12 * std::abs(s.omega));
        EXPECT_NEAR(s.std_error, se / double(w.numel()) * dw_sq, 1e-12 * s.std_error);
      }
      EXPECT_GT(r.layers[l].weight[0].omega, r.layers[l].weight[2].omega);
    }
  }
}

// granularity "channel": Omega = sum_c Tr(H_c) / n_c * ||dW_c||^2 against the exact diagonal
// entries of H summed per output channel (the same unit-vector products as exact_traces).
TEST(Hessian, ChannelGranularityMatchesExactBlockTraces) {
  auto data = random_data(24, at::kFloat);
  SensitivityOptions o = quick(300);
  o.granularity = "channel";
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), o);
  SensitivityResult r = hessian_sensitivity(c);
  EXPECT_EQ(r.extra.at("granularity"), "channel");
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const at::Tensor& w = c.graph.initializers.at(c.layers[l].weight);
    const int64_t axis = output_channel_axis(c.graph, c.layers[l]);
    at::Tensor diag = at::zeros({w.numel()}, at::kDouble);
    for (int64_t i = 0; i < w.numel(); ++i) {
      std::vector<at::Tensor> probe(c.layers.size());
      probe[l] = at::zeros_like(w);
      probe[l].view(-1)[i] = 1.0;
      diag[i] = hessian_vector_product(c, probe).hv[l].reshape(-1)[i].item<double>();
    }
    at::Tensor block_traces = to_channel_rows(diag.reshape(w.sizes()), axis).sum(1);
    const double per_channel = double(w.numel()) / double(w.size(axis));
    for (size_t b = 0; b < o.bits.size(); ++b) {
      at::Tensor dw = delta_weight(c.graph, c.layers[l], o.bits[b], o).to(at::kDouble);
      at::Tensor dw_c = to_channel_rows(dw, axis).pow(2).sum(1);
      const double exact = (block_traces * dw_c).sum().item<double>() / per_channel;
      const BitSensitivity& s = r.layers[l].weight[b];
      EXPECT_GT(s.std_error, 0) << c.layers[l].name;
      EXPECT_NEAR(s.omega, exact, 4 * s.std_error + 1e-4 * std::abs(exact))
          << c.layers[l].name << " W" << o.bits[b];
    }
  }
}

TEST(Hessian, DeterministicForASeed) {
  auto data = random_data(24, at::kFloat);
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), quick(6));
  SensitivityResult a = hessian_sensitivity(c), b = hessian_sensitivity(c);
  c.options.seed = 1;
  SensitivityResult other = hessian_sensitivity(c);
  for (size_t l = 0; l < c.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].extra.at("trace"), b.layers[l].extra.at("trace"));
    EXPECT_EQ(a.layers[l].weight[0].omega, b.layers[l].weight[0].omega);
    EXPECT_NE(a.layers[l].extra.at("trace"), other.layers[l].extra.at("trace"));
  }
}

TEST(Hessian, ProbeModesAgreeWithinErrors) {
  auto data = random_data(24, at::kFloat);
  SensitivityOptions o = quick(40);
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), o);
  SensitivityResult global = hessian_sensitivity(c);
  c.options.probe = "layer";
  SensitivityResult layer = hessian_sensitivity(c);
  for (size_t l = 0; l < c.layers.size(); ++l) {
    double tg = global.layers[l].extra.at("trace").get<double>();
    double tl = layer.layers[l].extra.at("trace").get<double>();
    double sg = global.layers[l].extra.at("trace_std_error").get<double>();
    double sl = layer.layers[l].extra.at("trace_std_error").get<double>();
    EXPECT_NEAR(tg, tl, 4 * std::hypot(sg, sl)) << c.layers[l].name;
  }
}

TEST(Hessian, StopsWhenErrorsAreSmall) {
  auto data = random_data(24, at::kFloat);
  SensitivityOptions o = quick();
  o.min_probes = 4;
  o.max_probes = 200;
  o.tolerance = 0.2;
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), o);
  SensitivityResult r = hessian_sensitivity(c);
  int64_t probes = r.extra.at("probes").get<int64_t>();
  EXPECT_GE(probes, 4);
  EXPECT_LT(probes, 200);
  for (const auto& l : r.layers) {
    EXPECT_LE(l.extra.at("trace_std_error").get<double>(),
              0.2 * std::abs(l.extra.at("trace").get<double>()));
  }
  // A loose tolerance stops no later.
  c.options.tolerance = 0.5;
  EXPECT_LE(hessian_sensitivity(c).extra.at("probes").get<int64_t>(), probes);
}

TEST(Hessian, ResumeRepeatsAnUninterruptedRun) {
  auto data = random_data(24, at::kFloat);
  SensitivityOptions o = quick();
  o.min_probes = 3;
  o.max_probes = 40;
  o.tolerance = 0.01;  // runs to max_probes in several chunks
  SensitivityContext c = make_context(tiny_model(at::kFloat), data.get(), o);
  std::vector<nlohmann::json> saved;
  c.resume.save = [&](const nlohmann::json& s) { saved.push_back(s); };
  SensitivityResult full = hessian_sensitivity(c);
  ASSERT_GE(saved.size(), 3u);
  EXPECT_EQ(saved.back().at("values").size(), 40u);

  // Interrupted after the first chunk, then resumed from what it saved (through JSON text).
  SensitivityContext again = c;
  again.resume.save = [](const nlohmann::json&) { throw std::runtime_error("interrupted"); };
  EXPECT_THROW(hessian_sensitivity(again), std::runtime_error);
  again.resume.state = nlohmann::json::parse(saved.front().dump());
  again.resume.save = nullptr;
  SensitivityResult resumed = hessian_sensitivity(again);
  EXPECT_EQ(resumed.extra.at("probes"), full.extra.at("probes"));
  for (size_t l = 0; l < c.layers.size(); ++l) {
    EXPECT_EQ(resumed.layers[l].extra.at("trace"), full.layers[l].extra.at("trace"));
    EXPECT_EQ(resumed.layers[l].weight[1].omega, full.layers[l].weight[1].omega);
  }

  // A state from other options is refused.
  again.options.seed = 9;
  EXPECT_THROW(hessian_sensitivity(again), Error);
}

}  // namespace
}  // namespace mpq
