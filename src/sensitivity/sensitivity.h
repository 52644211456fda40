// Layer sensitivity (issue 5): how much each quantizable layer suffers at each candidate bit width,
// Omega_l(b), the input of every bit allocation. One table of metrics (metric_table()), each a
// function of a SensitivityContext that returns a SensitivityResult:
//   hessian        Hutchinson trace of the loss Hessian per layer (methods.md §2, HAWQ/LCPAQ):
//                  Omega_l(b) = Tr(H_l) / n_l * ||dW_l(b)||^2                      (hessian.h)
//   fisher         MPQCO's second-order objective (methods.md §1):
//                  Omega_l(b) = 1/(2N) sum_n <grad_W_l loss_n, dW_l(b)>^2          (fisher.h)
//   orthogonality  OMPQ's layer orthogonality (methods.md §4): ORM, gamma, theta (orthogonality.h)
//   delta-loss     the measured truth: loss change with only layer l quantized      (delta_loss.h)
// dW_l(b) = Q_b(W_l) - W_l is made by delta_weight() with the options' weight scheme and scale
// method, the same quantizer the delta-loss measurement applies, on the BatchNorm-folded model.
// Label-free, the loss depends on what the model's output is (class scores, per-step
// probabilities, a map, an embedding): output_kind.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "onnx/layers.h"
#include "sensitivity/output_kind.h"

namespace mpq {

struct SensitivityOptions {
  std::string metric = "hessian";
  std::vector<int> bits = {2, 3, 4, 5, 6, 8};  // candidate weight bits
  std::vector<int> act_bits;                   // delta-loss: candidate activation bits too
  int64_t samples = 512;  // data samples the metric reads (orthogonality: its batch, default 32)
  int64_t batch_size = 64;
  uint64_t seed = 0;
  // Label-free forms: the loss compares the output with the float model's (hessian, delta-loss),
  // and fisher draws targets from the float model's predictive distribution (the true Fisher,
  // whose expectation is that loss's Hessian; the loss's own gradient is zero at the float
  // model). For class scores the loss is KL(p_float || p) of the softmax and fisher draws labels
  // from it; other outputs per output_kind.h (per-step KL for sequences, 1/2 squared error with
  // y_float + N(0, I) targets for maps and embeddings).
  bool label_free = false;
  // What the first output is: "auto" (the model's "mpq.output" metadata, else inferred from its
  // output on the first samples, output_kind.h) or a row of output_kind_table(). make_context
  // resolves "auto", so a context's options always name the kind (and the cache key holds it).
  // Outputs other than class scores need label_free for the metrics that use labels.
  std::string output = "auto";
  std::string weight_scheme = "sym-channel";  // quant/scheme.h row for dW(b)
  std::string weight_scale = "maxabs";        // quant/weight_scale.h method for dW(b)
  // hessian: Rademacher probes until the trace's standard error is below `tolerance` times its
  // mean for every layer (at least min_probes), or max_probes. probe "global": one probe over all
  // layers at once (one Hessian-vector product per probe); "layer": a probe per layer.
  int64_t min_probes = 4;
  int64_t max_probes = 64;
  double tolerance = 0.05;
  std::string probe = "global";
  // hessian: "layer" is HAWQ's Omega = Tr(H_l) / n_l * ||dW_l||^2; "channel" applies the same
  // estimator per output channel, Omega = sum_c Tr(H_c) / n_c * ||dW_c||^2 (the probes are the
  // same; only how v * Hv is summed differs).
  std::string granularity = "layer";
  // orthogonality: theta = exp(-beta * gamma).
  double beta = 1.0;
  bool progress = true;
};

struct BitSensitivity {
  int bits = 0;
  double omega = 0;      // Omega_l(b): predicted (or, for delta-loss, measured) loss increase
  double std_error = 0;  // standard error of omega for stochastic estimates, else 0
  nlohmann::json parts = nlohmann::json::object();  // e.g. {"dw_sq": ..., "trace": ...}
};

struct LayerSensitivity {
  std::string name;  // QuantLayer::name
  std::string op;
  int64_t params = 0;                  // n_l, weights of the layer
  int64_t group = 0;                   // tied group (layers reading the same activation share one)
  std::vector<BitSensitivity> weight;  // one per options.bits, in that order
  std::vector<BitSensitivity> act;     // one per options.act_bits (delta-loss), in that order
  nlohmann::json extra = nlohmann::json::object();  // metric-specific per-layer values
};

struct SensitivityResult {
  std::string metric;
  std::vector<LayerSensitivity> layers;
  nlohmann::json extra = nlohmann::json::object();  // metric-specific (ORM matrix, probes, ...)
  nlohmann::json info = nlohmann::json::object();   // options, hashes, timing, version
};

// Resumable state: a metric saves what it has done at natural boundaries (a probe, a batch, a
// layer) and, when `state` is not null, starts from it. save may be empty (no resume).
struct ResumeState {
  nlohmann::json state;  // null: a fresh run
  std::function<void(const nlohmann::json&)> save;
};

struct SensitivityContext {
  Graph graph;                     // the float model with BatchNormalization folded
  std::vector<QuantLayer> layers;  // the quantizable layers of `graph`, in graph order
  std::vector<int64_t> groups;     // tied group per layer
  const Dataset* data = nullptr;   // the samples (labels unless label_free)
  SensitivityOptions options;
  ResumeState resume;
};

// Folds BatchNormalization, finds the layers and their tied groups, checks the options (bits
// 2-8 or 16, known scheme and scale method, samples > 0, ...) and that the data fits the model.
SensitivityContext make_context(const Graph& model, const Dataset* data,
                                const SensitivityOptions& options);

// dW = Q_b(W) - W for one layer's weight (the graph's shape), with the options' scheme and scale.
at::Tensor delta_weight(const Graph& graph, const QuantLayer& layer, int bits,
                        const SensitivityOptions& options);

// The loss the metrics differentiate, averaged over the batch: cross-entropy with `labels` (class
// scores only), or, with label-free options, label_free_loss(output, logits, reference)
// (reference: the float model's output on the same inputs): for class scores
// KL(softmax(reference) || softmax(logits)).
at::Tensor sensitivity_loss(const at::Tensor& logits, const at::Tensor& labels,
                            const at::Tensor& reference, bool label_free,
                            OutputKind output = OutputKind::kScores);
// The resolved kind of a context's options (after make_context).
OutputKind options_output_kind(const SensitivityOptions& options);

// The first min(options.samples, data.size()) samples in a seeded order, in batches of
// `batch_size` samples (0: options.batch_size) read when asked for, so memory holds one batch
// whatever the number of samples. Which samples are read does not depend on the batch size.
// Example: for (const Batch& b : SampleBatches(data, options)) ...
class SampleBatches {
 public:
  SampleBatches(const Dataset& data, const SensitivityOptions& options, int64_t batch_size = 0);
  size_t size() const { return size_t((samples() + batch_ - 1) / batch_); }
  int64_t samples() const { return int64_t(order_.size()); }
  int64_t batch_size() const { return batch_; }
  Batch read(size_t index) const;
  // Position of the first sample of batch `index` in the seeded order.
  int64_t first_sample(size_t index) const { return int64_t(index) * batch_; }

  class iterator {
   public:
    iterator(const SampleBatches* b, size_t i) : b_(b), i_(i) {}
    Batch operator*() const { return b_->read(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }

   private:
    const SampleBatches* b_;
    size_t i_;
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, size()}; }

 private:
  const Dataset& data_;
  std::vector<int64_t> order_;
  int64_t batch_;
};

// The samples per batch of a pass that holds `keep` times a sample's activations
// (Executor::footprint on the data's first sample: its total, every node output, for a pass with a
// backward; its peak for a pass without): options.batch_size, or fewer where the activation budget
// (exec/runtime.h) needs it. Logged when it shrinks.
int64_t batch_for_budget(const Graph& graph, const Dataset& data, const SensitivityOptions& options,
                         bool backward, double keep, const char* metric);

// One row per metric.
struct MetricInfo {
  const char* name;
  const char* description;
  bool needs_labels;  // without label_free
  bool stochastic;    // reports standard errors
  SensitivityResult (*run)(const SensitivityContext&);
};
const std::vector<MetricInfo>& metric_table();
const MetricInfo& find_metric(const std::string& name);  // throws listing the table

// The options that change a metric's result, as recorded in artifacts and cache keys (samples:
// the number actually read).
nlohmann::json options_json(const SensitivityOptions& options, int64_t samples);

// Runs the context's metric; fills layers' name/op/params/group and result.info's options.
SensitivityResult run_sensitivity(const SensitivityContext& context);

// Also writes "groups": per tied group its layers and Omega summed over them per candidate.
nlohmann::json to_json(const SensitivityResult& result);
SensitivityResult sensitivity_from_json(const nlohmann::json& j, const std::string& source);
SensitivityResult load_sensitivity(const std::string& path);

}  // namespace mpq
