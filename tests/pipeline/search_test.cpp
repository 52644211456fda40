// The search pipeline: the model facts sensitivity.json carries (ties found in the graph, costs'
// inputs, BatchNormalization folded into biases), and run_search on a hand-made sensitivity file:
// ties, pins, reasons, totals, and a size estimate that matches the exported model.
#include "pipeline/search.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

Graph small_resnet() {
  ZooOptions o;
  o.width_mult = 0.25;
  o.depth = 1;
  return build_zoo_model("resnet20", o);
}

TEST(ModelFacts, ResnetTiesAndFoldedBias) {
  nlohmann::json f = model_facts(small_resnet());
  // Each downsampling stage's first conv and its 1x1 downsample read the same tensor.
  const auto& same = f["ties"]["same_input"];
  ASSERT_EQ(same.size(), 2u) << f["ties"].dump();
  for (const auto& g : same) {
    ASSERT_EQ(g.size(), 2u);
    EXPECT_NE(g[1].get<std::string>().find("downsample"), std::string::npos) << g.dump();
  }
  // Their outputs meet again at the block's Add (through BatchNormalization).
  bool conv2_with_downsample = false;
  for (const auto& g : f["ties"]["add"]) {
    std::string joined = g.dump();
    conv2_with_downsample |=
        joined.find("conv2") != std::string::npos && joined.find("downsample") != std::string::npos;
  }
  EXPECT_TRUE(conv2_with_downsample) << f["ties"]["add"].dump();
  EXPECT_EQ(f["ties"]["concat"].size(), 0u);
  for (const auto& l : f["layers"]) {
    EXPECT_GT(l["macs"].get<int64_t>(), 0) << l.dump();
    EXPECT_GT(l["input_elems"].get<int64_t>(), 0) << l.dump();
    // Every conv is followed by BatchNormalization: folded, one bias value per output channel.
    if (l["op"] == "Conv") {
      EXPECT_EQ(l["bias_elems"], l["out_channels"]) << l.dump();
    }
  }
  EXPECT_EQ(f["float_params"].get<int64_t>(), 0);  // nothing but layers and their BN
}

// A sensitivity file for three layers; b and c are tied (same input).
nlohmann::json three_layers() {
  auto layer = [](const char* name, int64_t weights, double scale) {
    nlohmann::json w = nlohmann::json::array();
    for (int b : {2, 4, 8}) w.push_back({{"bits", b}, {"omega", scale / double(1 << (2 * b))}});
    return nlohmann::json{{"name", name},          {"op", "Conv"},
                          {"weight", w},           {"weight_elems", weights},
                          {"bias_elems", 8},       {"out_channels", 8},
                          {"macs", weights * 100}, {"input_elems", 1000},
                          {"output_elems", 800}};
  };
  return {
      {"format", "mpq.sensitivity"},
      {"metric", "fisher"},
      {"layers", {layer("a", 1000, 1.0), layer("b", 4000, 8.0), layer("c", 2000, 0.5)}},
      {"ties", nlohmann::json::parse(R"({"same_input": [["b", "c"]], "add": [], "concat": []})")},
      {"float_params", 100}};
}

TEST(RunSearch, TiesReasonsAndTotals) {
  SearchOptions o;
  o.budgets = {"weight-size=0.5r"};
  SearchRun run = run_search(three_layers(), "s.json", o);
  EXPECT_EQ(run.solver, "mckp");
  ASSERT_EQ(run.plan.layers.size(), 3u);
  EXPECT_EQ(run.built.problem.groups.size(), 2u);  // b and c take one choice
  EXPECT_EQ(run.plan.layers[1].weight.bits, run.plan.layers[2].weight.bits);
  EXPECT_NE(run.plan.layers[1].extra["reason"].get<std::string>().find("tied with c"),
            std::string::npos);
  double total = 0;
  for (const auto& l : run.plan.layers) total += l.extra["cost"]["weight-size"].get<double>();
  const auto& b = run.plan.extra["budgets"][0];
  EXPECT_DOUBLE_EQ(b["total"].get<double>(), total);
  EXPECT_LE(total, b["limit"].get<double>());
  // lowest: 7000 weights at 2 bits; highest at 8 bits; r = 0.5 halfway.
  EXPECT_DOUBLE_EQ(b["lowest"].get<double>(), 7000 * 2 / 8.0);
  EXPECT_DOUBLE_EQ(b["limit"].get<double>(), 7000 * 5 / 8.0);
  // Size counts the float tensors outside the layers (100 floats) in every total.
  o.budgets = {"size=0.5r"};
  run = run_search(three_layers(), "s.json", o);
  EXPECT_GE(run.plan.extra["budgets"][0]["lowest"].get<double>(), 400.0 + 7000 * 2 / 8.0);
}

TEST(RunSearch, PicksAPointOnTheFrontierUnderSeveralBudgets) {
  SearchOptions o;
  o.budgets = {"bops=0.8r", "weight-size=0.9r"};
  SearchRun at_budget = run_search(three_layers(), "s.json", o);
  for (const std::string pick : {"knee", "loss=1e9"}) {
    o.pick = pick;
    SearchRun run = run_search(three_layers(), "s.json", o);
    EXPECT_EQ(run.solver, "frontier pick");
    ASSERT_FALSE(run.frontier.empty());
    ASSERT_EQ(run.plan.layers.size(), 3u);
    // Every budget holds, and the pick costs no more BitOps than the optimum at the budgets.
    for (const auto& b : run.plan.extra["budgets"])
      EXPECT_LE(b["total"].get<double>(), b["limit"].get<double>() * (1 + 1e-9)) << b.dump();
    EXPECT_LE(run.solution.cost[0], at_budget.solution.cost[0] + 1e-9);
    EXPECT_GE(run.solution.objective, at_budget.solution.objective - 1e-12);
  }
  // loss=1e9 takes the cheapest point of all.
  SearchRun cheapest = run_search(three_layers(), "s.json", o);
  EXPECT_DOUBLE_EQ(cheapest.solution.cost[0], cheapest.frontier.front().cost);
  o.pick = "loss=-1";
  EXPECT_THROW(run_search(three_layers(), "s.json", o), Error);
  o.pick = "elbow";
  EXPECT_THROW(run_search(three_layers(), "s.json", o), Error);
}

TEST(RunSearch, TargetPinsWinAndActivationsNeedOmega) {
  std::string dir = test::temp_dir();
  std::string target = dir + "/t.json";
  write_file_atomic(target,
                    R"({"weight_bits": {"default": [2, 4, 8]}, "act_bits": {"default": [4, 8]},
                               "pins": [{"layers": "a", "weight_bits": 8}]})");
  SearchOptions o;
  o.budgets = {"bops=0.2r"};
  o.target = target;
  SearchRun run = run_search(three_layers(), "s.json", o);
  EXPECT_EQ(run.plan.layers[0].weight.bits, 8);
  EXPECT_NE(run.plan.layers[0].extra["reason"].get<std::string>().find("pinned"),
            std::string::npos);
  // No activation Omega in the file: every layer keeps 8-bit activations, and says why.
  for (const auto& l : run.plan.layers) EXPECT_EQ(l.act.bits, 8) << l.name;
  ASSERT_FALSE(run.built.notes.empty());
}

TEST(RunSearch, BadInputNamesTheProblem) {
  SearchOptions o;
  o.budgets = {"size=0.5r"};
  nlohmann::json j = three_layers();
  j["layers"][1].erase("macs");
  try {
    run_search(j, "s.json", o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s.json: layer 'b'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("macs"), std::string::npos) << e.what();
  }
  o.budgets = {"weight-size=100B"};
  try {
    run_search(three_layers(), "s.json", o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("minimum"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_search(nlohmann::json{{"format", "mpq-plan"}}, "p.json", o), Error);
}

}  // namespace
}  // namespace mpq

namespace mpq {
namespace {

// HAWQ-V3's published ResNet-18 ILP (tests/search/data) through the whole search pipeline with
// the shipped target targets/hawq_v3_t4_resnet18.json: the sensitivity file a user would have
// (Omega = trace * ||dW||^2 at 4 and 8 bits, weights only), the target's w4a4 / w8a8 kernels,
// ties and latency table; every budget at r = 0.5 reproduces the exhaustive-search answer.
TEST(RunSearch, HawqV3GoldenThroughTheShippedTarget) {
  nlohmann::json golden =
      load_json(std::string(MPQ_SOURCE_DIR) + "/tests/search/data/hawq_v3_resnet18_ilp.json");
  nlohmann::json sens = {{"format", "mpq.sensitivity"}, {"metric", "hessian"}};
  for (const auto& l : golden["layers"]) {
    double trace = l["avg_hessian_trace"].get<double>();
    nlohmann::json w = nlohmann::json::array();
    w.push_back({{"bits", 4}, {"omega", trace * l["sq_err_w4"].get<double>()}});
    w.push_back({{"bits", 8}, {"omega", trace * l["sq_err_w8"].get<double>()}});
    int64_t params = l["params"].get<int64_t>();
    sens["layers"].push_back({{"name", l["name"]},
                              {"op", "Conv"},
                              {"weight", w},
                              {"weight_elems", params},
                              {"bias_elems", 0},
                              {"out_channels", 64},
                              {"macs", l["macs"]},
                              {"input_elems", 1},
                              {"output_elems", 1}});
  }
  // Kinds whose r = 0.5 limit is the golden file's: weight-size is params * b / 8; BitOps at
  // w4a4 / w8a8 is macs * 16 / macs * 64, proportional to the file's macs / 64 and macs / 16.
  const std::map<std::string, std::string> budget = {
      {"size", "weight-size=0.5r"}, {"bops", "bops=0.5r"}, {"latency", "latency=0.5r"}};
  for (const auto& [name, text] : budget) {
    for (const char* solver : {"mckp", "ilp"}) {
      SearchOptions o;
      o.budgets = {text};
      o.solver = solver;
      o.target = std::string(MPQ_SOURCE_DIR) + "/targets/hawq_v3_t4_resnet18.json";
      SearchRun run = run_search(sens, "hawq.json", o);
      ASSERT_EQ(run.built.problem.groups.size(), 16u);  // 19 layers, three tied pairs
      std::vector<int> bits;
      for (const auto& l : run.plan.layers) {
        bits.push_back(l.weight.bits);
        EXPECT_EQ(l.act.bits, l.weight.bits) << l.name;  // the kernels pair them
      }
      EXPECT_EQ(bits, golden["expected"][name]["bits"].get<std::vector<int>>())
          << name << " " << solver;
      if (name == "latency") {
        EXPECT_NEAR(run.plan.extra["budgets"][0]["limit"].get<double>(),
                    golden["expected"]["latency"]["limit"].get<double>(), 1e-4);
        EXPECT_NEAR(run.plan.extra["budgets"][0]["total"].get<double>(),
                    golden["expected"]["latency"]["latency_ms"].get<double>(), 1e-4);
      }
    }
  }
}

}  // namespace
}  // namespace mpq
