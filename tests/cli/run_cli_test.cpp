// mpq run from the command line on a small model: every artifact in the run folder, run.json's
// measurements consistent with the plan and the budget, the multipoint preset, and bad input
// (an infeasible budget, an unknown method) stopping before any work with a one-line error.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "data/dataset.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

std::vector<std::string> quick_run(const std::string& model, const std::string& dir) {
  return {"-q",
          "run",
          model,
          "--data",
          "fashion-mnist:train",
          "--limit",
          "128",
          "--samples",
          "64",
          "--eval-limit",
          "200",
          "--uniform",
          "2,8",
          "--frontier-evals",
          "1",
          "--no-cache",
          "-o",
          dir};
}

TEST(CliRun, WritesEveryArtifactAndMeetsTheBudget) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> args = quick_run(model, dir + "/run");
  args.insert(args.end(), {"--budget", "avg-bits=4"});
  ProcessResult r = mpq(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"run.json", "sensitivity.json", "plan.json", "frontier.json",
                        "model.q.onnx", "report.html", "report.md"}) {
    EXPECT_TRUE(file_exists(dir + "/run/" + f)) << f;
  }
  EXPECT_NE(r.output.find("mixed (mpqco)"), std::string::npos) << r.output;
  auto run = load_json(dir + "/run/run.json");
  EXPECT_EQ(run["format"], "mpq-run");
  EXPECT_EQ(run["method"]["metric"], "fisher");
  EXPECT_EQ(run["method"]["solver"], "greedy");
  // The budget holds for the measured model too (the papers' average weight bits).
  EXPECT_LE(run["mixed"]["avg_weight_bits"].get<double>(), 4 + 1e-9);
  EXPECT_GT(run["mixed"]["avg_weight_bits"].get<double>(), 2);
  ASSERT_EQ(run["uniform"].size(), 2u);
  EXPECT_EQ(run["frontier_eval"].size(), 1u);
  for (const char* k : {"top1", "agreement", "size_bytes", "bitops"}) {
    EXPECT_TRUE(run["mixed"].contains(k)) << k;
  }
  // A smaller model than uniform 8-bit, larger than uniform 2-bit.
  EXPECT_LT(run["mixed"]["size_bytes"].get<double>(),
            run["uniform"][1]["size_bytes"].get<double>());
  EXPECT_GT(run["mixed"]["size_bytes"].get<double>(),
            run["uniform"][0]["size_bytes"].get<double>());
  std::vector<std::string> stages;
  for (const auto& s : run["stages"]) stages.push_back(s["name"]);
  EXPECT_EQ(stages, (std::vector<std::string>{"check budgets", "sensitivity", "search", "quantize",
                                              "evaluate", "verify", "report"}));
  EXPECT_TRUE(run["verify"]["passed"].get<bool>()) << run["verify"].dump();
  // The plan in the folder is what quantize used: every layer's bits in the exported model.
  auto plan = load_json(dir + "/run/plan.json");
  EXPECT_EQ(plan["layers"].size(), run["model"]["layers"].get<size_t>());
}

TEST(CliRun, MultipointPresetAddsPointsOnALowerBase) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> args = quick_run(model, dir + "/mp");
  args.insert(args.end(), {"--budget", "avg-bits=3", "--method", "multipoint", "--no-verify"});
  ProcessResult r = mpq(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto run = load_json(dir + "/mp/run.json");
  EXPECT_EQ(run["method"]["base_bits"], 2);
  EXPECT_DOUBLE_EQ(run["method"]["extra_points"].get<double>(), 0.5);
  // Every point counted, the average is the budget's (rounding of points per layer aside).
  EXPECT_NEAR(run["mixed"]["avg_weight_bits"].get<double>(), 3.0, 0.35);
  EXPECT_GT(run["mixed"]["avg_weight_bits"].get<double>(), 2.0);
}

TEST(CliRun, LcpaqPresetSearchesTheQuantizerToo) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> args = quick_run(model, dir + "/lc");
  args.insert(args.end(), {"--budget", "avg-bits=3", "--method", "lcpaq", "--proxy-evals", "6",
                           "--proxy-samples", "32", "--no-verify", "--no-report"});
  ProcessResult r = mpq(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto run = load_json(dir + "/lc/run.json");
  EXPECT_EQ(run["method"]["metric"], "hessian");
  EXPECT_EQ(run["method"]["solver"], "ilp");
  ASSERT_TRUE(run["method"].contains("proxy_search")) << run["method"].dump();
  EXPECT_EQ(run["method"]["proxy_search"]["candidates"], 6);
  auto log = load_json(dir + "/lc/proxy_search.json");
  EXPECT_EQ(log["format"], "mpq-proxy-search");
  // The model was quantized with the settings the search chose.
  auto plan = load_json(dir + "/lc/plan.json");
  EXPECT_EQ(run["method"]["quantizer"], plan["quantizer"]["method"]);
  EXPECT_LE(run["mixed"]["avg_weight_bits"].get<double>(), 3 + 1e-9);
}

TEST(CliRun, BadBudgetsStopBeforeAnyWork) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> args = quick_run(model, dir + "/never");
  args.insert(args.end(), {"--budget", "avg-bits=1.5"});
  expect_one_line_error(mpq(args), {"budgets cannot be met", "avg-bits", "minimum"});
  EXPECT_FALSE(file_exists(dir + "/never"));
  args = quick_run(model, dir + "/never");
  args.insert(args.end(), {"--budget", "avg-bits=3", "--method", "magic"});
  expect_one_line_error(mpq(args), {"magic", "mpqco", "hawq"});
  args = quick_run(model, dir + "/never");
  args.insert(args.end(), {"--budget", "size=0.5r", "--method", "multipoint"});
  expect_one_line_error(mpq(args), {"multipoint", "avg-bits"});
  EXPECT_FALSE(file_exists(dir + "/never"));
}

// Models whose outputs are not class scores, with weights as Constant nodes and symbolic H and W,
// on unlabelled images of another size than the zoo's: label-free sensitivity, quality as
// agreement / cosine / SQNR against the float model, the report, ONNX Runtime.
TEST(CliRun, UnlabelledModelsOfEveryOutputKind) {
  std::string dir = test::temp_dir();
  std::string x = dir + "/x.npy";
  save_npy(x, at::rand({48, 1, 16, 20}));
  const std::map<std::string, std::string> kinds = {
      {"detector", "map"}, {"seqnet", "sequence"}, {"embednet", "embedding"}};
  for (const auto& [arch, kind] : kinds) {
    SCOPED_TRACE(arch);
    std::string model = dir + "/" + arch + ".onnx", out = dir + "/run_" + arch;
    ProcessResult r =
        mpq({"-q", "zoo", arch, "--constants", "--dynamic-hw", "--width-mult", "0.5", "-o", model});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = mpq({"-q", "run", model, "--data", x, "--budget", "avg-bits=4", "--samples", "24",
             "--uniform", "2,8", "--frontier-evals", "1", "--no-cache", "-o", out});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto run = load_json(out + "/run.json");
    EXPECT_FALSE(run["data"]["labelled"].get<bool>());
    EXPECT_FALSE(run["mixed"].contains("top1"));
    EXPECT_EQ(run["mixed"]["output"], kind);
    auto sens = load_json(out + "/sensitivity.json");
    EXPECT_TRUE(sens["info"]["options"]["label_free"].get<bool>());
    EXPECT_EQ(sens["info"]["options"]["output"], kind);
    const char* quality = kind == "embedding" ? "cosine" : "agreement";
    ASSERT_TRUE(run["mixed"].contains(quality)) << run["mixed"].dump();
    // 8-bit uniform is closer to the float model than 2-bit, and the mixed model lies between.
    double u2 = run["uniform"][0]["sqnr_db"].get<double>(),
           u8 = run["uniform"][1]["sqnr_db"].get<double>();
    EXPECT_GT(u8, u2);
    EXPECT_GT(run["mixed"]["sqnr_db"].get<double>(), u2);
    EXPECT_GT(run["uniform"][1][quality].get<double>(), 0.95);
    EXPECT_TRUE(run["verify"]["passed"].get<bool>()) << run["verify"].dump();
    EXPECT_TRUE(file_exists(out + "/report.html"));
  }
}

}  // namespace
}  // namespace mpq
