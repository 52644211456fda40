// The mpq command line end to end: inspect and eval on real data, and every kind of bad input
// (missing, truncated or non-ONNX file, unsupported op, data that does not fit the model, bad
// options) ending in a one-line error and a non-zero exit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/process.h"
#include "data/dataset.h"
#include "onnx/builder.h"
#include "onnx/io.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

std::string small_model(const std::string& dir, const std::string& arch = "cnn") {
  ZooOptions o;
  o.width_mult = 0.25;
  o.depth = 1;
  std::string path = dir + "/" + arch + ".onnx";
  export_onnx(build_zoo_model(arch, o), path);
  return path;
}

TEST(Cli, InspectListsLayersAndTotals) {
  std::string dir = test::temp_dir();
  std::string model = small_model(dir, "resnet20");
  ProcessResult r = mpq({"inspect", model, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["layers"].size(), 10u);  // stem, 3 stages x (2 convs), 2 downsamples, fc
  int64_t macs = 0;
  for (const auto& l : j["layers"]) macs += l["macs"].get<int64_t>();
  EXPECT_EQ(macs, j["total_macs"].get<int64_t>());
  // The stem conv: 4 output channels of 28x28, each 1*3*3 MACs.
  EXPECT_EQ(j["layers"][0]["macs"].get<int64_t>(), 4 * 28 * 28 * 9);
  EXPECT_EQ(j["layers"][0]["params"].get<int64_t>(), 4 * 9);
  r = mpq({"inspect", model, "--input-shape", "1x28x28"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("quantizable layers"), std::string::npos) << r.output;
}

TEST(Cli, EvalOnFashionMnistWithReference) {
  std::string dir = test::temp_dir();
  std::string model = small_model(dir);
  ProcessResult r = mpq(
      {"-q", "eval", model, "--data", "fashion-mnist", "--limit", "300", "--ref", model, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["samples"].get<int64_t>(), 300);
  EXPECT_DOUBLE_EQ(j["agreement"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["kl"].get<double>(), 0.0);
  EXPECT_GE(j["top5"].get<double>(), j["top1"].get<double>());
}

TEST(Cli, EvalOnNpyData) {
  std::string dir = test::temp_dir();
  std::string model = small_model(dir);
  at::manual_seed(2);
  save_npy(dir + "/x.npy", at::rand({20, 1, 28, 28}));
  save_npy(dir + "/y.npy", at::randint(0, 10, {20}, at::kLong));
  ProcessResult r =
      mpq({"-q", "eval", model, "--data", dir + "/x.npy", "--labels", dir + "/y.npy", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["samples"].get<int64_t>(), 20);
}

TEST(Cli, MissingFile) {
  expect_one_line_error(mpq({"inspect", "/nonexistent/model.onnx"}),
                        {"/nonexistent/model.onnx", "not found"});
}

TEST(Cli, TruncatedAndNonOnnxFiles) {
  std::string dir = test::temp_dir();
  std::string bytes = read_file(small_model(dir));
  write_file_atomic(dir + "/cut.onnx", bytes.substr(0, bytes.size() / 3));
  expect_one_line_error(mpq({"inspect", dir + "/cut.onnx"}), {"cut.onnx", "not an ONNX model"});
  write_file_atomic(dir + "/img.onnx", std::string("\x89PNG\r\n\x1a\n", 8) + "rest");
  expect_one_line_error(mpq({"inspect", dir + "/img.onnx"}), {"img.onnx", "not an ONNX model"});
}

TEST(Cli, UnsupportedOpNamesOpNodeAndOpset) {
  std::string dir = test::temp_dir();
  GraphBuilder b("custom", 15);
  std::string x = b.input("x", {std::string("N"), int64_t(1), int64_t(28), int64_t(28)});
  b.output(b.node("Sinh", {b.node("Relu", {x})}, {}, "odd_node"));
  ExportOptions o;
  o.check = false;
  export_onnx(b.build(), dir + "/custom.onnx", o);
  expect_one_line_error(mpq({"inspect", dir + "/custom.onnx"}),
                        {"custom.onnx", "odd_node", "Sinh", "opset 15"});
}

TEST(Cli, DataThatDoesNotFitTheModel) {
  std::string dir = test::temp_dir();
  GraphBuilder b("rgb", 13);
  std::string x = b.input("image", {std::string("N"), int64_t(3), int64_t(32), int64_t(32)});
  b.output(b.node("Flatten", {b.node("GlobalAveragePool", {x})}), {std::string("N"), int64_t(3)});
  export_onnx(b.build(), dir + "/rgb.onnx");
  expect_one_line_error(
      mpq({"eval", dir + "/rgb.onnx", "--data", "fashion-mnist", "--limit", "10"}),
      {"rgb.onnx", "input 'image'", "[N,3,32,32]", "1x28x28", "does not fit"});
}

TEST(Cli, BadOptions) {
  std::string dir = test::temp_dir();
  std::string model = small_model(dir);
  expect_one_line_error(mpq({"inspect", model, "--bogus"}), {"--bogus"});
  expect_one_line_error(mpq({"inspect", model, "--input-shape", "1xfoo"}),
                        {"--input-shape", "1xfoo"});
  expect_one_line_error(mpq({"eval", model}), {"--data"});
  expect_one_line_error(mpq({"eval", model, "--data", "fashion-mnist", "--batch-size", "0"}),
                        {"--batch-size"});
  expect_one_line_error(mpq({"eval", model, "--data", dir + "/nothing.npy"}), {"nothing.npy"});
  expect_one_line_error(mpq({"zoo", "alexnet", "-o", dir + "/a.onnx"}), {"alexnet", "resnet20"});
  expect_one_line_error(mpq({"frobnicate"}), {"frobnicate"});
  expect_one_line_error(mpq({"train", "-o", dir + "/t.onnx"}), {"MODEL", "--arch", "neither"});
  expect_one_line_error(mpq({"train", "--arch", "lenet", "-o", dir + "/t.onnx"}), {"lenet"});
  expect_one_line_error(
      mpq({"train", "--arch", "cnn", "-o", dir + "/t.onnx", "--optimizer", "rmsprop"}),
      {"--optimizer", "rmsprop"});
  expect_one_line_error(mpq({"train", model, "-o", dir + "/t.onnx", "--data", dir + "/x.npy"}),
                        {"x.npy"});
}

TEST(Cli, OutputsAreNeverHalfWritten) {
  std::string dir = test::temp_dir();
  // Writing into a folder that does not exist fails cleanly and leaves nothing behind.
  expect_one_line_error(mpq({"zoo", "cnn", "-o", dir + "/no/such/dir/m.onnx"}), {"no/such/dir"});
  std::string model = small_model(dir);
  std::string before = read_file(model);
  ProcessResult r = mpq({"inspect", model, "-o", dir + "/inspect.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(model), before);  // input files are never modified
  EXPECT_TRUE(file_exists(dir + "/inspect.txt"));
}

}  // namespace
}  // namespace mpq
