// What an op kernel sees: its node, the model's opset, its input tensors and typed attribute
// access. Every error raised through it names the model file, the node and the op.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/graph.h"

namespace mpq {

class OpContext {
 public:
  OpContext(const Graph& graph, const Node& node, int64_t opset, std::vector<at::Tensor> inputs)
      : graph_(graph), node_(node), opset_(opset), inputs_(std::move(inputs)) {}

  const Node& node() const { return node_; }
  int64_t opset() const { return opset_; }

  // Inputs as the node lists them; an omitted optional input is an undefined tensor.
  int64_t num_inputs() const { return int64_t(inputs_.size()); }
  bool has_input(int64_t i) const { return i < num_inputs() && inputs_[size_t(i)].defined(); }
  const at::Tensor& input(int64_t i) const;
  // Reads a small integer tensor input (shapes, axes, pads) as a vector.
  std::vector<int64_t> input_ints(int64_t i) const;
  std::vector<double> input_doubles(int64_t i) const;
  // True when the kernel may write its result into input i: the executor runs without autograd,
  // nothing reads the value (or any view of it) after this node, and it is neither a graph input
  // nor a weight. Lets activations and residual adds reuse memory in inference.
  // True while the executor trains: BatchNormalization normalises with batch statistics and
  // updates its running statistics in place, Dropout drops.
  bool training() const { return training_; }
  void set_training(bool on) { training_ = on; }
  bool can_overwrite(int64_t i) const { return overwrite_ && has_input(i) && (*overwrite_)(i); }
  void set_overwrite_check(const std::function<bool(int64_t)>* check) { overwrite_ = check; }
  // Number of outputs the node asks for (trailing omitted ones not counted).
  int64_t num_outputs() const { return int64_t(node_.outputs.size()); }

  bool has_attr(const std::string& name) const { return node_.attrs.count(name) > 0; }
  int64_t attr_int(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  double attr_float(const std::string& name, double fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name,
                                 const std::vector<int64_t>& fallback = {}) const;
  std::vector<double> attr_floats(const std::string& name,
                                  const std::vector<double>& fallback = {}) const;
  at::Tensor attr_tensor(const std::string& name) const;

  // "model.onnx: node 'conv1' (Conv)" for messages.
  std::string where() const { return graph_.where(node_); }

  // Throws mpq::Error prefixed with where(). Example: ctx.check(x.dim() == 4, "expected 4-D
  // input");
  template <typename... Args>
  void check(bool cond, const Args&... args) const {
    if (!cond) internal::throw_error(internal::concat(where(), ": ", args...));
  }
  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    internal::throw_error(internal::concat(where(), ": ", args...));
  }

 private:
  const Attribute& attr(const std::string& name, AttrType type) const;
  const Graph& graph_;
  const Node& node_;
  int64_t opset_;
  std::vector<at::Tensor> inputs_;
  const std::function<bool(int64_t)>* overwrite_ = nullptr;
  bool training_ = false;
};

}  // namespace mpq
