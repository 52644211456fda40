// The model zoo: architectures mpq builds itself as ONNX graphs with initialised weights, for
// the tests, the benchmarks and the built-in default model. Input N x C x H x W (default
// 1 x 28 x 28, Fashion-MNIST), 10 classes, batch (and optionally height/width) symbolic.
// Classifiers (class scores N x classes): resnet20, mobilenetv2, cnn, vit. Outputs that are not
// class scores, for the label-free paths (sensitivity/output_kind.h):
//   detector  a dense detection map N x 3*(5+classes) x H/4 x W/4 (raw scores);
//   seqnet    per-step class probabilities N x ceil(W/2) x classes (Softmax over classes);
//   embednet  an L2-normalised embedding N x 32.
// Each model states its output kind in the metadata "mpq.output" (scores, map, sequence,
// embedding).
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
  double width_mult = 1.0;            // channel multiplier
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
