// The tiny smooth network the sensitivity tests differentiate: Conv (stride 2) -> Tanh -> Flatten
// -> MatMul -> Tanh -> Gemm on a N x 1 x 4 x 4 input, 27 + 72 + 6 * outputs weights, seeded, so
// that finite differences and brute-force Hessians behave.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <string>

#include "onnx/builder.h"

namespace mpq::test {

// Adds the network to `b` on a new input "x"; returns the Gemm's output value.
inline std::string tiny_smooth_net(GraphBuilder& b, int64_t outputs, at::ScalarType type) {
  at::Generator gen = at::detail::createCPUGenerator(11);
  auto randn = [&](at::IntArrayRef shape, double std) {
    return at::normal(0.0, std, shape, gen).to(type);
  };
  std::string x = b.input("x", {"N", 1, 4, 4}, type == at::kDouble ? 11 : 1);
  std::string h = b.node("Conv",
                         {x, b.weight("conv.weight", randn({3, 1, 3, 3}, 0.6)),
                          b.weight("conv.bias", randn({3}, 0.1))},
                         {{"kernel_shape", attr(std::vector<int64_t>{3, 3})},
                          {"pads", attr(std::vector<int64_t>{1, 1, 1, 1})},
                          {"strides", attr(std::vector<int64_t>{2, 2})}},
                         "conv");
  h = b.node("Flatten", {b.node("Tanh", {h})}, {{"axis", attr(int64_t(1))}});
  h = b.node("Tanh", {b.node("MatMul", {h, b.weight("mm.weight", randn({12, 6}, 0.5))}, {}, "mm")});
  return b.node("Gemm",
                {h, b.weight("fc.weight", randn({outputs, 6}, 0.7)),
                 b.weight("fc.bias", randn({outputs}, 0.1))},
                {{"transB", attr(int64_t(1))}}, "fc");
}

}  // namespace mpq::test
