#include "support/third_party.h"

#include <ATen/ATen.h>

#include "onnx/builder.h"

namespace mpq::test {

Graph tf2onnx_style_cnn(int64_t opset, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto randn = [&](at::IntArrayRef shape, double std) { return at::normal(0.0, std, shape, gen); };
  auto i64 = [](std::vector<int64_t> v) { return at::tensor(v, at::kLong); };
  GraphBuilder b("tf2onnx_cnn", opset);
  std::string x = b.input("input:0", {std::string("unk__0"), int64_t(28), int64_t(28), int64_t(1)});
  x = b.node("Transpose", {x}, {{"perm", attr(std::vector<int64_t>{0, 3, 1, 2})}});
  // tf.pad then a VALID conv, as tf2onnx writes explicit paddings.
  std::vector<int64_t> pads = {0, 0, 1, 1, 0, 0, 1, 1};
  if (opset >= 11)
    x = b.node("Pad", {x, b.constant("pads", i64(pads))}, {{"mode", attr("constant")}});
  else
    x = b.node("Pad", {x}, {{"pads", attr(pads)}, {"mode", attr("constant")}});
  x = b.node("Conv",
             {x, b.weight("conv1/kernel", randn({8, 1, 3, 3}, 0.4)),
              b.weight("conv1/bias", randn({8}, 0.1))},
             {{"kernel_shape", attr(std::vector<int64_t>{3, 3})}});
  x = b.node("Relu", {x});
  x = b.node("Conv",
             {x, b.weight("conv2/kernel", randn({16, 8, 3, 3}, 0.2)),
              b.weight("conv2/bias", randn({16}, 0.1))},
             {{"kernel_shape", attr(std::vector<int64_t>{3, 3})},
              {"strides", attr(std::vector<int64_t>{2, 2})},
              {"auto_pad", attr("SAME_UPPER")}});
  x = b.node("Relu", {x});
  x = b.node("MaxPool", {x},
             {{"kernel_shape", attr(std::vector<int64_t>{2, 2})},
              {"strides", attr(std::vector<int64_t>{2, 2})},
              {"auto_pad", attr("VALID")}});
  x = b.node("Transpose", {x}, {{"perm", attr(std::vector<int64_t>{0, 2, 3, 1})}});
  x = b.node("Reshape", {x, b.constant("flat_shape", i64({-1, 7 * 7 * 16}))});
  x = b.node("MatMul", {x, b.weight("dense/kernel", randn({7 * 7 * 16, 10}, 0.05))});
  x = b.node("Add", {x, b.weight("dense/bias", randn({10}, 0.1))});
  std::string out = b.node("Softmax", {x}, {{"axis", attr(int64_t(1))}}, "Identity:0");
  b.output(out, {std::string("unk__1"), int64_t(10)});
  return b.build();
}

}  // namespace mpq::test
