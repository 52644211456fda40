// An unlabelled model end to end from the command line: `mpq zoo seqnet --constants --dynamic-hw`
// (per-step class probabilities, weights as Constant nodes, symbolic H and W), images of another
// size than the zoo's default in an .npy file without labels, `mpq sensitivity --label-free`,
// `mpq quantize` at W8A8 and W2A8, `mpq eval --ref` against the float model and `mpq verify` in
// ONNX Runtime.
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

TEST(CliLabelFree, SequenceModelWithoutLabels) {
  std::string dir = test::temp_dir();
  std::string model = dir + "/seqnet.onnx", x = dir + "/x.npy";
  ProcessResult r = mpq(
      {"-q", "zoo", "seqnet", "--constants", "--dynamic-hw", "--width-mult", "0.5", "-o", model});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  save_npy(x, at::rand({24, 1, 16, 20}));

  std::vector<std::string> sens = {"-q",    "sensitivity", model,    "--data",
                                   x,       "--metric",    "fisher", "--bits",
                                   "2,4,8", "--samples",   "24",     "--no-cache"};
  r = mpq(sens);  // no labels, and no --label-free
  expect_one_line_error(r, {"needs labels", "--label-free"});
  sens.insert(sens.end(), {"--label-free", "-o", dir + "/s.json"});
  r = mpq(sens);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto s = nlohmann::json::parse(read_file(dir + "/s.json"));
  EXPECT_EQ(s["info"]["options"]["output"], "sequence");
  EXPECT_TRUE(s["info"]["options"]["label_free"].get<bool>());
  ASSERT_EQ(s["layers"].size(), 4u);
  for (const auto& l : s["layers"]) {
    EXPECT_GT(l["weight"][0]["omega"].get<double>(), l["weight"][2]["omega"].get<double>())
        << l["name"];
  }
  // Layers' MACs at the data's 16 x 20 (T = 10 steps for the per-step classifier).
  EXPECT_EQ(s["layers"][3]["name"], "classifier");
  EXPECT_EQ(s["layers"][3]["macs"], 10 * 16 * 10);

  double agreement[2], sqnr[2];
  const char* bits[2] = {"8/8", "2/8"};
  for (int i = 0; i < 2; ++i) {
    std::string q = dir + "/q" + std::to_string(i) + ".onnx";
    r = mpq({"-q", "quantize", model, "--bits", bits[i], "--data", x, "-o", q});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = mpq({"-q", "eval", q, "--data", x, "--ref", model, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto e = nlohmann::json::parse(r.output);
    EXPECT_EQ(e["output"], "sequence");
    EXPECT_FALSE(e.contains("top1"));
    agreement[i] = e["agreement"].get<double>();
    sqnr[i] = e["sqnr_db"].get<double>();
    EXPECT_GE(e["kl"].get<double>(), 0);
  }
  // The 2-bit QDQ file (packed weights) runs in ONNX Runtime as in mpq.
  r = mpq({"-q", "verify", dir + "/q1.onnx", "--data", x, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(nlohmann::json::parse(r.output)["outputs"][0]["max_rel"].get<double>(), 1e-4);
  EXPECT_GT(agreement[0], 0.95);
  EXPECT_LT(agreement[1], agreement[0]);
  EXPECT_GT(sqnr[0], sqnr[1]);
  r = mpq({"-q", "eval", dir + "/q0.onnx", "--data", x, "--ref", model});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("per-step argmax"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mpq
