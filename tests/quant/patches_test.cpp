// Patch views of quantizable layers (quant/patches.h): a layer's output is its weight rows times
// its input patches, and accumulate_patches' streamed sums equal the sums over the full patch
// matrix for every Conv geometry (strides, dilations, pads, auto_pad, groups, 1-D) and MatMul.
#include "quant/patches.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/layers.h"

namespace mpq {
namespace {

struct Case {
  const char* name;
  std::vector<int64_t> input, weight;
  Attrs attrs;
};

std::vector<Case> cases() {
  auto ints = [](std::vector<int64_t> v) { return attr(v); };
  return {
      {"plain", {3, 4, 9, 11}, {6, 4, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}},
      {"strided",
       {2, 4, 10, 13},
       {5, 4, 3, 2},
       {{"strides", ints({2, 3})}, {"pads", ints({1, 0, 2, 1})}}},
      {"dilated", {2, 3, 12, 12}, {4, 3, 3, 3}, {{"dilations", ints({2, 3})}}},
      {"depthwise",
       {2, 6, 8, 8},
       {6, 1, 3, 3},
       {{"group", attr(int64_t(6))}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}},
      {"grouped", {2, 6, 7, 9}, {4, 3, 1, 1}, {{"group", attr(int64_t(2))}}},
      {"same_lower",
       {2, 3, 9, 10},
       {4, 3, 4, 3},
       {{"auto_pad", attr(std::string("SAME_LOWER"))}, {"strides", ints({2, 2})}}},
      {"one_d", {3, 4, 17}, {5, 4, 3}, {{"strides", ints({2})}, {"pads", ints({1, 2})}}},
  };
}

struct Built {
  Graph graph;
  QuantLayer layer;
  at::Tensor x;
};

Built build(const Case& c) {
  at::manual_seed(3);
  GraphBuilder b(c.name, 13);
  std::vector<DimSpec> dims(c.input.begin(), c.input.end());
  std::string x = b.input("x", dims);
  b.output(b.node("Conv", {x, b.weight("w", at::randn(c.weight))}, c.attrs, "conv"));
  Built out{b.build(), {}, at::randn(c.input)};
  out.layer = find_quantizable_layers(out.graph).at(0);
  return out;
}

TEST(Patches, WeightRowsTimesPatchesAreTheConvOutput) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Built t = build(c);
    at::NoGradGuard no_grad;
    at::Tensor y = Executor(t.graph).run({t.x})[0];       // [N, C, (H,) W]
    at::Tensor p = layer_patches(t.graph, t.layer, t.x);  // [groups, N * L, K]
    int64_t groups = p.size(0), channels = y.size(1);
    at::Tensor w = t.graph.initializers.at("w").reshape({groups, channels / groups, -1});
    at::Tensor out = at::bmm(p, w.transpose(1, 2));  // [groups, N * L, C / groups]
    at::Tensor want = y.reshape({y.size(0), groups, channels / groups, -1})
                          .permute({1, 0, 3, 2})
                          .reshape(out.sizes());
    EXPECT_TRUE(at::allclose(out, want, 1e-4, 1e-4));
  }
}

void expect_sums_match(const Graph& g, const QuantLayer& l, const at::Tensor& x) {
  at::Tensor p = layer_patches(g, l, x).to(at::kDouble);
  for (int64_t gram_rows : {-1, 0, 7, 1000000}) {
    PatchSums s;
    PatchRequest want{true, true, gram_rows};
    accumulate_patches(g, l, x, want, &s);
    accumulate_patches(g, l, x, want, &s);  // a second batch adds
    EXPECT_EQ(s.rows, 2 * p.size(1));
    EXPECT_TRUE(at::allclose(s.sum, 2 * p.sum(1), 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(s.square_sum, 2 * p.square().sum(1), 1e-5, 1e-5));
    if (gram_rows < 0) {
      EXPECT_FALSE(s.gram.defined());
      continue;
    }
    at::Tensor kept = subsample_rows(p, gram_rows);
    EXPECT_EQ(s.gram_rows, 2 * kept.size(1)) << gram_rows;
    EXPECT_TRUE(at::allclose(s.gram, 2 * at::bmm(kept.transpose(1, 2), kept), 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(s.gram_sum, 2 * kept.sum(1), 1e-9, 1e-9));
  }
}

TEST(Patches, StreamedSumsEqualThoseOfTheFullPatchMatrix) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Built t = build(c);
    expect_sums_match(t.graph, t.layer, t.x);
  }
  GraphBuilder b("matmul", 13);
  std::string x = b.input("x", {2, 5, 6});
  b.output(b.node("MatMul", {x, b.weight("w", at::randn({6, 4}))}, {}, "mm"));
  Graph g = b.build();
  expect_sums_match(g, find_quantizable_layers(g).at(0), at::randn({2, 5, 6}));
}

}  // namespace
}  // namespace mpq
