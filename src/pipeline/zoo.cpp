#include "pipeline/zoo.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"
#include "onnx/builder.h"

namespace mpq {
namespace {

// Layer helpers on top of GraphBuilder, with He-normal conv/linear init from one generator.
class Net {
 public:
  Net(const std::string& name, const ZooOptions& o) : b(name, o.opset), opt(o) {
    gen = at::detail::createCPUGenerator(o.seed);
    b.set_weights_as_constants(o.weights_as_constants);
  }

  at::Tensor randn(at::IntArrayRef shape, double std) { return at::normal(0.0, std, shape, gen); }

  std::string conv(const std::string& x, int64_t cin, int64_t cout, int64_t k, int64_t stride,
                   int64_t groups, bool bias, const std::string& name, int64_t pad = -1) {
    double fan_in = double(cin / groups * k * k);
    std::string w =
        b.weight(name + ".weight", randn({cout, cin / groups, k, k}, std::sqrt(2.0 / fan_in)));
    std::vector<std::string> ins = {x, w};
    if (bias) ins.push_back(b.weight(name + ".bias", at::zeros({cout})));
    int64_t p = pad >= 0 ? pad : k / 2;
    Attrs a = {{"kernel_shape", attr(std::vector<int64_t>{k, k})},
               {"strides", attr(std::vector<int64_t>{stride, stride})},
               {"pads", attr(std::vector<int64_t>{p, p, p, p})},
               {"dilations", attr(std::vector<int64_t>{1, 1})},
               {"group", attr(groups)}};
    return b.node("Conv", ins, a, name);
  }

  std::string bn(const std::string& x, int64_t c, const std::string& name) {
    at::Tensor scale = at::ones({c}), bias = at::zeros({c}), mean = at::zeros({c}),
               var = at::ones({c});
    if (opt.random_bn) {
      scale = 1.0 + 0.2 * randn({c}, 1.0);
      bias = 0.1 * randn({c}, 1.0);
      mean = 0.1 * randn({c}, 1.0);
      var = 0.5 + at::rand({c}, gen);
    }
    std::vector<std::string> ins = {
        x, b.weight(name + ".weight", scale), b.weight(name + ".bias", bias),
        b.weight(name + ".running_mean", mean), b.weight(name + ".running_var", var)};
    Attrs a = {{"epsilon", attr(1e-5)}};
    if (b.opset() < 9) a["spatial"] = attr(int64_t(1));
    return b.node("BatchNormalization", ins, a, name);
  }

  std::string relu(const std::string& x) { return b.node("Relu", {x}); }

  std::string relu6(const std::string& x) {
    if (b.opset() < 11) return b.node("Clip", {x}, {{"min", attr(0.0)}, {"max", attr(6.0)}});
    return b.node("Clip", {x, b.constant("zero", at::scalar_tensor(0.0f)),
                           b.constant("six", at::scalar_tensor(6.0f))});
  }

  std::string linear(const std::string& x, int64_t in, int64_t out, const std::string& name) {
    std::string w = b.weight(name + ".weight", randn({out, in}, std::sqrt(1.0 / double(in))));
    std::string bias = b.weight(name + ".bias", at::zeros({out}));
    return b.node("Gemm", {x, w, bias}, {{"transB", attr(int64_t(1))}}, name);
  }

  // Global average pool, flatten, classifier.
  std::string head(const std::string& x, int64_t c) {
    std::string p = b.node("GlobalAveragePool", {x});
    std::string f = b.node("Flatten", {p}, {{"axis", attr(int64_t(1))}});
    return linear(f, c, opt.classes, "fc");
  }

  std::string input() {
    std::vector<DimSpec> shape = {std::string("N"), opt.channels};
    if (opt.dynamic_hw) {
      shape.push_back(std::string("H"));
      shape.push_back(std::string("W"));
    } else {
      shape.push_back(opt.height);
      shape.push_back(opt.width);
    }
    return b.input("input", shape);
  }

  // The model's one output, named `name`, with its declared shape and what it is (metadata
  // "mpq.output", sensitivity/output_kind.h).
  Graph finish(const std::string& value, const std::string& arch,
               const std::vector<DimSpec>& shape = {}, const char* kind = "scores",
               const std::string& name = "logits") {
    std::string out = b.node("Identity", {value}, {}, name);
    b.output(out, shape.empty() ? std::vector<DimSpec>{std::string("N"), opt.classes} : shape);
    b.set_metadata("mpq.arch", arch);
    b.set_metadata("mpq.output", kind);
    return b.build();
  }

  // A spatial size after `strides` (padded 3x3 convolutions), symbolic when H and W are.
  DimSpec spatial(int64_t size, const std::string& symbol, int64_t stride) const {
    if (opt.dynamic_hw) return symbol;
    return (size + stride - 1) / stride;
  }

  // ReduceMean / ReduceSumSquare over `axes`: an attribute before opset 18, an input from it.
  std::string reduce(const std::string& op, const std::string& x, std::vector<int64_t> axes,
                     bool keepdims) {
    Attrs a = {{"keepdims", attr(int64_t(keepdims))}};
    if (b.opset() >= 18) return b.node(op, {x, b.constant("axes", at::tensor(axes, at::kLong))}, a);
    a["axes"] = attr(axes);
    return b.node(op, {x}, a);
  }

  int64_t ch(int64_t c) const {
    return std::max<int64_t>(4, int64_t(std::lround(double(c) * opt.width_mult)));
  }

  GraphBuilder b;
  ZooOptions opt;
  at::Generator gen;
};

Graph resnet20(const ZooOptions& o) {
  Net n("resnet20", o);
  std::string x = n.relu(
      n.bn(n.conv(n.input(), o.channels, n.ch(16), 3, 1, 1, false, "conv1"), n.ch(16), "bn1"));
  int64_t cin = n.ch(16);
  const int64_t widths[3] = {n.ch(16), n.ch(32), n.ch(64)};
  for (int s = 0; s < 3; ++s) {
    for (int64_t blk = 0; blk < o.depth; ++blk) {
      int64_t stride = (s > 0 && blk == 0) ? 2 : 1;
      int64_t cout = widths[s];
      std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(blk);
      std::string y =
          n.relu(n.bn(n.conv(x, cin, cout, 3, stride, 1, false, p + ".conv1"), cout, p + ".bn1"));
      y = n.bn(n.conv(y, cout, cout, 3, 1, 1, false, p + ".conv2"), cout, p + ".bn2");
      std::string shortcut = x;
      if (stride != 1 || cin != cout)
        shortcut = n.bn(n.conv(x, cin, cout, 1, stride, 1, false, p + ".downsample.0"), cout,
                        p + ".downsample.1");
      x = n.relu(n.b.node("Add", {y, shortcut}));
      cin = cout;
    }
  }
  return n.finish(n.head(x, cin), "resnet20");
}

Graph mobilenetv2(const ZooOptions& o) {
  Net n("mobilenetv2", o);
  auto act = [&](const std::string& v) {
    return o.hardswish ? n.b.node("HardSwish", {v}) : n.relu6(v);
  };
  MPQ_CHECK(!o.hardswish || o.opset >= 14, "mobilenetv2: HardSwish needs opset >= 14, found ",
            o.opset);
  int64_t c = n.ch(16);
  std::string x =
      act(n.bn(n.conv(n.input(), o.channels, c, 3, 1, 1, false, "features.0"), c, "features.0.bn"));
  // (expansion t, channels c, repeats, stride s), scaled to 28x28 inputs: 28 -> 14 -> 7 -> 4.
  const int64_t cfg[][4] = {
      {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 2, 2}, {6, 96, 2, 1}};
  int idx = 1;
  for (const auto& row : cfg) {
    for (int64_t r = 0; r < row[2]; ++r, ++idx) {
      int64_t stride = r == 0 ? row[3] : 1, cout = n.ch(row[1]), hidden = c * row[0];
      std::string p = "features." + std::to_string(idx);
      std::string y = x;
      if (row[0] != 1)
        y = act(
            n.bn(n.conv(y, c, hidden, 1, 1, 1, false, p + ".expand"), hidden, p + ".expand_bn"));
      y = act(n.bn(n.conv(y, hidden, hidden, 3, stride, hidden, false, p + ".dw"), hidden,
                   p + ".dw_bn"));
      y = n.bn(n.conv(y, hidden, cout, 1, 1, 1, false, p + ".project"), cout, p + ".project_bn");
      x = (stride == 1 && c == cout) ? n.b.node("Add", {x, y}) : y;
      c = cout;
    }
  }
  int64_t last = n.ch(320);
  x = act(n.bn(n.conv(x, c, last, 1, 1, 1, false, "features.last"), last, "features.last.bn"));
  return n.finish(n.head(x, last), "mobilenetv2");
}

Graph cnn(const ZooOptions& o) {
  Net n("cnn", o);
  std::string x = n.input();
  int64_t cin = o.channels;
  const int64_t widths[] = {32, 32, 0, 64, 64, 0, 128, 0};  // 0 = 2x2 max pool
  int i = 0;
  for (int64_t w : widths) {
    if (w == 0) {
      x = n.b.node("MaxPool", {x},
                   {{"kernel_shape", attr(std::vector<int64_t>{2, 2})},
                    {"strides", attr(std::vector<int64_t>{2, 2})}});
      continue;
    }
    std::string p = "features." + std::to_string(i++);
    int64_t c = n.ch(w);
    x = n.relu(n.bn(n.conv(x, cin, c, 3, 1, 1, false, p + ".conv"), c, p + ".bn"));
    cin = c;
  }
  std::string f =
      n.b.node("Flatten", {n.b.node("GlobalAveragePool", {x})}, {{"axis", attr(int64_t(1))}});
  std::string h = n.relu(n.linear(f, cin, n.ch(128), "classifier.0"));
  return n.finish(n.linear(h, n.ch(128), o.classes, "classifier.1"), "cnn");
}

// A small vision transformer: 4x4 patch embedding, 4 pre-norm encoder blocks with multi-head
// attention (MatMul + Softmax) and a Gelu MLP, mean pooling over tokens.
Graph vit(const ZooOptions& o) {
  MPQ_CHECK(o.opset >= 17, "vit: LayerNormalization needs opset >= 17, found ", o.opset);
  MPQ_CHECK(!o.dynamic_hw, "vit: the token count is fixed by the input size");
  Net n("vit", o);
  const int64_t d = n.ch(64), heads = 4, dh = d / heads, patch = 4, blocks = 4;
  const int64_t tokens = (o.height / patch) * (o.width / patch);
  GraphBuilder& b = n.b;
  auto i64 = [](std::vector<int64_t> v) { return at::tensor(v, at::kLong); };
  auto matmul = [&](const std::string& x, int64_t in, int64_t out, const std::string& name) {
    std::string w = b.weight(name + ".weight", n.randn({in, out}, std::sqrt(1.0 / double(in))));
    std::string bias = b.weight(name + ".bias", at::zeros({out}));
    return b.node("Add", {b.node("MatMul", {x, w}, {}, name), bias});
  };
  auto layer_norm = [&](const std::string& x, const std::string& name) {
    return b.node(
        "LayerNormalization",
        {x, b.weight(name + ".weight", at::ones({d})), b.weight(name + ".bias", at::zeros({d}))},
        {{"axis", attr(int64_t(-1))}, {"epsilon", attr(1e-5)}}, name);
  };
  auto gelu = [&](const std::string& x) {
    if (o.opset >= 20) return b.node("Gelu", {x});
    // x * 0.5 * (1 + erf(x / sqrt(2))), the form PyTorch exports below opset 20.
    std::string e = b.node(
        "Erf", {b.node("Div", {x, b.constant("sqrt2", at::scalar_tensor(float(std::sqrt(2.0))))})});
    std::string one_plus = b.node("Add", {e, b.constant("one", at::scalar_tensor(1.0f))});
    return b.node("Mul",
                  {b.node("Mul", {x, one_plus}), b.constant("half", at::scalar_tensor(0.5f))});
  };
  std::string x = n.conv(n.input(), o.channels, d, patch, patch, 1, true, "patch_embed", 0);
  x = b.node("Reshape", {x, b.constant("tokens_shape", i64({0, d, -1}))});
  x = b.node("Transpose", {x}, {{"perm", attr(std::vector<int64_t>{0, 2, 1})}});
  x = b.node("Add", {x, b.weight("pos_embed", n.randn({1, tokens, d}, 0.02))});
  const std::string heads_shape = b.constant("heads_shape", i64({0, tokens, heads, dh}));
  const std::string merge_shape = b.constant("merge_shape", i64({0, tokens, d}));
  const std::string scale =
      b.constant("attn_scale", at::scalar_tensor(float(1.0 / std::sqrt(double(dh)))));
  for (int64_t blk = 0; blk < blocks; ++blk) {
    std::string p = "blocks." + std::to_string(blk);
    std::string h = layer_norm(x, p + ".norm1");
    auto split_heads = [&](const std::string& v, std::vector<int64_t> perm) {
      return b.node("Transpose", {b.node("Reshape", {v, heads_shape})}, {{"perm", attr(perm)}});
    };
    std::string q = split_heads(matmul(h, d, d, p + ".attn.q"), {0, 2, 1, 3});
    std::string k = split_heads(matmul(h, d, d, p + ".attn.k"), {0, 2, 3, 1});
    std::string v = split_heads(matmul(h, d, d, p + ".attn.v"), {0, 2, 1, 3});
    std::string att = b.node("Softmax", {b.node("Mul", {b.node("MatMul", {q, k}), scale})},
                             {{"axis", attr(int64_t(-1))}});
    std::string ctx = b.node("MatMul", {att, v});
    ctx = b.node("Reshape",
                 {b.node("Transpose", {ctx}, {{"perm", attr(std::vector<int64_t>{0, 2, 1, 3})}}),
                  merge_shape});
    x = b.node("Add", {x, matmul(ctx, d, d, p + ".attn.proj")});
    h = layer_norm(x, p + ".norm2");
    h = matmul(gelu(matmul(h, d, 2 * d, p + ".mlp.fc1")), 2 * d, d, p + ".mlp.fc2");
    x = b.node("Add", {x, h});
  }
  x = layer_norm(x, "norm");
  std::string pooled;
  if (o.opset >= 18)
    pooled = b.node("ReduceMean", {x, b.constant("token_axis", i64({1}))},
                    {{"keepdims", attr(int64_t(0))}});
  else
    pooled = b.node("ReduceMean", {x},
                    {{"axes", attr(std::vector<int64_t>{1})}, {"keepdims", attr(int64_t(0))}});
  return n.finish(n.linear(pooled, d, o.classes, "head"), "vit");
}

// conv 3x3 + BatchNormalization + Relu, the blocks of the three models below.
std::string conv_bn_relu(Net& n, const std::string& x, int64_t cin, int64_t cout, int64_t stride,
                         const std::string& name) {
  return n.relu(
      n.bn(n.conv(x, cin, cout, 3, stride, 1, false, name + ".conv"), cout, name + ".bn"));
}

// A dense detection map: a stride-4 backbone and a 1x1 head giving, per position of the H/4 x W/4
// grid, A anchors x (4 box terms, 1 objectness, `classes` class scores), raw (no softmax).
Graph detector(const ZooOptions& o) {
  Net n("detector", o);
  const int64_t anchors = 3, c1 = n.ch(16), c2 = n.ch(32);
  std::string x = conv_bn_relu(n, n.input(), o.channels, c1, 1, "backbone.0");
  x = conv_bn_relu(n, x, c1, c2, 2, "backbone.1");
  x = conv_bn_relu(n, x, c2, c2, 2, "backbone.2");
  x = conv_bn_relu(n, x, c2, c2, 1, "backbone.3");
  const int64_t out = anchors * (5 + o.classes);
  x = n.conv(x, c2, out, 1, 1, 1, true, "head");
  return n.finish(
      x, "detector",
      {std::string("N"), out, n.spatial(o.height, "H/4", 4), n.spatial(o.width, "W/4", 4)}, "map",
      "detections");
}

// A sequence recogniser (text-line style): convolutions, the height averaged away so that the
// W/2 columns become time steps, a per-step linear layer (MatMul) to `classes` and a Softmax
// over classes: N x T x classes per-step probabilities, T = ceil(W / 2).
Graph seqnet(const ZooOptions& o) {
  Net n("seqnet", o);
  const int64_t c1 = n.ch(16), c2 = n.ch(32);
  std::string x = conv_bn_relu(n, n.input(), o.channels, c1, 1, "features.0");
  x = conv_bn_relu(n, x, c1, c2, 2, "features.1");
  x = conv_bn_relu(n, x, c2, c2, 1, "features.2");
  x = n.reduce("ReduceMean", x, {2}, false);                                        // N x C x T
  x = n.b.node("Transpose", {x}, {{"perm", attr(std::vector<int64_t>{0, 2, 1})}});  // N x T x C
  std::string w =
      n.b.weight("classifier.weight", n.randn({c2, o.classes}, std::sqrt(1.0 / double(c2))));
  x = n.b.node("MatMul", {x, w}, {}, "classifier");
  x = n.b.node("Add", {x, n.b.weight("classifier.bias", at::zeros({o.classes}))});
  x = n.b.node("Softmax", {x}, {{"axis", attr(int64_t(-1))}});
  return n.finish(x, "seqnet", {std::string("N"), n.spatial(o.width, "T", 2), o.classes},
                  "sequence", "probabilities");
}

// An embedding network: convolutions, global average pooling, a Gemm to 32 dimensions and L2
// normalisation as x / sqrt(sum x^2 + 1e-12) (ReduceSumSquare, Sqrt, Div: LpNormalization is
// not in the executor, and the epsilon keeps the gradient finite at 0).
Graph embednet(const ZooOptions& o) {
  Net n("embednet", o);
  const int64_t c1 = n.ch(16), c2 = n.ch(32), c3 = n.ch(64), dim = 32;
  std::string x = conv_bn_relu(n, n.input(), o.channels, c1, 1, "features.0");
  x = conv_bn_relu(n, x, c1, c2, 2, "features.1");
  x = conv_bn_relu(n, x, c2, c3, 2, "features.2");
  x = n.b.node("Flatten", {n.b.node("GlobalAveragePool", {x})}, {{"axis", attr(int64_t(1))}});
  x = n.linear(x, c3, dim, "embed");
  std::string sq = n.reduce("ReduceSumSquare", x, {1}, true);
  std::string norm =
      n.b.node("Sqrt", {n.b.node("Add", {sq, n.b.constant("eps", at::scalar_tensor(1e-12f))})});
  x = n.b.node("Div", {x, norm});
  return n.finish(x, "embednet", {std::string("N"), dim}, "embedding", "embedding");
}

struct ZooRow {
  const char* name;
  Graph (*build)(const ZooOptions&);
};
constexpr ZooRow kZoo[] = {{"resnet20", resnet20}, {"mobilenetv2", mobilenetv2}, {"cnn", cnn},
                           {"vit", vit},           {"detector", detector},       {"seqnet", seqnet},
                           {"embednet", embednet}};

}  // namespace

std::vector<std::string> zoo_names() {
  std::vector<std::string> names;
  for (const auto& row : kZoo) names.push_back(row.name);
  return names;
}

Graph build_zoo_model(const std::string& arch, const ZooOptions& options) {
  for (const auto& row : kZoo)
    if (arch == row.name) return row.build(options);
  std::string known;
  for (const auto& row : kZoo) known += std::string(known.empty() ? "" : ", ") + row.name;
  MPQ_FAIL("--arch: unknown architecture '", arch, "' (expected one of ", known, ")");
}

}  // namespace mpq
