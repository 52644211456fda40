// Import/export: round trips give identical outputs, Constant-node weights and external data
// load like initializers, the checker accepts what mpq writes, and bad files give one-line
// errors that name the file.
#include "onnx/io.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/layers.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

at::Tensor run1(const Graph& g, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  return Executor(g).run({x})[0];
}

ZooOptions small(int64_t opset = 13) {
  ZooOptions o;
  o.width_mult = 0.25;
  o.depth = 1;
  o.random_bn = true;
  o.opset = opset;
  return o;
}

TEST(OnnxIo, LoadSaveLoadGivesIdenticalOutputs) {
  std::string dir = test::temp_dir();
  for (const std::string arch : {"resnet20", "mobilenetv2", "cnn", "vit"}) {
    ZooOptions o = small(17);
    Graph g = build_zoo_model(arch, o);
    export_onnx(g, dir + "/a.onnx");
    Graph a = import_onnx(dir + "/a.onnx");
    export_onnx(a, dir + "/b.onnx");
    Graph b = import_onnx(dir + "/b.onnx");
    at::Tensor x = at::randn({2, 1, 28, 28});
    at::Tensor ya = run1(a, x), yb = run1(b, x), yg = run1(g, x);
    EXPECT_TRUE(at::equal(ya, yb)) << arch;
    EXPECT_TRUE(at::equal(ya, yg)) << arch;
    // After the first import (which folds Constant nodes) saving is a fixed point.
    export_onnx(b, dir + "/c.onnx");
    EXPECT_EQ(read_file(dir + "/b.onnx"), read_file(dir + "/c.onnx")) << arch;
  }
}

TEST(OnnxIo, ConstantNodeWeightsBecomeInitializers) {
  std::string dir = test::temp_dir();
  ZooOptions o = small(11);
  o.weights_as_constants = true;
  Graph g = build_zoo_model("resnet20", o);
  EXPECT_TRUE(g.initializers.empty());
  export_onnx(g, dir + "/c.onnx");
  Graph loaded = import_onnx(dir + "/c.onnx");
  for (const auto& n : loaded.nodes) EXPECT_NE(n.op_type, "Constant");
  EXPECT_EQ(find_quantizable_layers(loaded).size(),
            find_quantizable_layers(build_zoo_model("resnet20", small(11))).size());
  at::Tensor x = at::randn({1, 1, 28, 28});
  EXPECT_TRUE(at::allclose(run1(g, x), run1(loaded, x)));
}

TEST(OnnxIo, ExternalDataRoundTrip) {
  std::string dir = test::temp_dir();
  Graph g = build_zoo_model("cnn", small());
  ExportOptions opt;
  opt.external_threshold = 1024;
  export_onnx(g, dir + "/ext.onnx", opt);
  ASSERT_TRUE(file_exists(dir + "/ext.onnx.data"));
  EXPECT_LT(read_file(dir + "/ext.onnx").size(), read_file(dir + "/ext.onnx.data").size());
  Graph loaded = import_onnx(dir + "/ext.onnx");
  at::Tensor x = at::randn({2, 1, 28, 28});
  EXPECT_TRUE(at::equal(run1(g, x), run1(loaded, x)));
  // A missing data file is named in the error.
  std::filesystem::remove(dir + "/ext.onnx.data");
  try {
    import_onnx(dir + "/ext.onnx");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ext.onnx.data"), std::string::npos) << e.what();
  }
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    import_onnx(path);
    FAIL() << "expected an error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(OnnxIo, BadFilesGiveOneLineErrors) {
  std::string dir = test::temp_dir();
  Graph g = build_zoo_model("cnn", small());
  export_onnx(g, dir + "/good.onnx");
  std::string bytes = read_file(dir + "/good.onnx");
  write_file_atomic(dir + "/truncated.onnx", bytes.substr(0, bytes.size() / 2));
  expect_error(dir + "/truncated.onnx", "not an ONNX model");
  write_file_atomic(dir + "/text.onnx", "this is not a model\n");
  expect_error(dir + "/text.onnx", "not an ONNX model");
  write_file_atomic(dir + "/empty.onnx", "");
  expect_error(dir + "/empty.onnx", "empty");
  expect_error(dir + "/missing.onnx", "not found");
  g.opsets[""] = 5;
  ExportOptions unchecked;
  unchecked.check = false;
  export_onnx(g, dir + "/old.onnx", unchecked);
  expect_error(dir + "/old.onnx", "opset 5");
}

TEST(OnnxIo, UnsupportedOpNamesOpNodeAndOpset) {
  GraphBuilder b("custom", 13);
  std::string x = b.input("x", {std::string("N"), int64_t(4)});
  b.output(b.node("FancyActivation", {x}, {}, "my_node"));
  Graph g = b.build();
  try {
    Executor exec(g);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("FancyActivation"), std::string::npos) << msg;
    EXPECT_NE(msg.find("my_node"), std::string::npos) << msg;
    EXPECT_NE(msg.find("opset 13"), std::string::npos) << msg;
  }
}

TEST(OnnxIo, ExportRejectsModelsTheCheckerRejects) {
  GraphBuilder b("bad", 13);
  std::string x = b.input("x", {int64_t(1), int64_t(4)});
  // Relu takes one input: the checker must refuse the file, and nothing is written.
  b.output(b.node("Relu", {x, x}));
  Graph g = b.build();
  std::string dir = test::temp_dir();
  EXPECT_THROW(export_onnx(g, dir + "/bad.onnx"), Error);
  EXPECT_FALSE(file_exists(dir + "/bad.onnx"));
}

TEST(OnnxIo, TopologicalSortOrdersShuffledNodes) {
  Graph g = build_zoo_model("resnet20", small());
  at::Tensor x = at::randn({1, 1, 28, 28});
  at::Tensor want = run1(g, x);
  std::reverse(g.nodes.begin(), g.nodes.end());
  g.topological_sort();
  EXPECT_TRUE(at::equal(run1(g, x), want));
}

}  // namespace
}  // namespace mpq
