// `mpq inspect`: what a model contains and what mpq can quantize. Per quantizable layer: op,
// weight shape, parameters and multiply-accumulates per sample at a given or inferred input
// shape (measured by running the model once on zeros, so dynamic shapes resolve as they would).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

struct LayerSummary {
  std::string name, op, weight;
  std::vector<int64_t> weight_shape, input_shape, output_shape;  // as run (batch 1 unless given)
  int64_t params = 0;                                            // weight (+ bias) elements
  int64_t weight_elems = 0, bias_elems = 0;
  int64_t out_channels = 0;  // output channels (scales of a per-channel weight scheme)
  int64_t macs = 0;          // multiply-accumulates for one sample
  int64_t input_elems = 0;   // elements of the activation the layer reads, per sample
  int64_t output_elems = 0;  // per sample
};

struct ModelSummary {
  std::string source;
  int64_t opset = 0;
  std::vector<std::vector<int64_t>> input_shapes;  // as run (batch 1)
  std::vector<LayerSummary> layers;
  int64_t total_params = 0;        // all initializer elements
  int64_t quantizable_params = 0;  // weights and biases of the layers above
  int64_t total_macs = 0;
  std::map<std::string, int64_t> op_counts;
};

// `input_shapes`: one shape per graph input (without batch or with batch 1); empty = infer from
// the declared shapes (symbolic batch -> 1; other symbolic dimensions need a shape).
ModelSummary inspect_model(const Graph& graph,
                           const std::vector<std::vector<int64_t>>& input_shapes = {});

nlohmann::json to_json(const ModelSummary& summary);
std::string format_table(const ModelSummary& summary);

// Input shapes for running `graph` on one sample: declared shapes with the batch set to 1.
// Throws naming the input and dimension when a non-batch dimension is symbolic.
std::vector<std::vector<int64_t>> infer_input_shapes(const Graph& graph);

// `graph` with the symbolic non-batch dimensions of its one input set to a data sample's shape
// (without batch), so that facts that depend on the input size (MACs) are counted at the size
// the data has. Other graphs are returned as they are. Example:
//   model_facts(with_sample_shape(g, data.sample_shape()));
Graph with_sample_shape(const Graph& graph, const std::vector<int64_t>& sample_shape);

}  // namespace mpq
