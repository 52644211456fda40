// The proxy search (methods.md §2): its best candidate's KL is recomputed from scratch with
// quantize_ptq and the float model, every candidate meets the user's budget (relative budgets
// resolved once), validation correlates over the scored candidates, OMPQ's beta is recomputed
// as the metric computes it, and bad options fail with a message.
#include "pipeline/proxy_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/io.h"
#include "pipeline/quantize.h"
#include "support/error_of.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

std::unique_ptr<Dataset> fashion(const char* split, int64_t n) {
  DataOptions d;
  d.spec = std::string("fashion-mnist:") + split;
  d.limit = n;
  return open_dataset(d);
}

nlohmann::json sensitivity_of(const Graph& g, const Dataset& data, const std::string& metric,
                              double beta = 1.0) {
  SensitivityOptions so;
  so.metric = metric;
  so.bits = {2, 3, 4, 8};
  so.samples = 32;
  so.beta = beta;
  so.progress = false;
  SensitivityRunOptions run;
  run.use_cache = false;
  const std::string path = test::temp_dir() + "/small_resnet.onnx";
  export_onnx(g, path);  // the run hashes the model's file
  return to_json(run_sensitivity_command(g, path, data, so, run));
}

ProxySearchOptions quick(const std::string& budget) {
  ProxySearchOptions o;
  o.search.budgets = {budget};
  o.evaluations = 10;
  o.population = 4;
  o.tournament = 2;
  o.proxy_samples = 32;
  o.ptq.calibration_samples = 64;
  o.ptq.batch_size = 32;
  o.progress = false;
  return o;
}

class ProxySearch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new Graph(test::tiny_zoo("resnet20", 28, 0.25));
    train_ = fashion("train", 64).release();
    test_ = fashion("test", 100).release();
    fisher_ = new nlohmann::json(sensitivity_of(*model_, *train_, "fisher"));
  }
  static Graph* model_;
  static Dataset *train_, *test_;
  static nlohmann::json* fisher_;
};
Graph* ProxySearch::model_ = nullptr;
Dataset* ProxySearch::train_ = nullptr;
Dataset* ProxySearch::test_ = nullptr;
nlohmann::json* ProxySearch::fisher_ = nullptr;

TEST_F(ProxySearch, BestCandidateIsRecomputedFromScratch) {
  ProxySearchResult r =
      run_proxy_search(*model_, *fisher_, "s.json", *train_, nullptr, quick("avg-bits=0.4r"));
  EXPECT_EQ(r.scored, 10);
  ASSERT_GE(r.candidates.size(), 10u);
  // The first candidate is the plain search: every width, nothing pinned, mse everywhere.
  const ProxyCandidate& plain = r.candidates.front();
  ASSERT_TRUE(plain.feasible) << plain.why;
  EXPECT_EQ(plain.settings["bits"], nlohmann::json({2, 3, 4, 8}));
  EXPECT_EQ(plain.settings["pin"], "none");
  EXPECT_EQ(plain.settings["weight_scale"], "mse");
  std::set<std::vector<int>> seen;
  for (const auto& c : r.candidates) {
    EXPECT_TRUE(seen.insert(c.genes).second) << "scored twice: " << c.settings.dump();
    if (!c.feasible) continue;
    EXPECT_LE(r.candidates[r.best].kl, c.kl);
  }
  // The plan meets the user's budget as the plain search resolved it.
  const auto& budget = r.search.plan.extra.at("budgets").at(0);
  EXPECT_LE(budget.at("total").get<double>(), budget.at("limit").get<double>() * (1 + 1e-9));
  ASSERT_TRUE(r.search.plan.extra.contains("quantizer"));
  ASSERT_TRUE(r.search.plan.extra.contains("proxy_search"));

  // Independent recomputation: PTQ from scratch with the chosen settings, KL against the float
  // model on the same samples.
  PtqOptions o = plan_quantizer(r.search.plan, "plan");
  EXPECT_EQ(o.method, r.ptq.method);
  o.calibration_samples = 64;
  o.batch_size = 32;
  o.progress = false;
  QuantizedModel q = quantize_ptq(*model_, r.search.plan, train_, o);
  Graph folded = prepare_graph(*model_, r.search.plan, true);
  Executor reference(folded);
  std::unique_ptr<Dataset> first = fashion("train", 32);
  EvalOptions eo;
  eo.progress = false;
  eo.batch_size = 64;
  EvalResult e = evaluate_simulated(q, "q", *first, eo, &reference);
  EXPECT_NEAR(e.kl, r.candidates[r.best].kl, 1e-6 + 1e-4 * e.kl);
}

TEST_F(ProxySearch, EveryCandidateMeetsTheResolvedRelativeBudget) {
  // avg-bits=0.3r with every width is 2 + 0.3 * 6 = 3.8 bits; a candidate without 2-bit weights
  // must still meet 3.8, not 0.3 of its own range.
  ProxySearchOptions o = quick("avg-bits=0.3r");
  o.evaluations = 12;
  ProxySearchResult r = run_proxy_search(*model_, *fisher_, "s.json", *train_, test_, o);
  int feasible = 0;
  for (const auto& c : r.candidates) {
    if (!c.feasible) {
      EXPECT_FALSE(c.why.empty());
      continue;
    }
    ++feasible;
    EXPECT_LE(c.avg_weight_bits, 3.8 + 1e-9) << c.settings.dump();
    EXPECT_TRUE(c.validated);
  }
  EXPECT_EQ(feasible, r.scored);
  // Validation: one pair per scored candidate.
  EXPECT_EQ(r.validation.n, r.scored);
  std::vector<double> proxy, top1;
  for (const auto& c : r.candidates) {
    if (!c.feasible) continue;
    proxy.push_back(-c.kl);
    top1.push_back(c.val_top1);
    EXPECT_GE(c.val_top1, 0.0);
    EXPECT_LE(c.val_top1, 1.0);
  }
  // (The untrained model may predict one class everywhere: a constant top-1 has no ranks.)
  const Correlation want = correlate(proxy, top1);
  if (std::isfinite(want.spearman)) {
    EXPECT_NEAR(r.validation.spearman, want.spearman, 1e-12);
  }
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["validation"]["n"], r.scored);
  EXPECT_EQ(j["candidates"].size(), r.candidates.size());
  // score = full ranks by the validation data instead.
  o.score = "full";
  ProxySearchResult full = run_proxy_search(*model_, *fisher_, "s.json", *train_, test_, o);
  for (const auto& c : full.candidates)
    if (c.feasible) {
      EXPECT_GE(full.candidates[full.best].val_top1, c.val_top1);
    }
}

TEST_F(ProxySearch, OmpqBetaIsRecomputedAsTheMetricComputesIt) {
  nlohmann::json at1 = sensitivity_of(*model_, *train_, "orthogonality", 1.0);
  nlohmann::json at10 = sensitivity_of(*model_, *train_, "orthogonality", 10.0);
  nlohmann::json again = with_ompq_beta(at1, 10.0);
  ASSERT_EQ(again["layers"].size(), at10["layers"].size());
  for (size_t i = 0; i < again["layers"].size(); ++i) {
    const auto& a = again["layers"][i]["weight"];
    const auto& b = at10["layers"][i]["weight"];
    for (size_t k = 0; k < a.size(); ++k)
      EXPECT_NEAR(a[k]["omega"].get<double>(), b[k]["omega"].get<double>(),
                  1e-9 + 1e-9 * std::abs(b[k]["omega"].get<double>()));
  }
  // By hand from the file's gamma (methods.md §4): theta = exp(-beta gamma), c_i the mean of
  // theta over layers i..L, Omega(b) = c_i (1 - b / 8).
  const auto& layers = at1["layers"];
  const size_t count = layers.size();
  for (size_t i = 0; i < count; ++i) {
    double tail = 0;
    for (size_t j = i; j < count; ++j)
      tail += std::exp(-10.0 * layers[j]["extra"]["gamma"].get<double>());
    const double c = tail / double(count - i);
    for (const auto& b : again["layers"][i]["weight"])
      EXPECT_NEAR(b["omega"].get<double>(), c * (1 - b["bits"].get<double>() / 8),
                  1e-12 + 1e-9 * c);
  }
  EXPECT_THROW(with_ompq_beta(*fisher_, 1.0), Error);
  // The search has a beta gene for an orthogonality file.
  ProxySearchOptions o = quick("avg-bits=0.5r");
  o.evaluations = 4;
  ProxySearchResult r = run_proxy_search(*model_, at1, "s.json", *train_, nullptr, o);
  EXPECT_NE(std::find(r.genes.begin(), r.genes.end(), "beta"), r.genes.end());
  EXPECT_EQ(r.candidates.front().settings["beta"], 1.0);
}

TEST_F(ProxySearch, SeveralBudgetsGetASplitGene) {
  ProxySearchOptions o = quick("size=0.5r");
  o.search.budgets.push_back("bops=0.6r");
  o.evaluations = 6;
  ProxySearchResult r = run_proxy_search(*model_, *fisher_, "s.json", *train_, nullptr, o);
  EXPECT_EQ(std::count_if(r.genes.begin(), r.genes.end(),
                          [](const std::string& g) { return g.rfind("split", 0) == 0; }),
            2);
  for (const auto& b : r.search.plan.extra.at("budgets"))
    EXPECT_LE(b.at("total").get<double>(), b.at("limit").get<double>() * (1 + 1e-9));
}

// An embedding has no KL: the proxy is 1 - cosine similarity to the float model's embedding.
TEST_F(ProxySearch, EmbeddingsAreScoredByCosine) {
  Graph g = test::tiny_zoo("embednet", 28, 0.25);
  nlohmann::json s = unmeasured_sensitivity(model_facts(g), {2, 4, 8}, {});
  ProxySearchOptions o = quick("avg-bits=3");
  o.evaluations = 4;
  ProxySearchResult r = run_proxy_search(g, s, "s.json", *train_, nullptr, o);
  for (const auto& c : r.candidates) {
    if (!c.feasible) continue;
    EXPECT_GT(c.kl, 0) << c.settings.dump();
    EXPECT_LT(c.kl, 1) << c.settings.dump();
  }
}

TEST_F(ProxySearch, BadOptions) {
  ProxySearchOptions o = quick("avg-bits=3");
  o.score = "full";
  auto message = [&] {
    return testing::error_of(
        [&] { run_proxy_search(*model_, *fisher_, "s", *train_, nullptr, o); });
  };
  EXPECT_NE(message().find("--proxy-score full: evaluation data are needed"), std::string::npos);
  o = quick("avg-bits=3");
  o.evaluations = 0;
  EXPECT_NE(message().find("--proxy-evals: expected at least 1, found 0"), std::string::npos);
  o = quick("avg-bits=1.5");
  EXPECT_NE(message().find("avg-bits"), std::string::npos) << message();
}

}  // namespace
}  // namespace mpq
