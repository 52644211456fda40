// Small models and data the unit tests share: random images held in memory and tiny zoo models.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "data/dataset.h"
#include "onnx/graph.h"

namespace mpq::test {

// Samples held in memory: x [N, ...]; y [N] int64, or undefined for unlabelled data.
class TensorDataset : public Dataset {
 public:
  TensorDataset(at::Tensor x, at::Tensor y, int64_t classes);
  int64_t size() const override;
  std::vector<int64_t> sample_shape() const override;
  bool has_labels() const override { return y_.defined(); }
  int64_t num_classes() const override { return y_.defined() ? classes_ : 0; }
  Batch read(const std::vector<int64_t>& indices) const override;
  std::string describe() const override { return "random tensors"; }

 private:
  at::Tensor x_, y_;
  int64_t classes_;
};

// n images [n, 1, size, size] from N(0, 1) and labels in [0, classes) (none when classes is 0),
// drawn from a generator seeded with `seed`.
std::unique_ptr<Dataset> random_images(int64_t n, int64_t size, uint64_t seed = 3,
                                       int64_t classes = 10,
                                       at::ScalarType type = at::ScalarType::Float);

// A zoo architecture for size x size images, one block per stage, random BatchNorm statistics;
// its source is the architecture's name.
Graph tiny_zoo(const std::string& arch, int64_t size, double width_mult = 0.5, uint64_t seed = 0,
               int64_t opset = 17);

}  // namespace mpq::test
