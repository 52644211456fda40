// inspect_model's MAC counts against hand counts, on a zoo CNN and on PyTorch's own export of a
// transformer (token-first [T, N, E] layouts), and independent of the batch it runs at.
#include "pipeline/inspect.h"

#include <gtest/gtest.h>

#include "onnx/io.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"

namespace mpq {
namespace {

const LayerSummary& layer(const ModelSummary& s, const std::string& name) {
  for (const auto& l : s.layers)
    if (l.name == name) return l;
  throw std::runtime_error("no layer " + name);
}

TEST(Inspect, TransformerMacsPerSample) {
  Graph g = import_onnx(test::source_path("tests/models/torch_transformer_op17.onnx"));
  ModelSummary one = inspect_model(g);
  // 16 tokens of width 16: the fused q/k/v projection is 16 x 16 x 48, the output one 16 x 16 x 16.
  EXPECT_EQ(layer(one, "/attn/MatMul").macs, 16 * 16 * 48);
  EXPECT_EQ(layer(one, "/attn/Gemm").macs, 16 * 16 * 16);
  EXPECT_EQ(layer(one, "/embed/Conv").macs, 16 * 4 * 4 * 49);
  ModelSummary four = inspect_model(g, {{4, 1, 28, 28}});
  EXPECT_EQ(four.total_macs, one.total_macs);
}

TEST(Inspect, ResNetTotals) {
  ZooOptions o;
  Graph g = build_zoo_model("resnet20", o);
  ModelSummary s = inspect_model(g);
  EXPECT_EQ(s.layers.size(), 22u);  // 19 3x3 convs, 2 downsamples, the classifier
  EXPECT_EQ(layer(s, "conv1").macs, 16 * 28 * 28 * 9);
  EXPECT_EQ(layer(s, "fc").macs, 64 * 10);
  int64_t params = 0;
  for (const auto& l : s.layers) params += l.params;
  EXPECT_EQ(params, s.quantizable_params);
  EXPECT_GT(s.total_params, s.quantizable_params);  // BN parameters are not layers
}

}  // namespace
}  // namespace mpq
