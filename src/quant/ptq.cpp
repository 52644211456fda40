#include "quant/ptq.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/passes/fold_batchnorm.h"
#include "quant/patches.h"

namespace mpq {
namespace {

// Gram matrices above this many elements (128 MB in float64) fall back to their diagonal.
constexpr int64_t kMaxGramElements = int64_t(1) << 24;

// What the calibration pass accumulates for one layer.
struct LayerStats {
  std::vector<std::unique_ptr<Observer>> observers;  // one per observer setting
  bool want_mean = false, want_gram = false, want_square = false;
  PatchSums patches;   // the sums behind the input mean, squares and Gram matrix
  double seconds = 0;  // spent on them
  // The bias will absorb the mean of the output error (bias correction), so the error that remains
  // is d^T Cov d with the patches' covariance Cov = G - mu mu^T instead of the second moment G.
  bool centered = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double attr_float(const Node& n, const char* name, double fallback) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? fallback : it->second.f;
}

void calibrate(const Graph& g, const std::vector<QuantizedLayer>& layers,
               std::vector<LayerStats>* stats, const Dataset& data, const PtqOptions& o) {
  MPQ_CHECK(g.inputs.size() == 1, g.source, ": calibration feeds one input; the model has ",
            g.inputs.size());
  Executor ex(g);
  std::vector<int64_t> one = data.sample_shape();
  one.insert(one.begin(), 1);
  try {
    ex.check_input(0, at::zeros(one, at::kFloat));
  } catch (const Error& e) {
    MPQ_FAIL("calibration data ", data.describe(), " does not fit the model: ", e.what());
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerStats& s = (*stats)[i];
    if (s.observers.empty() && !s.want_mean && !s.want_gram && !s.want_square) continue;
    const QuantizedLayer& ql = layers[i];
    ex.set_value_hook(ql.act_value, [&g, &ql, &s, &o](const std::string&, const at::Tensor& x) {
      for (auto& observer : s.observers) observer->observe(x);
      PatchRequest want;
      want.mean = s.want_mean;
      want.square = s.want_square;
      want.gram_rows = s.want_gram ? std::max<int64_t>(0, o.gram_rows) : -1;
      auto t0 = std::chrono::steady_clock::now();
      accumulate_patches(g, ql.layer, x, want, &s.patches);
      s.seconds += seconds_since(t0);
      return x;
    });
  }
  int64_t n = std::min<int64_t>(o.calibration_samples, data.size());
  MPQ_CHECK(n > 0, "calibration data ", data.describe(), ": expected at least one sample");
  // The batch holds the live activations, the statistics' float64 copies of a layer's input and
  // the observers' work: about three times the inference peak.
  const int64_t per_sample = 3 * Executor(g).footprint({data.read({0}).x}).peak;
  int64_t batch = batch_within(per_sample, activation_budget(), std::min(o.batch_size, n));
  log_debug("calibrate: batches of ", batch, " samples (", per_sample >> 10,
            " KiB per sample, --memory ", activation_budget() >> 20, " MiB)");
  DataLoader loader(data, batch, /*shuffle=*/true, o.seed);
  int64_t done = 0;
  Progress progress("calibrate", o.progress ? n : 0);
  if (!o.progress) progress.finish();
  at::NoGradGuard no_grad;
  Batch b;
  while (done < n && loader.next(&b)) {
    at::Tensor x = b.x;
    if (done + x.size(0) > n) x = x.narrow(0, 0, n - done);
    ex.run({x});
    done += x.size(0);
    if (o.progress) progress.advance(x.size(0));
  }
  progress.finish();
}

// Subtracts `shift` from the layer's bias (creating one for Conv and Gemm); false when the layer
// has no place for one. apply = false only answers whether it has (shift may be any [C] tensor).
bool correct_bias(Graph* g, QuantizedLayer* ql, const at::Tensor& shift, bool apply = true) {
  Node& node = g->nodes[size_t(ql->layer.node)];
  auto set_bias = [&](size_t input, const at::Tensor& value) {
    if (!apply) return;
    std::string name = node.name + ".bias_corrected";
    while (g->initializers.count(name)) name += "_";
    if (node.inputs.size() <= input) node.inputs.resize(input + 1);
    node.inputs[input] = name;
    g->initializers[name] = value.contiguous();
  };
  at::Tensor s = shift.to(at::kFloat);
  if (ql->layer.op == "Conv") {
    at::Tensor bias = node.inputs.size() > 2 && !node.inputs[2].empty()
                          ? g->initializers.at(node.inputs[2])
                          : at::zeros({s.size(0)}, s.options());
    set_bias(2, bias - s);
    return true;
  }
  if (ql->layer.op == "Gemm") {
    double alpha = attr_float(node, "alpha", 1.0), beta = attr_float(node, "beta", 1.0);
    if (beta == 0) return false;
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      if (!g->is_initializer(node.inputs[2])) return false;
      at::Tensor c = g->initializers.at(node.inputs[2]);
      if (c.numel() == 1) c = c.reshape({1}).expand({s.size(0)});
      if (c.numel() != s.size(0)) return false;
      set_bias(2, c.reshape({s.size(0)}) - s * (alpha / beta));
    } else {
      set_bias(2, -s * (alpha / beta));
    }
    return true;
  }
  if (ql->layer.op == "MatMul" && ql->layer.weight_input == 1) {
    std::vector<int64_t> readers = g->consumers(node.outputs[0]);
    if (readers.size() != 1 || g->is_graph_output(node.outputs[0])) return false;
    Node& add = g->nodes[size_t(readers[0])];
    if (add.op_type != "Add" || add.inputs.size() != 2) return false;
    size_t other = add.inputs[0] == node.outputs[0] ? 1 : 0;
    if (!g->is_initializer(add.inputs[other])) return false;
    at::Tensor c = g->initializers.at(add.inputs[other]);
    if (c.numel() != s.size(0) || c.size(-1) != s.size(0)) return false;
    if (g->consumers(add.inputs[other]).size() != 1) return false;
    if (!apply) return true;
    std::string name = add.inputs[other] + ".bias_corrected";
    add.inputs[other] = name;
    g->initializers[name] = (c - s.reshape(c.sizes())).contiguous();
    return true;
  }
  return false;
}

// The layer's input second moment G (or covariance, when centered), float [groups, K, K];
// undefined without statistics.
at::Tensor layer_gram(const LayerStats& s) {
  const PatchSums& p = s.patches;
  if (p.gram_rows == 0) return {};
  at::Tensor g = p.gram / double(p.gram_rows);
  if (s.centered) {
    at::Tensor mu = p.gram_sum / double(p.gram_rows);
    g = g - mu.unsqueeze(2) * mu.unsqueeze(1);
  }
  return g.to(at::kFloat);
}

// The error the mse clipping search minimises for this layer (ErrorWeights), from its statistics.
ErrorWeights clip_error_weights(const Graph& g, const QuantizedLayer& ql, const LayerStats& s) {
  ErrorWeights e;
  const PatchSums& p = s.patches;
  if (s.want_gram && p.gram_rows > 0) {
    e.gram = layer_gram(s);
  } else if (s.want_square && p.rows > 0) {
    const at::Tensor& w = g.initializers.at(ql.layer.weight);
    at::Tensor diag = p.square_sum / double(p.rows);  // [groups, K]
    if (s.centered) diag = diag - (p.sum / double(p.rows)).square();
    int64_t channels = w.size(ql.channel_axis);
    at::Tensor per_channel = diag.to(at::kFloat).repeat_interleave(channels / diag.size(0), 0);
    e.element =
        to_rows(from_channel_rows(per_channel, w.sizes().vec(), ql.channel_axis), ql.layout);
  }
  return e;
}

void quantize_weight(const Graph& g, QuantizedLayer* ql, const LayerStats& s, const PtqOptions& o) {
  const at::Tensor& w = g.initializers.at(ql->layer.weight);
  const QuantSpec& spec = ql->plan.weight;
  ql->weight_quantized = spec.quantized();
  if (!ql->weight_quantized) {
    ql->weight_hat = w;
    return;
  }
  ql->layout = make_row_layout(w.sizes().vec(), ql->channel_axis, spec);
  WeightScaleOptions ws = o.weight_scale;
  ws.method = weight_scale_method(o);
  RoundedWeight r = round_weight(w, ql->layout, spec, ws, clip_error_weights(g, *ql, s));
  ql->weight_params = r.params;
  ql->weight_int = r.ints;
  ql->weight_hat = r.hat;
}

}  // namespace

std::string observer_for(const PtqOptions& o) {
  if (!o.observer.empty()) return o.observer;
  return o.method == "rtn" ? "minmax" : "mse";
}

std::string weight_scale_method(const PtqOptions& o) {
  if (!o.weight_scale.method.empty()) return o.weight_scale.method;
  return o.method == "rtn" ? "maxabs" : "mse";
}

const std::vector<std::string>& ptq_methods() {
  static const std::vector<std::string> kMethods = {"rtn", "mse", "multipoint"};
  return kMethods;
}

const QuantizedLayer* QuantizedModel::find(const std::string& layer) const {
  for (const auto& l : layers) {
    if (l.layer.name == layer) return &l;
  }
  return nullptr;
}

std::string layer_input_value(const std::string& layer) { return layer + "/input_quant"; }

Graph prepare_graph(const Graph& model, const Plan& plan, bool fold_bn) {
  Graph g = model;
  if (fold_bn) fold_batchnorm(&g);
  std::vector<QuantLayer> layers = find_quantizable_layers(g);
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (!plan.find(it->name)) continue;
    Node& node = g.nodes[size_t(it->node)];
    std::string value = layer_input_value(it->name);
    MPQ_CHECK(g.find_node(value) < 0 && !g.is_initializer(value), g.source, ": the name '", value,
              "' that mpq gives the input of layer '", it->name, "' is already taken");
    Node id;
    id.name = value;
    id.op_type = "Identity";
    size_t input = size_t(activation_input(*it));
    id.inputs = {node.inputs[input]};
    id.outputs = {value};
    node.inputs[input] = value;
    g.nodes.insert(g.nodes.begin() + it->node, std::move(id));
  }
  return g;
}

namespace {

void check_options(const PtqOptions& o) {
  bool known_method = false;
  for (const auto& m : ptq_methods()) known_method |= m == o.method;
  MPQ_CHECK(known_method, "--method: expected rtn, mse or multipoint, found '", o.method, "'");
  MPQ_CHECK(o.max_points >= 1 && o.max_points <= 8, "--max-points: expected 1..8, found ",
            o.max_points);
  MPQ_CHECK(o.clip_error == "output" || o.clip_error == "weight",
            "--clip-error: expected output or weight, found '", o.clip_error, "'");
  MPQ_CHECK(o.extra_points >= 0, "--points: expected a fraction >= 0, found ", o.extra_points);
}

// Step 1 and the layers of the plan, weights and ranges still to come.
QuantizedModel start_model(const Graph& model, const Plan& plan, const PtqOptions& o) {
  check_plan(plan, model, "plan");
  QuantizedModel qm;
  qm.graph = prepare_graph(model, plan, o.fold_batchnorm);
  const Graph& g = qm.graph;
  for (const auto& layer : find_quantizable_layers(g)) {
    const LayerPlan* lp = plan.find(layer.name);
    if (!lp) continue;
    QuantizedLayer ql;
    ql.layer = layer;
    ql.plan = *lp;
    ql.channel_axis = output_channel_axis(g, layer);
    ql.act_value = layer_input_value(layer.name);
    ql.act_quantized = lp->act.quantized();
    bool wants_points = o.method == "multipoint" && lp->weight.quantized();
    if (wants_points) {
      MPQ_CHECK(lp->weight.bits <= 8, "layer '", layer.name,
                "': multipoint quantizes 2-8 bit weights, found ", lp->weight.bits);
    }
    ql.multipoint = wants_points;
    qm.layers.push_back(std::move(ql));
  }
  return qm;
}

// Which statistics a layer needs: the input mean (bias correction), the patch Gram matrix (mse
// clipping of the output error, multipoint) or only its diagonal (G too large, or not per channel).
void plan_stats(Graph* g, QuantizedLayer* ql, const PtqOptions& o, LayerStats* s) {
  bool patches = has_patches(*g, ql->layer);
  const QuantSpec& w = ql->plan.weight;
  s->want_mean = patches && o.bias_correction && w.quantized();
  bool output_clip = patches && w.quantized() && !ql->multipoint &&
                     weight_scale_method(o) == "mse" && o.clip_error != "weight";
  bool gram_fits = false;
  if (output_clip && w.info().granularity == Granularity::kChannel) {
    const at::Tensor& weight = g->initializers.at(ql->layer.weight);
    int64_t k = weight.numel() / std::max<int64_t>(1, weight.size(ql->channel_axis));
    gram_fits = layer_groups(*g, ql->layer) * k * k <= kMaxGramElements;
  }
  s->want_gram = patches && (ql->multipoint || gram_fits);
  s->want_square = output_clip && !gram_fits;
  if (s->want_mean) {
    at::Tensor zero = at::zeros({g->initializers.at(ql->layer.weight).size(ql->channel_axis)});
    s->centered = correct_bias(g, ql, zero, /*apply=*/false);
  }
}

// Step 4 for one layer whose weight_hat is set, and step 5 from `observer`.
void finish_layer(Graph* g, QuantizedLayer* ql, const LayerStats& s, const Observer* observer) {
  if (s.want_mean && s.patches.rows > 0 && ql->weight_quantized) {
    const at::Tensor& w = g->initializers.at(ql->layer.weight);
    at::Tensor delta = to_channel_rows((ql->weight_hat - w).to(at::kDouble), ql->channel_axis);
    at::Tensor mean = s.patches.sum / double(s.patches.rows);  // [groups, K]
    int64_t groups = mean.size(0), channels = delta.size(0);
    at::Tensor per_channel = mean.repeat_interleave(channels / groups, 0);  // [C, K]
    at::Tensor shift = (delta * per_channel).sum(1);
    if (correct_bias(g, ql, shift)) ql->bias_shift = shift.abs().max().item<double>();
    // find_quantizable_layers' bias name may have changed; keep ql->layer in step.
    const Node& node = g->nodes[size_t(ql->layer.node)];
    if (ql->layer.op != "MatMul" && node.inputs.size() > 2) ql->layer.bias = node.inputs[2];
  }
  if (ql->act_quantized) {
    auto [lo, hi] = observer->range(ql->plan.act.bits, ql->plan.act.info());
    ql->act_params =
        params_from_range(at::scalar_tensor(lo, at::kDouble), at::scalar_tensor(hi, at::kDouble),
                          ql->plan.act.bits, ql->plan.act.info());
  }
}

nlohmann::json model_info(const PtqOptions& o, const std::string& observer,
                          int64_t calibration_samples) {
  nlohmann::json info = {{"method", o.method},
                         {"observer", observer},
                         {"calibration_samples", calibration_samples},
                         {"bias_correction", o.bias_correction},
                         {"weight_scale", weight_scale_method(o)},
                         {"fold_batchnorm", o.fold_batchnorm},
                         {"seed", o.seed}};
  if (weight_scale_method(o) == "mse" || o.method == "multipoint")
    info["clip_error"] = o.clip_error;
  if (o.method == "multipoint") {
    info["extra_points"] = o.extra_points;
    info["max_points"] = o.max_points;
    info["point_scope"] = o.point_scope == PointScope::kLayer ? "layer" : "network";
  }
  return info;
}

}  // namespace

QuantizedModel quantize_ptq(const Graph& model, const Plan& plan, const Dataset* calibration,
                            const PtqOptions& o) {
  check_options(o);
  QuantizedModel qm = start_model(model, plan, o);
  Graph& g = qm.graph;

  // Calibration statistics.
  std::vector<LayerStats> stats(qm.layers.size());
  bool need_data = false;
  for (size_t i = 0; i < qm.layers.size(); ++i) {
    LayerStats& s = stats[i];
    if (qm.layers[i].act_quantized)
      s.observers.push_back(make_observer(observer_for(o), o.observer_options));
    plan_stats(&g, &qm.layers[i], o, &s);
    need_data |= !s.observers.empty() || s.want_mean || s.want_gram || s.want_square;
  }
  if (need_data) {
    MPQ_CHECK(calibration, "quantization needs calibration data (--data) for activation ranges, ",
              "bias correction, output-aware clipping or multipoint");
    auto start = std::chrono::steady_clock::now();
    calibrate(g, qm.layers, &stats, *calibration, o);
    double patch_seconds = 0;
    for (const auto& s : stats) patch_seconds += s.seconds;
    log_debug("calibrate: ", seconds_since(start), " s, of which patch statistics ", patch_seconds,
              " s");
    for (size_t i = 0; i < stats.size(); ++i)
      log_debug("  ", qm.layers[i].layer.name, ": ", stats[i].seconds, " s",
                stats[i].want_gram ? " gram" : "", stats[i].want_square ? " square" : "",
                stats[i].want_mean ? " mean" : "");
  }

  // Weights.
  auto weights_start = std::chrono::steady_clock::now();
  std::vector<MultipointLayer*> point_layers;
  std::vector<int64_t> budgets;
  std::vector<double> energy;
  for (size_t i = 0; i < qm.layers.size(); ++i) {
    QuantizedLayer& ql = qm.layers[i];
    if (!ql.multipoint) {
      quantize_weight(g, &ql, stats[i], o);
      continue;
    }
    ql.weight_quantized = true;
    const at::Tensor& w = g.initializers.at(ql.layer.weight);
    at::Tensor rows = to_channel_rows(w.to(at::kFloat), ql.channel_axis);
    at::Tensor gram = layer_gram(stats[i]);
    ql.points = build_points(rows, ql.plan.weight.bits, o.max_points,
                             o.clip_error == "output" ? gram : at::Tensor());
    compute_errors(rows, gram, &ql.points);
    double fraction = ql.plan.extra_points > 0 ? ql.plan.extra_points : o.extra_points;
    point_layers.push_back(&ql.points);
    // Points per layer; the network scope's budget counts weight elements (K per point).
    budgets.push_back(int64_t(
        std::llround(fraction * double(rows.size(0)) *
                     (o.point_scope == PointScope::kNetwork ? double(rows.size(1)) : 1.0))));
    energy.push_back(output_energy(rows, gram));
  }
  if (!point_layers.empty()) {
    if (o.point_scope == PointScope::kLayer) {
      allocate_points(point_layers, budgets, PointScope::kLayer, {});
    } else {
      int64_t total = 0;
      for (int64_t b : budgets) total += b;
      allocate_points(point_layers, {total}, PointScope::kNetwork, energy);
    }
    for (auto& ql : qm.layers) {
      if (!ql.multipoint) continue;
      const at::Tensor& w = g.initializers.at(ql.layer.weight);
      ql.weight_hat = from_channel_rows(reconstruct(ql.points), w.sizes().vec(), ql.channel_axis)
                          .to(w.scalar_type());
    }
  }

  log_debug("weights: ", seconds_since(weights_start), " s");

  // Bias correction and activation ranges.
  for (size_t i = 0; i < qm.layers.size(); ++i) {
    const LayerStats& s = stats[i];
    finish_layer(&g, &qm.layers[i], s, s.observers.empty() ? nullptr : s.observers[0].get());
  }
  qm.info =
      model_info(o, need_data ? observer_for(o) : "",
                 calibration ? std::min<int64_t>(o.calibration_samples, calibration->size()) : 0);
  return qm;
}

// ---- Calibrated once, quantized under many plans ---------------------------------------------

struct PtqCalibration::Impl {
  PtqOptions options;
  std::vector<ObserverSetting> observers;
  QuantizedModel base;  // prepared graph and layers of the reference plan, nothing quantized
  std::vector<LayerStats> stats;
  int64_t calibration_samples = 0;
  struct Rounded {
    RowLayout layout;
    QParams params;
    at::Tensor ints, hat;
  };
  mutable std::map<std::string, Rounded> weights;  // "layer index/scale method/bits/scheme/group"
};

PtqCalibration::PtqCalibration(const Graph& model, const Plan& reference,
                               const Dataset& calibration, const PtqOptions& options,
                               const std::vector<ObserverSetting>& observers)
    : impl_(std::make_unique<Impl>()) {
  check_options(options);
  MPQ_CHECK(options.method != "multipoint",
            "a calibration kept for many plans serves rtn and mse, not multipoint");
  MPQ_CHECK(!observers.empty(), "a calibration kept for many plans needs an observer setting");
  Impl& m = *impl_;
  m.options = options;
  m.options.method = "mse";  // collect what mse clipping needs; maxabs needs nothing more
  m.options.weight_scale.method = "mse";
  m.observers = observers;
  m.base = start_model(model, reference, m.options);
  m.stats.resize(m.base.layers.size());
  for (size_t i = 0; i < m.base.layers.size(); ++i) {
    QuantizedLayer& ql = m.base.layers[i];
    MPQ_CHECK(ql.plan.weight.quantized(), "layer '", ql.layer.name,
              "': the reference plan of a kept calibration must quantize every weight");
    for (const auto& ob : observers)
      m.stats[i].observers.push_back(make_observer(ob.name, ob.options));
    plan_stats(&m.base.graph, &ql, m.options, &m.stats[i]);
  }
  calibrate(m.base.graph, m.base.layers, &m.stats, calibration, m.options);
  m.calibration_samples = std::min<int64_t>(options.calibration_samples, calibration.size());
}

PtqCalibration::~PtqCalibration() = default;

const Graph& PtqCalibration::float_graph() const { return impl_->base.graph; }

QuantizedModel PtqCalibration::quantize(const Plan& plan, const std::string& weight_scale,
                                        size_t observer) const {
  const Impl& m = *impl_;
  MPQ_CHECK(weight_scale == "maxabs" || weight_scale == "mse",
            "weight scale: expected maxabs or mse, found '", weight_scale, "'");
  MPQ_CHECK(observer < m.observers.size(), "observer setting ", observer, " of ",
            m.observers.size());
  QuantizedModel qm;
  qm.graph = m.base.graph;
  qm.layers = m.base.layers;
  PtqOptions o = m.options;
  o.method = weight_scale == "mse" ? "mse" : "rtn";
  o.weight_scale.method = weight_scale;
  for (const auto& lp : plan.layers) {
    MPQ_CHECK(m.base.find(lp.name), "plan: layer '", lp.name,
              "' is not among the layers the calibration was kept for");
  }
  for (size_t i = 0; i < qm.layers.size(); ++i) {
    QuantizedLayer& ql = qm.layers[i];
    const LayerPlan* lp = plan.find(ql.layer.name);
    MPQ_CHECK(lp, "plan: layer '", ql.layer.name, "' missing (the calibration quantizes it)");
    MPQ_CHECK(!lp->weight.quantized() || lp->weight.scheme == ql.plan.weight.scheme,
              "plan: layer '", ql.layer.name, "': weight scheme ", lp->weight.scheme,
              ", the calibration was kept for ", ql.plan.weight.scheme);
    ql.plan = *lp;
    ql.act_quantized = lp->act.quantized();
    std::string key = std::to_string(i) + "/" + weight_scale + "/" +
                      std::to_string(lp->weight.bits) + "/" + lp->weight.scheme + "/" +
                      std::to_string(lp->weight.group_size);
    auto it = m.weights.find(key);
    if (it == m.weights.end()) {
      quantize_weight(qm.graph, &ql, m.stats[i], o);
      it = m.weights
               .emplace(key,
                        Impl::Rounded{ql.layout, ql.weight_params, ql.weight_int, ql.weight_hat})
               .first;
    }
    ql.weight_quantized = lp->weight.quantized();
    ql.layout = it->second.layout;
    ql.weight_params = it->second.params;
    ql.weight_int = it->second.ints;
    ql.weight_hat = it->second.hat;
    finish_layer(&qm.graph, &ql, m.stats[i], m.stats[i].observers[observer].get());
  }
  qm.info = model_info(o, m.observers[observer].name, m.calibration_samples);
  if (m.observers[observer].name == "percentile")
    qm.info["percentile"] = m.observers[observer].options.percentile;
  return qm;
}

}  // namespace mpq
