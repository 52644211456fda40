// mpq train --qat / --sdq from the command line: a short QAT run writes a QDQ model and its
// summary; bad input (no plan or bits, no budget, a budget below every layer's lowest width, a
// missing plan file) stops with a one-line error and writes nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

std::vector<std::string> base(const std::string& model, const std::string& out) {
  return {"-q",          "train",  model,      "--limit", "256",
          "--val-limit", "200",    "--epochs", "1",       "--calibration-samples",
          "64",          "--mean", "0.286",    "--std",   "0.353",
          "-o",          out};
}

TEST(CliTrain, QatWritesAQuantizedModel) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  auto args = base(model, dir + "/q.onnx");
  args.insert(args.end(), {"--qat", "--bits", "4/8", "--lsq"});
  ProcessResult r = mpq(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["avg_weight_bits"].get<double>(), 4.0);
  EXPECT_TRUE(file_exists(dir + "/q.onnx"));
  EXPECT_TRUE(file_exists(dir + "/q.onnx.ckpt"));
}

TEST(CliTrain, BadInputStopsWithOneLine) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  const std::string out = dir + "/out.onnx";
  auto args = base(model, out);
  args.push_back("--qat");
  expect_one_line_error(mpq(args), {"--plan", "--bits"});
  args = base(model, out);
  args.insert(args.end(), {"--qat", "--plan", dir + "/missing.json"});
  expect_one_line_error(mpq(args), {"missing.json"});
  args = base(model, out);
  args.push_back("--sdq");
  expect_one_line_error(mpq(args), {"--budget"});
  args = base(model, out);
  args.insert(args.end(), {"--sdq", "--budget", "avg-bits=1.5"});
  expect_one_line_error(mpq(args), {"avg-bits"});
  args = base(model, out);
  args.insert(args.end(), {"--sdq", "--budget", "avg-bits=3", "--bits", "2,x"});
  expect_one_line_error(mpq(args), {"--bits"});
  EXPECT_FALSE(file_exists(out));
}

}  // namespace
}  // namespace mpq
