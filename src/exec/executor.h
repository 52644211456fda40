// Runs a Graph on libtorch tensors, eagerly, node by node in topological order. It is
// differentiable: under at::GradMode (the default outside inference guards) gradients flow to the
// inputs and to every initializer that requires grad. Any weight and any node output can be
// replaced by a function of itself (a hook); quantizers are attached this way.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "exec/op_registry.h"
#include "onnx/graph.h"

namespace mpq {

class Executor {
 public:
  // Called with the value's name and tensor; returns the tensor to use instead.
  using Hook = std::function<at::Tensor(const std::string& name, const at::Tensor& value)>;

  // Resolves every node against the op table; throws naming the first unsupported op, its node
  // and the opset. The graph must outlive the executor; its initializers are read at each run, so
  // changes to them (training) take effect on the next run.
  explicit Executor(const Graph& graph, const OpRegistry& ops = OpRegistry::builtin());

  // Example: auto logits = Executor(g).run({images})[0];
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const;
  // Runs with named inputs and returns the named values in `fetch` (graph outputs if empty).
  std::map<std::string, at::Tensor> run_named(const std::map<std::string, at::Tensor>& inputs,
                                              const std::vector<std::string>& fetch = {}) const;

  // Training mode (off by default): BatchNormalization uses batch statistics and updates the
  // graph's running statistics in place (PyTorch's convention: unbiased variance, new-value
  // weight 1 - ONNX momentum); Dropout drops.
  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }

  void set_weight_hook(const std::string& initializer, Hook hook);
  void set_value_hook(const std::string& value, Hook hook);
  void clear_hooks();

  const Graph& graph() const { return graph_; }

  // Per-op-type wall time (seconds) and call counts summed over runs while profiling is on.
  struct OpTime {
    double seconds = 0;
    int64_t calls = 0;
  };
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, OpTime>& profile() const { return profile_; }

  // The bytes of the values one run on `inputs` makes (run without gradients): `peak` the most
  // alive at once (what inference holds, the executor releasing each value after its last
  // reader; with the runtime's allocator count, kernels' own buffers included), `total` every
  // node output (about what a backward pass keeps). Views count as copies.
  // For batch sizes under a memory budget: run it on one sample (batch_within).
  struct Footprint {
    int64_t peak = 0, total = 0;
    std::vector<std::pair<int64_t, std::string>> largest;  // the 5 largest values: bytes, name
  };
  Footprint footprint(const std::vector<at::Tensor>& inputs) const;

  // Checks an input tensor against the graph input's declared type and shape; throws naming the
  // input, the expected and the found shape.
  void check_input(size_t index, const at::Tensor& tensor) const;

 private:
  struct Step {
    const Node* node;
    OpKernel kernel;
    std::vector<int64_t> inputs;   // value ids, -1 for omitted
    std::vector<int64_t> outputs;  // value ids, -1 for omitted
    std::vector<int64_t> release;  // values whose last reader is this step
  };
  std::vector<at::Tensor> execute(std::vector<at::Tensor> values,
                                  const std::vector<int64_t>& keep) const;
  int64_t id(const std::string& value) const;
  bool is_graph_input_or_weight(int64_t value) const { return value < first_node_value_; }

  const Graph& graph_;
  int64_t opset_;
  std::map<std::string, int64_t> ids_;
  std::vector<std::string> names_;
  std::vector<Step> steps_;
  std::vector<int64_t> input_ids_;
  int64_t first_node_value_ = 0;  // ids below are graph inputs and weights
  std::vector<std::pair<int64_t, const at::Tensor*>> weights_;
  std::map<int64_t, Hook> weight_hooks_;
  std::map<int64_t, Hook> value_hooks_;
  bool profiling_ = false;
  bool training_ = false;
  mutable std::map<std::string, OpTime> profile_;
  mutable Footprint* footprint_ = nullptr;  // measured while footprint() runs
};

// Samples per batch so that bytes_per_sample * batch stays within budget_bytes: at least 1, at most
// `wanted`. Example: batch_within(ex.footprint({one}).peak * 2, activation_budget(), 64).
int64_t batch_within(int64_t bytes_per_sample, int64_t budget_bytes, int64_t wanted);

}  // namespace mpq
