#include "quant/plan.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "onnx/layers.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

Graph model() {
  ZooOptions o;
  o.depth = 1;
  o.width_mult = 0.5;
  Graph g = build_zoo_model("resnet20", o);
  g.source = "tiny.onnx";
  return g;
}

TEST(Plan, UniformCoversEveryLayer) {
  Graph g = model();
  Plan p = uniform_plan(g, 4, 8);
  EXPECT_EQ(p.layers.size(), find_quantizable_layers(g).size());
  for (const auto& l : p.layers) {
    EXPECT_EQ(l.weight.bits, 4);
    EXPECT_EQ(l.weight.scheme, "sym-channel");
    EXPECT_EQ(l.act.bits, 8);
    EXPECT_EQ(l.act.scheme, "affine-tensor");
  }
  EXPECT_NO_THROW(check_plan(p, g, "p"));
}

TEST(Plan, SaveLoadKeepsEveryField) {
  Graph g = model();
  Plan p = uniform_plan(g, 4, 8);
  p.layers[0].weight = {3, "sym-group", 16};
  p.layers[1].act.bits = 32;
  p.layers[2].extra_points = 0.25;
  p.layers[0].extra["omega"] = 0.125;
  p.layers[0].extra["reason"] = "binding budget size";
  p.extra["totals"] = {{"size_bytes", 1234}};
  std::string path = test::temp_dir() + "/plan.json";
  save_plan(path, p);
  Plan q = load_plan(path);
  ASSERT_EQ(q.layers.size(), p.layers.size());
  EXPECT_EQ(q.layers[0].weight.bits, 3);
  EXPECT_EQ(q.layers[0].weight.scheme, "sym-group");
  EXPECT_EQ(q.layers[0].weight.group_size, 16);
  EXPECT_EQ(q.layers[1].act.bits, 32);
  EXPECT_FALSE(q.layers[1].act.quantized());
  EXPECT_EQ(q.layers[2].extra_points, 0.25);
  EXPECT_EQ(q.layers[0].extra.at("omega").get<double>(), 0.125);
  EXPECT_EQ(q.layers[0].extra.at("reason").get<std::string>(), "binding budget size");
  EXPECT_EQ(q.extra.at("totals").at("size_bytes").get<int>(), 1234);
  EXPECT_EQ(to_json(q).dump(), to_json(p).dump());
}

std::string error_of(const std::string& text) {
  std::string path = test::temp_dir() + "/bad.json";
  write_file_atomic(path, text);
  try {
    Plan p = load_plan(path);
    check_plan(p, model(), path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Plan, BadPlansGiveOneLineErrors) {
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{}").find("expected a 'layers' array"), std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"conv1","weight_bits":12}]})")
                .find("layer 'conv1': weight: bits: expected 2-8, 16 or 32 (float), found 12"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"fc9","weight_bits":4}]})")
                .find("layer 'fc9': the model (tiny.onnx) has no quantizable layer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"conv1"},{"name":"conv1"}]})").find("appears twice"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"conv1","weight_bits":"four"}]})")
                .find("field 'weight_bits': expected a number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"conv1","act_scheme":"affine-channel"}]})")
                .find("expected a per-tensor scheme"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers":[{"name":"conv1","weight_scheme":"nf4"}]})")
                .find("quantizer scheme 'nf4': expected one of"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"layers":[{"name":"conv1","weight_bits":2,"act_bits":16}]})"), "");
}

}  // namespace
}  // namespace mpq
