// The model zoo: architectures mpq builds itself as ONNX graphs with initialised weights, for
// the tests, the benchmarks and the built-in default model. Input N x C x H x W (default
// 1 x 28 x 28, Fashion-MNIST), 10 classes, batch (and optionally height/width) symbolic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

struct ZooOptions {
  int64_t opset = 17;
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  int64_t classes = 10;
  double width_mult = 1.0;            // channel multiplier (mobilenetv2, cnn, resnet20)
  int64_t depth = 3;                  // resnet20: blocks per stage (3 -> ResNet-20)
  bool hardswish = false;             // mobilenetv2: HardSwish instead of ReLU6
  bool weights_as_constants = false;  // paddle2onnx style
  bool dynamic_hw = false;            // declare H and W symbolic
  bool random_bn = false;             // non-trivial BN statistics (tests of untrained models)
  uint64_t seed = 0;
};

// Names accepted by build_zoo_model.
std::vector<std::string> zoo_names();

// Example: Graph g = build_zoo_model("resnet20", {});
Graph build_zoo_model(const std::string& arch, const ZooOptions& options);

}  // namespace mpq
