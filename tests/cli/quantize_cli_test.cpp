// mpq quantize and mpq verify from the command line: a real run on Fashion-MNIST, and bad input
// (bits out of range, a plan naming a layer the model lacks, calibration data of the wrong shape,
// conflicting options) ending in a one-line error, a non-zero exit and no output file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/process.h"
#include "onnx/io.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

TEST(CliQuantize, QuantizeThenVerify) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::string out = dir + "/q.onnx";
  ProcessResult r = mpq({"-q", "quantize", model, "--bits", "4/8", "--data", "fashion-mnist:train",
                         "--samples", "64", "--eval", "fashion-mnist:test", "--json", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["info"]["method"], "mse");
  EXPECT_EQ(j["info"]["calibration_samples"], 64);
  EXPECT_EQ(j["size"]["file_bytes"].get<int64_t>(), int64_t(read_file(out).size()));
  EXPECT_NEAR(j["size"]["weight_bits_average"].get<double>(), 4.0, 1e-9);
  EXPECT_GT(j["bitops"].get<double>(), 0);
  EXPECT_NEAR(j["bitops"].get<double>() / j["float_bitops"].get<double>(), 32.0 / 1024, 1e-9);
  EXPECT_TRUE(j["quantized"].contains("agreement"));

  // A plan file gives each layer its own bits.
  nlohmann::json plan = {{"layers", nlohmann::json::array()}};
  plan["layers"].push_back({{"name", "conv1"}, {"weight_bits", 8}, {"act_bits", 8}});
  plan["layers"].push_back({{"name", "fc"}, {"weight_bits", 2}, {"act_bits", 6}});
  write_file_atomic(dir + "/plan.json", plan.dump());
  r = mpq({"-q", "quantize", model, "--plan", dir + "/plan.json", "--data", "fashion-mnist:train",
           "--samples", "32", "--method", "rtn", "--json", "-o", dir + "/p.onnx"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][1]["weight_bits"], 2);
  EXPECT_EQ(j["info"]["observer"], "minmax");

  std::string why;
  if (!onnxruntime_available(&why)) GTEST_SKIP() << why;
  r = mpq({"-q", "verify", out, "--data", "fashion-mnist:test", "--samples", "200", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["samples"], 200);
  ASSERT_EQ(j["outputs"].size(), 1u);
  EXPECT_GE(j["outputs"][0]["top1_agreement"].get<double>(), 0.995);
  EXPECT_LT(j["outputs"][0]["max_rel"].get<double>(), 0.05);
  EXPECT_TRUE(j["within_bounds"].get<bool>());
  EXPECT_FALSE(j.contains("layers"));  // only compared beyond the bounds or when asked

  // --per-layer compares every quantized layer, in graph order, and names none beyond the bound.
  r = mpq({"-q", "verify", out, "--data", "fashion-mnist:test", "--samples", "50", "--per-layer",
           "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  ASSERT_TRUE(j.contains("layers")) << j.dump();
  ASSERT_GE(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][0]["layer"], "conv1");
  EXPECT_EQ(j["first_divergent_layer"], "");
  for (const auto& l : j["layers"]) EXPECT_LT(l["max_rel"].get<double>(), 0.05) << l.dump();
  // Beyond the bounds the first departing layer is named: tests/model (an emulated CPU).
}

TEST(CliQuantize, Int8TypesAreChosenAndChecked) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> base = {
      "-q",        "quantize", model,   "--bits", "8/8", "--data", "fashion-mnist:train",
      "--samples", "32",       "--json"};
  for (const char* format : {"u8u8", "reduce-range"}) {
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--int8", format, "-o", dir + "/" + format + ".onnx"});
    ProcessResult r = mpq(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["int8_format"], format);
    EXPECT_NEAR(j["size"]["weight_bits_average"].get<double>(),
                std::string(format) == "reduce-range" ? 7.0 : 8.0, 1e-9);
  }
  std::vector<std::string> args = base;
  args.insert(args.end(), {"--int8", "u4s4", "-o", dir + "/bad.onnx"});
  expect_one_line_error(mpq(args), {"--int8", "u4s4", "u8u8", "reduce-range"});
  EXPECT_FALSE(file_exists(dir + "/bad.onnx"));
  // --version says what the choice of auto rests on.
  ProcessResult v = mpq({"--version"});
  ASSERT_EQ(v.exit_code, 0) << v.output;
  for (const char* needle : {"mpq ", "cpu: ", "MLAS int8: ", "oneDNN ", "--int8 auto"})
    EXPECT_NE(v.output.find(needle), std::string::npos) << v.output;
}

TEST(CliQuantize, BadInput) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::string out = dir + "/q.onnx";
  std::vector<std::string> data = {"--data", "fashion-mnist:train", "--samples", "16"};
  auto quantize = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"quantize", model, "-o", out};
    args.insert(args.end(), extra.begin(), extra.end());
    return mpq(args);
  };
  auto with_data = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), data.begin(), data.end());
    return quantize(extra);
  };
  expect_one_line_error(with_data({"--bits", "9/8"}), {"--bits", "expected 2-8, 16 or 32", "9"});
  expect_one_line_error(with_data({"--bits", "4/1"}), {"--bits", "found 1"});
  expect_one_line_error(with_data({"--bits", "four"}), {"--bits", "four"});
  expect_one_line_error(with_data({}), {"--bits", "--plan", "neither"});
  write_file_atomic(dir + "/plan.json", R"({"layers":[{"name":"conv_9","weight_bits":4}]})");
  expect_one_line_error(with_data({"--plan", dir + "/plan.json"}),
                        {"plan.json", "layer 'conv_9'", "no quantizable layer", "conv1"});
  expect_one_line_error(with_data({"--bits", "4/8", "--plan", dir + "/plan.json"}), {"both"});
  expect_one_line_error(with_data({"--bits", "4/8", "--method", "gptq"}), {"--method", "gptq"});
  expect_one_line_error(with_data({"--bits", "4/8", "--observer", "median"}),
                        {"observer", "median", "minmax"});
  expect_one_line_error(with_data({"--bits", "4/8", "--scheme", "nf4"}), {"nf4", "sym-channel"});
  expect_one_line_error(with_data({"--bits", "4/8", "--clip-error", "hessian"}),
                        {"--clip-error", "output or weight", "hessian"});
  // Activations need calibration data.
  expect_one_line_error(quantize({"--bits", "4/8"}), {"calibration data", "--data"});
  // Calibration data of the wrong shape.
  std::string rgb = dir + "/rgb.onnx";
  ZooOptions o;
  o.channels = 3;
  o.height = o.width = 32;
  o.width_mult = 0.25;
  o.depth = 1;
  export_onnx(build_zoo_model("cnn", o), rgb);
  expect_one_line_error(
      mpq({"quantize", rgb, "--bits", "4/8", "--data", "fashion-mnist:train", "-o", out}),
      {"calibration data", "does not fit", "1x28x28"});
  EXPECT_FALSE(file_exists(out));
  expect_one_line_error(mpq({"verify", dir + "/missing.onnx", "--data", "fashion-mnist"}),
                        {"missing.onnx"});
}

}  // namespace
}  // namespace mpq
