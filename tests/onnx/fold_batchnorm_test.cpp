// BatchNormalization folding keeps every output (Conv and grouped ConvTranspose, with and
// without bias) and leaves BNs it must not fold alone.
#include "onnx/passes/fold_batchnorm.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "exec/executor.h"
#include "onnx/builder.h"
#include "pipeline/zoo.h"

namespace mpq {
namespace {

at::Tensor run1(const Graph& g, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  return Executor(g).run({x})[0];
}

int count(const Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}

TEST(FoldBatchnorm, ZooModelsKeepTheirOutputs) {
  for (const std::string arch : {"resnet20", "mobilenetv2", "cnn"}) {
    ZooOptions o;
    o.width_mult = 0.5;
    o.random_bn = true;
    Graph g = build_zoo_model(arch, o);
    int bns = count(g, "BatchNormalization");
    ASSERT_GT(bns, 0);
    Graph f = g;
    EXPECT_EQ(fold_batchnorm(&f), bns) << arch;
    EXPECT_EQ(count(f, "BatchNormalization"), 0) << arch;
    at::Tensor x = at::randn({4, 1, 28, 28});
    at::Tensor want = run1(g, x), got = run1(f, x);
    EXPECT_TRUE(at::allclose(got, want, 1e-4, 1e-4 * want.abs().max().item<double>())) << arch;
  }
}

Graph conv_bn(const std::string& op, bool bias, int64_t group, bool conv_output_used_twice) {
  at::manual_seed(4);
  GraphBuilder b("t", 13);
  std::string x = b.input("x", {std::string("N"), int64_t(4), int64_t(6), int64_t(6)});
  int64_t cout = 6;
  at::Tensor w =
      op == "Conv" ? at::randn({cout, 4 / group, 3, 3}) : at::randn({4, cout / group, 3, 3});
  std::vector<std::string> ins = {x, b.weight("w", w)};
  if (bias) ins.push_back(b.weight("b", at::randn({cout})));
  std::string y =
      b.node(op, ins, {{"group", attr(group)}, {"pads", attr(std::vector<int64_t>{1, 1, 1, 1})}});
  std::string z =
      b.node("BatchNormalization",
             {y, b.weight("g", at::rand({cout}) + 0.5), b.weight("be", at::randn({cout})),
              b.weight("m", at::randn({cout})), b.weight("v", at::rand({cout}) + 0.5)});
  if (conv_output_used_twice) z = b.node("Add", {z, y});
  b.output(z);
  return b.build();
}

TEST(FoldBatchnorm, ConvAndGroupedConvTranspose) {
  for (const std::string op : {"Conv", "ConvTranspose"})
    for (bool bias : {false, true})
      for (int64_t group : {1, 2}) {
        Graph g = conv_bn(op, bias, group, false);
        Graph f = g;
        ASSERT_EQ(fold_batchnorm(&f), 1) << op;
        at::Tensor x = at::randn({2, 4, 6, 6});
        EXPECT_TRUE(at::allclose(run1(f, x), run1(g, x), 1e-4, 1e-5))
            << op << " bias " << bias << " group " << group;
      }
}

TEST(FoldBatchnorm, LeavesSharedConvOutputAlone) {
  Graph g = conv_bn("Conv", true, 1, true);
  EXPECT_EQ(fold_batchnorm(&g), 0);
  EXPECT_EQ(count(g, "BatchNormalization"), 1);
}

}  // namespace
}  // namespace mpq
