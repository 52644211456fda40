#include "support/test_data.h"

#include <ATen/ATen.h>

#include "pipeline/zoo.h"

namespace mpq::test {

TensorDataset::TensorDataset(at::Tensor x, at::Tensor y, int64_t classes)
    : x_(std::move(x)), y_(std::move(y)), classes_(classes) {}

int64_t TensorDataset::size() const { return x_.size(0); }

std::vector<int64_t> TensorDataset::sample_shape() const { return x_.sizes().slice(1).vec(); }

Batch TensorDataset::read(const std::vector<int64_t>& indices) const {
  at::Tensor i = at::tensor(indices, at::kLong);
  return {x_.index_select(0, i), y_.defined() ? y_.index_select(0, i) : at::Tensor()};
}

std::unique_ptr<Dataset> random_images(int64_t n, int64_t size, uint64_t seed, int64_t classes,
                                       at::ScalarType type) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor x = at::normal(0.0, 1.0, {n, 1, size, size}, gen).to(type);
  at::Tensor y = classes > 0 ? at::randint(0, classes, {n}, gen, at::kLong) : at::Tensor();
  return std::make_unique<TensorDataset>(x, y, classes);
}

Graph tiny_zoo(const std::string& arch, int64_t size, double width_mult, uint64_t seed,
               int64_t opset) {
  ZooOptions o;
  o.opset = opset;
  o.height = o.width = size;
  o.width_mult = width_mult;
  o.depth = 1;
  o.random_bn = true;
  o.seed = seed;
  Graph g = build_zoo_model(arch, o);
  g.source = arch;
  return g;
}

}  // namespace mpq::test
