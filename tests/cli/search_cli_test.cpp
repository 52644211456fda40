// mpq search from the command line: sensitivity -> search -> quantize on a real (small) model,
// every solver on the same file, the frontier file, and bad input ending in a one-line error
// with no output file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

class CliSearch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir());
    model_ = new std::string(test::small_resnet_file(*dir_));
    ProcessResult r =
        mpq({"-q", "sensitivity", *model_, "--data", "fashion-mnist:train", "--samples", "64",
             "--bits", "2,4,6,8", "--metric", "fisher", "--no-cache", "-o", *dir_ + "/s.json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static std::string* dir_;
  static std::string* model_;
};
std::string* CliSearch::dir_ = nullptr;
std::string* CliSearch::model_ = nullptr;

TEST_F(CliSearch, PlanMeetsBudgetAndQuantizes) {
  const std::string& d = *dir_;
  ProcessResult r =
      mpq({"-q", "search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r", "--budget",
           "bops=0.6r", "-o", d + "/plan.json", "--frontier", d + "/frontier.json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("solver ilp: optimal"), std::string::npos) << r.output;
  auto plan = nlohmann::json::parse(read_file(d + "/plan.json"));
  auto sens = nlohmann::json::parse(read_file(d + "/s.json"));
  ASSERT_EQ(plan["layers"].size(), sens["layers"].size());
  std::set<int> bits;
  for (const auto& l : plan["layers"]) {
    bits.insert(l["weight_bits"].get<int>());
    EXPECT_TRUE(l.contains("omega") && l.contains("cost") && l.contains("reason")) << l.dump();
  }
  EXPECT_GT(bits.size(), 1u) << "a budget halfway should mix bit widths";
  ASSERT_EQ(plan["budgets"].size(), 2u);
  for (const auto& b : plan["budgets"]) {
    EXPECT_LE(b["total"].get<double>(), b["limit"].get<double>() * (1 + 1e-9)) << b.dump();
  }
  auto front = nlohmann::json::parse(read_file(d + "/frontier.json"));
  ASSERT_GE(front["points"].size(), 2u);
  for (size_t i = 1; i < front["points"].size(); ++i) {
    EXPECT_GT(front["points"][i]["cost"].get<double>(), front["points"][i - 1]["cost"]);
    EXPECT_LT(front["points"][i]["predicted_loss"].get<double>(),
              front["points"][i - 1]["predicted_loss"]);
  }
  // The plan is what mpq quantize reads.
  r = mpq({"-q", "quantize", *model_, "--plan", d + "/plan.json", "--data", "fashion-mnist:train",
           "--limit", "64", "-o", d + "/q.onnx"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(file_exists(d + "/q.onnx"));
}

TEST_F(CliSearch, EverySolverOnOneBudget) {
  double exact = -1;
  for (const char* solver : {"mckp", "ilp", "brute", "greedy", "lp"}) {
    std::string out = *dir_ + "/plan_" + solver + ".json";
    ProcessResult r = mpq({"-q", "search", "--sensitivity", *dir_ + "/s.json", "--budget",
                           "weight-size=0.4r", "--solver", solver, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << solver << ": " << r.output;
    auto plan = nlohmann::json::parse(read_file(out));
    double loss = plan["search"]["predicted_loss"].get<double>();
    if (exact < 0) exact = loss;
    if (std::string(solver) == "ilp" || std::string(solver) == "brute") {
      EXPECT_NEAR(loss, exact, 1e-9 * exact) << solver;
    } else if (std::string(solver) != "mckp") {
      EXPECT_GE(loss, exact * (1 - 1e-9)) << solver;
      EXPECT_LE(loss - exact, plan["search"]["gap"].get<double>() + 1e-12) << solver;
    }
  }
}

TEST_F(CliSearch, ProxySearchWritesAPlanWithItsQuantizer) {
  const std::string& d = *dir_;
  ProcessResult r = mpq({"-q",
                         "search",
                         "--proxy-search",
                         "--model",
                         *model_,
                         "--data",
                         "fashion-mnist:train",
                         "--limit",
                         "128",
                         "--sensitivity",
                         d + "/s.json",
                         "--budget",
                         "avg-bits=0.5r",
                         "--proxy-evals",
                         "5",
                         "--proxy-samples",
                         "32",
                         "--calibration-samples",
                         "64",
                         "--validate-data",
                         "fashion-mnist:test",
                         "--validate-limit",
                         "100",
                         "--proxy-log",
                         d + "/proxy.json",
                         "-o",
                         d + "/proxy_plan.json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("proxy search: 5 candidates scored"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("validation: 5 candidates"), std::string::npos) << r.output;
  auto plan = nlohmann::json::parse(read_file(d + "/proxy_plan.json"));
  ASSERT_TRUE(plan.contains("quantizer")) << plan.dump();
  ASSERT_TRUE(plan.contains("proxy_search")) << plan.dump();
  auto log = nlohmann::json::parse(read_file(d + "/proxy.json"));
  EXPECT_EQ(log["validation"]["n"], 5);
  // mpq quantize takes the plan's quantizer; a flag wins over it.
  r = mpq({"quantize", *model_, "--plan", d + "/proxy_plan.json", "--data", "fashion-mnist:train",
           "--limit", "64", "--json", "-o", d + "/proxy_q.onnx"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto q = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(q["info"]["method"], plan["quantizer"]["method"]) << q["info"].dump();
  EXPECT_EQ(q["info"]["observer"], plan["quantizer"]["observer"]) << q["info"].dump();
  r = mpq({"quantize", *model_, "--plan", d + "/proxy_plan.json", "--data", "fashion-mnist:train",
           "--limit", "64", "--observer", "minmax", "--json", "-o", d + "/proxy_q2.onnx"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  q = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(q["info"]["observer"], "minmax");
}

TEST_F(CliSearch, BadInputIsOneLineAndWritesNothing) {
  const std::string& d = *dir_;
  std::string out = d + "/never.json";
  expect_one_line_error(
      mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=100B", "-o", out}),
      {"budgets cannot be met", "size limit 100 B", "minimum"});
  expect_one_line_error(
      mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=2XB", "-o", out}),
      {"size=2XB", "unit"});
  expect_one_line_error(mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r",
                             "--solver", "magic", "-o", out}),
                        {"magic", "greedy", "ilp"});
  expect_one_line_error(mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r",
                             "--budget", "bops=0.5r", "--solver", "greedy", "-o", out}),
                        {"greedy", "one budget"});
  expect_one_line_error(
      mpq({"search", "--sensitivity", *model_, "--budget", "size=0.5r", "-o", out}),
      {model_->c_str(), "JSON"});
  expect_one_line_error(mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r",
                             "--target", d + "/missing.json", "-o", out}),
                        {"missing.json"});
  expect_one_line_error(mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r",
                             "--proxy-search", "-o", out}),
                        {"--proxy-search", "--model", "--data"});
  expect_one_line_error(mpq({"search", "--sensitivity", d + "/s.json", "--budget", "size=0.5r",
                             "--model", *model_, "-o", out}),
                        {"--model", "--proxy-search"});
  expect_one_line_error(mpq({"search", "--proxy-search", "--model", *model_, "--data",
                             "fashion-mnist:train", "--sensitivity", d + "/s.json", "--budget",
                             "size=0.5r", "--proxy-score", "full", "-o", out}),
                        {"--proxy-score full", "--validate-data"});
  EXPECT_FALSE(file_exists(out));
}

}  // namespace
}  // namespace mpq
