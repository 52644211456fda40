// The trained zoo models the benchmarks run on (examples/models/ARCH.onnx) with Fashion-MNIST:
// the training split for calibration and the test split for evaluation, both under the model's
// own preprocessing (its metadata). Needs MPQ_SOURCE_DIR (bench/CMakeLists.txt defines it).
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "onnx/io.h"
#include "pipeline/eval.h"

namespace mpq::bench {

struct ZooData {
  std::string path;
  Graph graph;
  std::unique_ptr<Dataset> train, test;
};

// False, after a line on stderr, when the model file is missing. test_limit: -1 = all.
inline bool open_zoo_data(const std::string& arch, int64_t test_limit, ZooData* out) {
  out->path = std::string(MPQ_SOURCE_DIR) + "/examples/models/" + arch + ".onnx";
  if (!std::filesystem::exists(out->path)) {
    std::fprintf(stderr, "skipping %s: %s not found\n", arch.c_str(), out->path.c_str());
    return false;
  }
  out->graph = import_onnx(out->path);
  DataOptions train;
  train.spec = "fashion-mnist:train";
  train.preprocess = model_preprocess(out->graph, train.preprocess);
  out->train = open_dataset(train);
  DataOptions test = train;
  test.spec = "fashion-mnist:test";
  test.limit = test_limit;
  out->test = open_dataset(test);
  return true;
}

}  // namespace mpq::bench
