// Post-training quantization (issue 4): turns a float model and a plan into a QuantizedModel —
// integer weights with their scales, activation ranges from calibration — that the simulation
// (simulate.h) runs and the exporter (export_qdq.h) writes as QDQ ONNX.
//
// Steps, in order:
//   1. prepare: fold BatchNormalization into the preceding convs (on by default), and give every
//      planned layer its own input value (an Identity node "<layer>/input_quant"), so two layers
//      reading the same tensor can quantize it differently;
//   2. calibrate: one pass of the float model over the calibration samples; per layer an
//      activation observer (observer.h), the mean input patch (bias correction) and the patch Gram
//      matrix (mse clipping, multipoint) are accumulated batch by batch, never holding all
//      activations;
//   3. weights: round-to-nearest on the scheme's grid with scales from weight_scale.h (rtn:
//      maxabs, mse: clipping), or multipoint points (methods.md §3: greedy points per output
//      channel, extra points to the channels whose output error e_j = dw_j^T G dw_j drops most).
//      mse and multipoint minimise the output error dw^T G dw per channel (clip_error "output"),
//      with G the patches' covariance when step 4 absorbs the mean (docs/quantization.md);
//   4. bias correction (Nagel et al., 2019, analytical form): b <- b - (W_hat - W) E[x] per output
//      channel, E[x] the mean input patch (padding included), for Conv, Gemm and MatMul followed
//      by a constant Add;
//   5. activation ranges from the observers.
// Cost: one forward pass over the calibration samples (plus O(rows K^2) per layer and batch for
// the Gram matrices), then O(weights) per layer for rtn, O(grid * weights * K) for mse and
// O(points * (ratios + iterations) * weights * K) for multipoint, K the inputs per channel.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "onnx/layers.h"
#include "quant/multipoint.h"
#include "quant/observer.h"
#include "quant/plan.h"
#include "quant/scheme.h"
#include "quant/weight_scale.h"

namespace mpq {

struct QuantizedLayer {
  QuantLayer layer;  // indices refer to QuantizedModel::graph
  LayerPlan plan;
  int64_t channel_axis = 0;
  std::string act_value;  // the Identity output that feeds the layer ("" if none)
  bool weight_quantized = false;
  RowLayout layout;
  QParams weight_params;  // per row of `layout`
  at::Tensor weight_int;  // [rows, row_size] integers (float32), when not multipoint
  bool multipoint = false;
  MultipointLayer points;
  at::Tensor weight_hat;  // the dequantized weight, the weight's shape
  bool act_quantized = false;
  QParams act_params;     // 0-d scale and zero point
  double bias_shift = 0;  // max |bias correction| applied (0 if none)
};

struct QuantizedModel {
  Graph graph;  // prepared float graph (BN folded, Identity per layer input, corrected biases)
  std::vector<QuantizedLayer> layers;
  nlohmann::json info = nlohmann::json::object();  // method and options, for artifacts
  const QuantizedLayer* find(const std::string& layer) const;
};

struct PtqOptions {
  std::string method = "mse";           // rtn | mse | multipoint
  WeightScaleOptions weight_scale{""};  // method "" = maxabs for rtn, mse for mse
  // What the mse clipping search and multipoint's point search minimise: "output" — the layer's
  // output error d^T G d per channel, G the input patches' second moment from calibration
  // (schemes that are not per-channel, and layers whose G would pass 2^24 elements, use G's
  // diagonal); "weight" — the plain weight error (the papers' form).
  std::string clip_error = "output";
  std::string observer;  // "" = minmax for rtn, mse otherwise
  ObserverOptions observer_options;
  int64_t calibration_samples = 512;
  int64_t batch_size = 64;
  uint64_t seed = 0;
  bool fold_batchnorm = true;
  bool bias_correction = true;
  // multipoint: extra points per layer as a fraction of its channels (a plan's per-layer
  // extra_points win where set), at most max_points per channel, scope of the budget.
  double extra_points = 0;
  int max_points = 4;
  PointScope point_scope = PointScope::kLayer;
  int64_t gram_rows = 2048;  // patch rows per batch kept for Gram matrices
  bool progress = true;
};

// The method names: rtn, mse, multipoint.
const std::vector<std::string>& ptq_methods();

// Layers the plan leaves out stay float. `calibration` may be null when no activation is quantized
// and neither bias correction nor multipoint needs statistics; it must match the model's input.
// Example: QuantizedModel q = quantize_ptq(g, uniform_plan(g, 4, 8), data.get(), {});
QuantizedModel quantize_ptq(const Graph& model, const Plan& plan, const Dataset* calibration,
                            const PtqOptions& options);

// One calibration pass kept for quantizing the same model under many plans (the proxy search,
// methods.md §2): every statistic rtn and mse need (input means, Gram matrices) and one observer
// per setting are collected once, and each layer's rounded weights are kept per (bits, scheme,
// scale method), so a further plan costs only the layers' new widths, the bias correction and the
// ranges. Plans must quantize the layers of `reference` with its weight schemes; the results
// equal quantize_ptq's with the same options (tests/quant/ptq_test.cpp).
struct ObserverSetting {
  std::string name;  // observer.h
  ObserverOptions options;
};

// The activation observer and the weight scale method the options resolve to ("" = the
// method's default: minmax / maxabs for rtn, mse otherwise).
std::string observer_for(const PtqOptions& options);
std::string weight_scale_method(const PtqOptions& options);

class PtqCalibration {
 public:
  // `options`: calibration samples, batch size, seed, bias correction, clip error; method rtn or
  // mse (multipoint is not kept).
  PtqCalibration(const Graph& model, const Plan& reference, const Dataset& calibration,
                 const PtqOptions& options, const std::vector<ObserverSetting>& observers);
  ~PtqCalibration();
  PtqCalibration(const PtqCalibration&) = delete;
  PtqCalibration& operator=(const PtqCalibration&) = delete;

  // weight_scale: maxabs (rtn) or mse; observer: an index into the settings.
  QuantizedModel quantize(const Plan& plan, const std::string& weight_scale, size_t observer) const;
  // The prepared float graph the plans are quantized from (step 1: BatchNormalization folded,
  // an Identity per layer input): the float reference for the quantized models.
  const Graph& float_graph() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Step 1 alone (used by the simulation of training-time quantization too).
Graph prepare_graph(const Graph& model, const Plan& plan, bool fold_bn);
// The name of the Identity output feeding `layer` in a prepared graph.
std::string layer_input_value(const std::string& layer);

}  // namespace mpq
