// The delta-loss metric and measure_config: against a direct evaluation of the modified model
// (the weight replaced in a copy of the graph, or the input quantized by hand), against each
// other, for monotonicity in the bit width, and through a resume.
#include "sensitivity/delta_loss.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "core/error.h"
#include "data/dataset.h"
#include "exec/executor.h"
#include "pipeline/zoo.h"
#include "quant/scheme.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

constexpr int64_t kSize = 8;

Graph tiny_resnet() { return test::tiny_zoo("resnet20", kSize); }

std::unique_ptr<Dataset> random_data(int64_t n) { return test::random_images(n, kSize, 0); }

SensitivityOptions quick(bool label_free = false) {
  SensitivityOptions o;
  o.metric = "delta-loss";
  o.bits = {2, 4, 8};
  o.samples = 48;
  o.batch_size = 20;  // uneven batches: the means must weigh them by size
  o.label_free = label_free;
  o.progress = false;
  return o;
}

struct Direct {
  double loss = 0, kl = 0, top1 = 0;
};

// The loss of `model` over the context's samples, computed from scratch.
Direct evaluate(const SensitivityContext& c, const Executor& model, const Executor& reference) {
  c10::InferenceMode guard;
  Direct d;
  int64_t n = 0;
  for (const Batch& b : SampleBatches(*c.data, c.options)) {
    at::Tensor z = model.run({b.x})[0], ref = reference.run({b.x})[0];
    d.loss += sensitivity_loss(z, b.y, ref, c.options.label_free).item<double>() * b.x.size(0);
    at::Tensor logp = at::log_softmax(z, 1), ref_logp = at::log_softmax(ref, 1);
    d.kl += (ref_logp.exp() * (ref_logp - logp)).sum().item<double>();
    d.top1 += z.argmax(1).eq(b.y).sum().item<double>();
    n += b.x.size(0);
  }
  d.loss /= double(n);
  d.kl /= double(n);
  d.top1 /= double(n);
  return d;
}

class DeltaLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = tiny_resnet();
    data_ = random_data(64);
  }
  SensitivityContext context(const SensitivityOptions& o) {
    return make_context(graph_, data_.get(), o);
  }
  Graph graph_;
  std::unique_ptr<Dataset> data_;
};

TEST_F(DeltaLoss, MatchesADirectEvaluationOfTheModifiedGraph) {
  SensitivityContext c = context(quick());
  auto start = std::chrono::steady_clock::now();
  SensitivityResult r = run_sensitivity(c);
  std::cout << "delta-loss, " << c.layers.size() << " layers x " << c.options.bits.size()
            << " bits, " << c.options.samples << " samples: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
  ASSERT_EQ(r.layers.size(), c.layers.size());
  Executor reference(c.graph);
  Direct base = evaluate(c, reference, reference);
  EXPECT_NEAR(r.extra.at("float_loss").get<double>(), base.loss, 1e-6);
  for (size_t i : {size_t(0), c.layers.size() / 2, c.layers.size() - 1}) {
    const QuantLayer& layer = c.layers[i];
    ASSERT_EQ(r.layers[i].weight.size(), 3u);
    EXPECT_TRUE(r.layers[i].act.empty());
    for (size_t k = 0; k < 3; ++k) {
      int bits = c.options.bits[k];
      Graph modified = c.graph;
      at::Tensor& w = modified.initializers.at(layer.weight);
      w = w + delta_weight(c.graph, layer, bits, c.options);
      Executor q(modified);
      Direct d = evaluate(c, q, reference);
      const BitSensitivity& s = r.layers[i].weight[k];
      EXPECT_EQ(s.bits, bits);
      EXPECT_NEAR(s.omega, d.loss - base.loss, 1e-6) << layer.name << " " << bits;
      EXPECT_NEAR(s.parts.at("loss").get<double>(), d.loss, 1e-6);
      EXPECT_NEAR(s.parts.at("kl").get<double>(), d.kl, 1e-6);
      EXPECT_NEAR(s.parts.at("top1").get<double>(), d.top1, 1e-12);
      EXPECT_TRUE(s.parts.at("sqnr_db").is_number());
    }
  }
}

TEST_F(DeltaLoss, MeasureConfigOfOneLayerEqualsItsEntry) {
  SensitivityContext c = context(quick());
  SensitivityResult r = run_sensitivity(c);
  for (size_t i : {size_t(1), c.layers.size() - 2}) {
    ConfigMeasure m = measure_config(c, {{c.layers[i].name, 2}});
    const BitSensitivity& s = r.layers[i].weight[0];
    ASSERT_EQ(s.bits, 2);
    EXPECT_NEAR(m.delta_loss, s.omega, 1e-9);
    EXPECT_NEAR(m.loss, s.parts.at("loss").get<double>(), 1e-9);
    EXPECT_NEAR(m.kl, s.parts.at("kl").get<double>(), 1e-9);
    EXPECT_NEAR(m.top1, s.parts.at("top1").get<double>(), 1e-12);
    EXPECT_NEAR(m.sqnr_db, s.parts.at("sqnr_db").get<double>(), 1e-6);
  }
  // Nothing quantized: the float model.
  ConfigMeasure none = measure_config(c, {});
  EXPECT_EQ(none.delta_loss, 0);
  EXPECT_EQ(none.kl, 0);
  EXPECT_THROW(measure_config(c, {{"no-such-layer", 4}}), Error);
  EXPECT_THROW(measure_config(c, {{c.layers[0].name, 1}}), Error);
}

TEST_F(DeltaLoss, MixedConfigurationMatchesADirectEvaluation) {
  SensitivityContext c = context(quick());
  std::map<std::string, int> config;
  Graph modified = c.graph;
  const int choices[] = {2, 3, 5, 8};
  for (size_t i = 0; i < c.layers.size(); ++i) {
    int bits = choices[i % 4];
    config[c.layers[i].name] = bits;
    at::Tensor& w = modified.initializers.at(c.layers[i].weight);
    w = w + delta_weight(c.graph, c.layers[i], bits, c.options);
  }
  Executor reference(c.graph), q(modified);
  Direct base = evaluate(c, reference, reference), d = evaluate(c, q, reference);
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second from the caches
    ConfigMeasure m = measure_config(c, config);
    EXPECT_NEAR(m.delta_loss, d.loss - base.loss, 1e-6);
    EXPECT_NEAR(m.kl, d.kl, 1e-6);
    EXPECT_NEAR(m.top1, d.top1, 1e-12);
  }
}

TEST_F(DeltaLoss, EightBitsIsTinyNextToTwoBits) {
  SensitivityContext c = context(quick(/*label_free=*/true));
  std::map<std::string, int> all8, all2;
  for (const auto& l : c.layers) {
    all8[l.name] = 8;
    all2[l.name] = 2;
  }
  ConfigMeasure m8 = measure_config(c, all8), m2 = measure_config(c, all2);
  EXPECT_GT(m8.delta_loss, 0);
  EXPECT_LT(m8.delta_loss, 0.01 * m2.delta_loss);
  EXPECT_NEAR(m8.delta_loss, m8.kl, 1e-6);  // label-free: the loss is the KL to the float model
  EXPECT_GT(m8.sqnr_db, m2.sqnr_db + 20);
  // Per layer too.
  SensitivityResult r = run_sensitivity(c);
  for (const auto& l : r.layers) {
    EXPECT_LT(l.weight[2].omega, l.weight[0].omega) << l.name;
    EXPECT_GE(l.weight[0].omega, 0);
  }
}

TEST_F(DeltaLoss, ActivationBitsQuantizeOneLayersInputOnly) {
  SensitivityOptions o = quick(/*label_free=*/true);
  o.bits = {4};
  o.act_bits = {2, 8};
  SensitivityContext c = context(o);
  SensitivityResult r = run_sensitivity(c);
  for (const auto& l : r.layers) {
    ASSERT_EQ(l.act.size(), 2u) << l.name;
    EXPECT_EQ(l.act[0].bits, 2);
    EXPECT_EQ(l.act[1].bits, 8);
    EXPECT_LT(l.act[1].omega, l.act[0].omega) << l.name;
    EXPECT_GT(l.act[0].omega, 0) << l.name;
  }
  // The first layer reads the model's input: quantize it by hand and compare.
  {
    SampleBatches batches(*data_, o);
    double lo = 0, hi = 0;
    for (const Batch& b : batches) {
      lo = std::min(lo, b.x.min().item<double>());
      hi = std::max(hi, b.x.max().item<double>());
    }
    QParams p = params_from_range(at::scalar_tensor(lo), at::scalar_tensor(hi), 2,
                                  find_scheme("affine-tensor"));
    Executor ex(c.graph);
    c10::InferenceMode guard;
    double kl = 0;
    int64_t n = 0;
    for (const Batch& b : batches) {
      at::Tensor ref = ex.run({b.x})[0], z = ex.run({fake_quantize(b.x, p)})[0];
      kl += sensitivity_loss(z, b.y, ref, true).item<double>() * b.x.size(0);
      n += b.x.size(0);
    }
    EXPECT_NEAR(r.layers[0].act[0].omega, kl / double(n), 1e-6);
  }
  // Layers reading the same tensor (a block's first conv and its shortcut) are measured apart.
  bool shared = false;
  for (size_t i = 0; i < c.layers.size(); ++i) {
    for (size_t j = i + 1; j < c.layers.size(); ++j) {
      if (c.groups[i] != c.groups[j]) continue;
      shared = true;
      EXPECT_NE(r.layers[i].act[0].omega, r.layers[j].act[0].omega);
    }
  }
  EXPECT_TRUE(shared) << "expected layers sharing an input in resnet20";
}

TEST_F(DeltaLoss, ResumeFromAPartialStateGivesTheSameResult) {
  SensitivityOptions o = quick();
  o.bits = {2, 4};
  o.act_bits = {4};
  SensitivityContext c = context(o);
  std::vector<nlohmann::json> states;
  c.resume.save = [&states](const nlohmann::json& s) { states.push_back(s); };
  SensitivityResult full = run_sensitivity(c);
  ASSERT_EQ(states.size(), c.layers.size());  // one save per layer

  // Interrupted after three layers; the state goes through a file as text.
  SensitivityContext resumed = context(o);
  resumed.resume.state = nlohmann::json::parse(states[2].dump());
  int saves = 0;
  resumed.resume.save = [&saves](const nlohmann::json&) { ++saves; };
  SensitivityResult again = run_sensitivity(resumed);
  EXPECT_EQ(saves, int(c.layers.size()) - 3);
  EXPECT_EQ(to_json(again).at("layers"), to_json(full).at("layers"));

  // The saved layers were not measured again: an edited entry comes back as it is.
  nlohmann::json edited = states[2];
  std::string key = c.layers[0].name + "/w2";
  ASSERT_TRUE(edited.at("done").contains(key)) << edited.dump();
  edited["done"][key]["omega"] = 123.0;
  resumed.resume.state = edited;
  EXPECT_EQ(run_sensitivity(resumed).layers[0].weight[0].omega, 123.0);

  // A state measured against another float pass (model, data or options) is ignored.
  edited["reference"]["logit_sum"] = edited["reference"]["logit_sum"].get<double>() + 1;
  resumed.resume.state = edited;
  EXPECT_EQ(run_sensitivity(resumed).layers[0].weight[0].omega, full.layers[0].weight[0].omega);
}

// Two Gemm layers tied to one weight: each is quantized alone.
TEST(DeltaLossTied, LayersSharingAWeightAreMeasuredApart) {
  Graph g;
  g.source = "tied";
  g.opsets[""] = 17;
  g.inputs.push_back({"x", true, 1, false, {}});
  g.outputs.push_back({"y", true, 1, false, {}});
  at::manual_seed(5);
  g.initializers["w"] = at::randn({6, 6});
  g.nodes.push_back({"fc1", "Gemm", "", {"x", "w"}, {"h"}, {}});
  g.nodes.push_back({"act", "Relu", "", {"h"}, {"r"}, {}});
  g.nodes.push_back({"fc2", "Gemm", "", {"r", "w"}, {"y"}, {}});
  std::string dir = test::temp_dir();
  save_npy(dir + "/x.npy", at::randn({32, 6}));
  save_npy(dir + "/y.npy", at::randint(0, 6, {32}, at::kLong));
  DataOptions d;
  d.spec = dir + "/x.npy";
  d.labels = dir + "/y.npy";
  auto data = open_dataset(d);
  SensitivityOptions o = quick();
  o.bits = {2};
  SensitivityContext c = make_context(g, data.get(), o);
  ASSERT_EQ(c.layers.size(), 2u);
  SensitivityResult r = run_sensitivity(c);
  Executor reference(c.graph);
  Direct base = evaluate(c, reference, reference);
  for (size_t i = 0; i < 2; ++i) {
    Graph modified = c.graph;
    modified.initializers["w_q"] =
        c.graph.initializers.at("w") + delta_weight(c.graph, c.layers[i], 2, o);
    modified.nodes[size_t(c.layers[i].node)].inputs[1] = "w_q";
    Executor q(modified);
    EXPECT_NEAR(r.layers[i].weight[0].omega, evaluate(c, q, reference).loss - base.loss, 1e-6);
    ConfigMeasure m = measure_config(c, {{c.layers[i].name, 2}});
    EXPECT_NEAR(m.delta_loss, r.layers[i].weight[0].omega, 1e-9);
  }
  EXPECT_NE(r.layers[0].weight[0].omega, r.layers[1].weight[0].omega);
}

TEST(DeltaLossData, UnlabelledDataNeedsLabelFree) {
  std::string dir = test::temp_dir();
  save_npy(dir + "/x.npy", at::randn({8, 1, kSize, kSize}));
  auto data = open_dataset(dir + "/x.npy");
  Graph g = tiny_resnet();
  SensitivityOptions o = quick(/*label_free=*/true);
  o.metric = "orthogonality";  // a context that does not ask for labels
  o.label_free = false;
  SensitivityContext c = make_context(g, data.get(), o);
  EXPECT_THROW(measure_config(c, {{c.layers[0].name, 4}}), Error);
  c.options.label_free = true;
  EXPECT_GT(measure_config(c, {{c.layers[0].name, 2}}).delta_loss, 0);
}

}  // namespace
}  // namespace mpq
