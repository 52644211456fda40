// mpq sensitivity from the command line: a real run on Fashion-MNIST written to sensitivity.json,
// the cache answering the same run again, validation against delta-loss, and bad input ending in
// a one-line error with no output file.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "onnx/io.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

TEST(CliSensitivity, WritesCachesAndValidates) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::vector<std::string> common = {
      "-q", "sensitivity", model,   "--data",      "fashion-mnist:train", "--samples",
      "64", "--bits",      "2,4,8", "--cache-dir", dir + "/cache"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return mpq(args);
  };
  ProcessResult r = run({"--metric", "fisher", "-o", dir + "/s.json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("from cache"), std::string::npos) << r.output;
  auto j = nlohmann::json::parse(read_file(dir + "/s.json"));
  EXPECT_EQ(j["format"], "mpq.sensitivity");
  EXPECT_EQ(j["metric"], "fisher");
  EXPECT_EQ(j["info"]["options"]["samples"], 64);
  EXPECT_EQ(j["info"]["model_hash"].get<std::string>().size(), 16u);
  ASSERT_GT(j["layers"].size(), 2u);
  for (const auto& l : j["layers"]) {
    ASSERT_EQ(l["weight"].size(), 3u);
    EXPECT_GT(l["weight"][0]["omega"].get<double>(), l["weight"][2]["omega"].get<double>())
        << l["name"];
  }
  // Tied groups (layers reading one activation) sum their members' Omega.
  ASSERT_GE(j["groups"].size(), 1u);
  EXPECT_LT(j["groups"].size(), j["layers"].size());  // a downsample conv shares its block's input
  for (const auto& g : j["groups"]) {
    double sum = 0;
    for (const auto& name : g["layers"]) {
      for (const auto& l : j["layers"]) {
        if (l["name"] == name) sum += l["weight"][0]["omega"].get<double>();
      }
    }
    EXPECT_NEAR(g["weight"][0]["omega"].get<double>(), sum, 1e-12 * std::abs(sum));
  }
  // The same run again comes from the cache, with the same numbers.
  r = run({"--metric", "fisher", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto again = nlohmann::json::parse(r.output);
  EXPECT_TRUE(again["info"]["from_cache"].get<bool>());
  EXPECT_EQ(again["layers"], j["layers"]);
  // Another seed is another key.
  r = run({"--metric", "fisher", "--seed", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(nlohmann::json::parse(r.output)["info"]["from_cache"].get<bool>());

  r = run({"--metric", "delta-loss", "--validate", "--configs", "20", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto v = nlohmann::json::parse(r.output)["validation"];
  EXPECT_EQ(v["configs"]["n"], 20);
  EXPECT_EQ(v["per_bits"].size(), 3u);
  EXPECT_EQ(v["configurations"].size(), 20u);
}

TEST(CliSensitivity, BadInput) {
  std::string dir = test::temp_dir();
  std::string model = test::small_resnet_file(dir);
  std::string out = dir + "/s.json";
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"sensitivity", model, "--data", "fashion-mnist:train",
                                     "--no-cache",  "-o",  out};
    args.insert(args.end(), extra.begin(), extra.end());
    return mpq(args);
  };
  expect_one_line_error(run({"--metric", "hawq"}), {"--metric", "hessian", "hawq"});
  expect_one_line_error(run({"--bits", "1,4"}), {"--bits", "2-8", "1"});
  expect_one_line_error(run({"--bits", "4,4"}), {"--bits", "repeat"});
  expect_one_line_error(run({"--samples", "0"}), {"--samples", "0"});
  expect_one_line_error(run({"--probe", "random"}), {"--probe", "random"});
  expect_one_line_error(run({"--scheme", "nf4"}), {"nf4"});
  expect_one_line_error(run({"--metric", "delta-loss", "--validate", "--configs", "5"}),
                        {"--configs", "20", "5"});
  std::string rgb = dir + "/rgb.onnx";
  ZooOptions o;
  o.channels = 3;
  o.height = o.width = 32;
  o.width_mult = 0.25;
  o.depth = 1;
  export_onnx(build_zoo_model("cnn", o), rgb);
  expect_one_line_error(mpq({"sensitivity", rgb, "--data", "fashion-mnist:train", "--no-cache"}),
                        {"does not fit", "1x28x28"});
  EXPECT_FALSE(file_exists(out));
}

}  // namespace
}  // namespace mpq
