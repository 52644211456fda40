// The Graph IR every module shares: nodes in topological order, named values, weights as ATen
// tensors. It mirrors ONNX closely (same names, same attributes) so that import and export are
// lossless for what mpq supports. Constant nodes holding tensors are folded into initializers on
// import, so weights look the same whether a model stores them as initializers (PyTorch,
// tf2onnx), as Constant nodes (paddle2onnx) or in external data files.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mpq {

enum class AttrType {
  kUndefined,
  kFloat,
  kInt,
  kString,
  kTensor,
  kGraph,
  kFloats,
  kInts,
  kStrings
};

struct Attribute {
  AttrType type = AttrType::kUndefined;
  double f = 0;
  int64_t i = 0;
  std::string s;
  at::Tensor t;
  std::vector<double> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string name;                  // unique after import (empty names get "<op>_<index>")
  std::string op_type;               // "Conv"
  std::string domain;                // "" for the default ai.onnx domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attribute> attrs;
};

// One dimension of a declared shape: a fixed size (value >= 0), or symbolic (param, e.g. "N"), or
// unknown (value < 0 and no param).
struct Dim {
  int64_t value = -1;
  std::string param;
  bool fixed() const { return value >= 0; }
};

struct ValueInfo {
  std::string name;
  bool is_tensor = true;  // false for sequence, map or optional types (not supported)
  int32_t elem_type = 0;  // ONNX TensorProto.DataType; 0 = not declared
  bool has_shape = false;
  std::vector<Dim> shape;
};

class Graph {
 public:
  std::string name;
  std::string source;  // where it was loaded from; used in error messages
  int64_t ir_version = 8;
  std::string producer_name;
  std::string producer_version;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::map<std::string, std::string> metadata;

  std::vector<Node> nodes;                         // topological order
  std::map<std::string, at::Tensor> initializers;  // weights, folded Constant outputs included
  // Stored element types of initializers ATen has no type for: INT4 / UINT4 (opset 21), held
  // unpacked as int8 / uint8 and packed again on export.
  std::map<std::string, int32_t> initializer_types;
  std::vector<ValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_infos;  // intermediate shapes the file declared (kept for export)

  // The ai.onnx opset the model imports.
  int64_t opset() const;

  // Reorders nodes so every node follows the producers of its inputs; throws naming a node whose
  // input nobody produces, or a cycle.
  void topological_sort();

  // Index of the node producing `value`, or -1 (graph input, initializer or unknown).
  int64_t producer(const std::string& value) const;
  // Indices of the nodes reading `value`, in order.
  std::vector<int64_t> consumers(const std::string& value) const;
  int64_t find_node(const std::string& node_name) const;
  bool is_initializer(const std::string& value) const { return initializers.count(value) > 0; }
  bool is_graph_output(const std::string& value) const;

  // A label for errors: "model.onnx: node 'conv1' (Conv)".
  std::string where(const Node& node) const;

  // Converts every floating-point initializer to `dtype` (for float64 gradient checks).
  void cast_float_weights(at::ScalarType dtype);
};

}  // namespace mpq
