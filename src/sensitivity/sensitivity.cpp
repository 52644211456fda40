#include "sensitivity/sensitivity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/passes/fold_batchnorm.h"
#include "quant/patches.h"
#include "quant/scheme.h"
#include "quant/weight_scale.h"
#include "sensitivity/delta_loss.h"
#include "sensitivity/fisher.h"
#include "sensitivity/hessian.h"
#include "sensitivity/orthogonality.h"

namespace mpq {
namespace {

const std::vector<MetricInfo> kMetrics = {
    {"hessian", "Hutchinson trace of the loss Hessian per layer: Tr(H)/n * ||dW(b)||^2", true, true,
     hessian_sensitivity},
    {"fisher", "MPQCO second-order term 1/(2N) sum_n <grad loss_n, dW(b)>^2, batched", true, true,
     fisher_sensitivity},
    {"orthogonality", "OMPQ layer orthogonality (linear CKA) from one unlabelled batch", false,
     false, orthogonality_sensitivity},
    {"delta-loss", "measured loss change with only the layer quantized (the truth)", true, false,
     delta_loss_sensitivity},
};

void check_bits_list(const std::vector<int>& bits, const char* option) {
  for (int b : bits) {
    MPQ_CHECK((b >= 2 && b <= 8) || b == 16, option, ": expected bit widths 2-8 or 16, found ", b);
  }
  std::vector<int> sorted = bits;
  std::sort(sorted.begin(), sorted.end());
  MPQ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), option,
            ": each bit width once, found a repeat");
}

}  // namespace

const std::vector<MetricInfo>& metric_table() { return kMetrics; }

const MetricInfo& find_metric(const std::string& name) {
  std::string names;
  for (const auto& m : kMetrics) {
    if (name == m.name) return m;
    names += std::string(names.empty() ? "" : ", ") + m.name;
  }
  MPQ_FAIL("--metric: expected one of ", names, ", found '", name, "'");
}

SensitivityContext make_context(const Graph& model, const Dataset* data,
                                const SensitivityOptions& o) {
  const MetricInfo& metric = find_metric(o.metric);
  MPQ_CHECK(!o.bits.empty(), "--bits: expected at least one candidate bit width");
  check_bits_list(o.bits, "--bits");
  check_bits_list(o.act_bits, "--act-bits");
  MPQ_CHECK(o.samples > 0, "--samples: expected > 0, found ", o.samples);
  MPQ_CHECK(o.batch_size > 0, "--batch: expected > 0, found ", o.batch_size);
  MPQ_CHECK(o.min_probes >= 1 && o.max_probes >= o.min_probes,
            "--probes: expected 1 <= min probes <= max probes, found ", o.min_probes, " and ",
            o.max_probes);
  MPQ_CHECK(o.tolerance > 0, "--tolerance: expected > 0, found ", o.tolerance);
  MPQ_CHECK(o.probe == "global" || o.probe == "layer", "--probe: expected global or layer, found '",
            o.probe, "'");
  MPQ_CHECK(o.granularity == "layer" || o.granularity == "channel",
            "--granularity: expected layer or channel, found '", o.granularity, "'");
  MPQ_CHECK(o.beta > 0, "--beta: expected > 0, found ", o.beta);
  const SchemeInfo& scheme = find_scheme(o.weight_scheme);
  MPQ_CHECK(scheme.quantized, "--scheme: expected a quantizing weight scheme, found '",
            o.weight_scheme, "'");
  bool known_scale = false;
  for (const auto& m : weight_scale_table()) known_scale |= o.weight_scale == m.name;
  MPQ_CHECK(known_scale, "--weight-scale: expected maxabs, mse or percentile, found '",
            o.weight_scale, "'");
  MPQ_CHECK(data, "sensitivity needs data (--data)");
  MPQ_CHECK(data->size() > 0, "data ", data->describe(), ": expected at least one sample");
  if (metric.needs_labels && !o.label_free) {
    MPQ_CHECK(data->has_labels(), "--metric ", o.metric, " needs labels and data ",
              data->describe(), " has none: give labels or use --label-free");
  }

  SensitivityContext c;
  c.graph = model;
  fold_batchnorm(&c.graph);
  MPQ_CHECK(c.graph.inputs.size() == 1, model.source,
            ": sensitivity feeds one input; the model has ", c.graph.inputs.size());
  MPQ_CHECK(!c.graph.outputs.empty(), model.source, ": the model has no output");
  Executor ex(c.graph);
  std::vector<int64_t> one = data->sample_shape();
  one.insert(one.begin(), 1);
  try {
    ex.check_input(0, at::zeros(one, at::kFloat));
  } catch (const Error& e) {
    MPQ_FAIL("data ", data->describe(), " does not fit the model: ", e.what());
  }
  // What the output is decides the label-free loss; labelled cross-entropy needs class scores.
  OutputKind kind = o.output == "auto" ? model_output_kind(ex, *data) : find_output_kind(o.output);
  if (metric.needs_labels && !o.label_free) {
    MPQ_CHECK(kind == OutputKind::kScores, "--metric ", o.metric,
              " with labels needs class scores and ", model.source,
              "'s output is not (output kind '", output_kind_name(kind), "'): use --label-free");
  }
  c.layers = find_quantizable_layers(c.graph);
  MPQ_CHECK(!c.layers.empty(), model.source, ": no quantizable layer (Conv, Gemm, MatMul)");
  std::map<std::string, int64_t> by_input;
  for (const auto& l : c.layers) {
    const std::string& input = c.graph.nodes[size_t(l.node)].inputs[size_t(activation_input(l))];
    auto it = by_input.emplace(input, int64_t(by_input.size())).first;
    c.groups.push_back(it->second);
  }
  c.data = data;
  c.options = o;
  c.options.output = output_kind_name(kind);
  return c;
}

at::Tensor delta_weight(const Graph& graph, const QuantLayer& layer, int bits,
                        const SensitivityOptions& o) {
  at::NoGradGuard no_grad;
  const at::Tensor& w = graph.initializers.at(layer.weight);
  QuantSpec spec;
  spec.bits = bits;
  spec.scheme = o.weight_scheme;
  RowLayout layout = make_row_layout(w.sizes().vec(), output_channel_axis(graph, layer), spec);
  WeightScaleOptions ws;
  ws.method = o.weight_scale;
  return round_weight(w, layout, spec, ws).hat - w;
}

at::Tensor sensitivity_loss(const at::Tensor& logits, const at::Tensor& labels,
                            const at::Tensor& reference, bool label_free, OutputKind output) {
  if (label_free) return label_free_loss(output, logits, reference);
  MPQ_ASSERT(output == OutputKind::kScores, "cross-entropy needs class scores");
  return at::cross_entropy_loss(logits.reshape({logits.size(0), -1}), labels);
}

OutputKind options_output_kind(const SensitivityOptions& o) {
  MPQ_ASSERT(o.output != "auto", "the output kind is resolved by make_context");
  return find_output_kind(o.output);
}

SampleBatches::SampleBatches(const Dataset& data, const SensitivityOptions& o, int64_t batch_size)
    : data_(data), batch_(std::max<int64_t>(1, batch_size > 0 ? batch_size : o.batch_size)) {
  int64_t n = std::min<int64_t>(o.samples, data.size());
  order_ = random_permutation(data.size(), o.seed);
  order_.resize(size_t(std::max<int64_t>(0, n)));
}

Batch SampleBatches::read(size_t index) const {
  MPQ_ASSERT(index < size(), "batch ", index, " of ", size());
  int64_t start = first_sample(index), end = std::min(samples(), start + batch_);
  return data_.read(std::vector<int64_t>(order_.begin() + start, order_.begin() + end));
}

int64_t batch_for_budget(const Graph& graph, const Dataset& data, const SensitivityOptions& o,
                         bool backward, double keep, const char* metric) {
  if (data.size() == 0) return o.batch_size;
  Executor::Footprint f = Executor(graph).footprint({data.read({0}).x});
  double bytes = keep * double(backward ? f.total : f.peak);
  int64_t batch = batch_within(int64_t(bytes), activation_budget(), o.batch_size);
  if (batch < o.batch_size)
    log_info(metric, ": batches of ", batch, " samples (", int64_t(bytes) >> 20,
             " MiB per sample; --memory ", activation_budget() >> 20, " MiB)");
  for (const auto& [size, name] : f.largest)
    log_debug("  value '", name, "': ", size >> 10, " KiB");
  return batch;
}

nlohmann::json options_json(const SensitivityOptions& o, int64_t samples) {
  nlohmann::json j = {{"metric", o.metric},
                      {"bits", o.bits},
                      {"act_bits", o.act_bits},
                      {"samples", samples},
                      {"batch_size", o.batch_size},
                      {"seed", o.seed},
                      {"label_free", o.label_free},
                      {"output", o.output},
                      {"weight_scheme", o.weight_scheme},
                      {"weight_scale", o.weight_scale}};
  if (o.metric == "hessian") {
    j["probe"] = o.probe;
    j["min_probes"] = o.min_probes;
    j["max_probes"] = o.max_probes;
    j["tolerance"] = o.tolerance;
    j["granularity"] = o.granularity;
  }
  if (o.metric == "orthogonality") j["beta"] = o.beta;
  return j;
}

SensitivityResult run_sensitivity(const SensitivityContext& c) {
  const MetricInfo& metric = find_metric(c.options.metric);
  SensitivityResult r = metric.run(c);
  r.metric = metric.name;
  MPQ_ASSERT(r.layers.size() == c.layers.size(), "metric ", metric.name, " returned ",
             r.layers.size(), " layers for ", c.layers.size());
  for (size_t i = 0; i < c.layers.size(); ++i) {
    LayerSensitivity& l = r.layers[i];
    l.name = c.layers[i].name;
    l.op = c.layers[i].op;
    l.params = c.graph.initializers.at(c.layers[i].weight).numel();
    l.group = c.groups[i];
  }
  r.info["options"] = options_json(c.options, std::min<int64_t>(c.options.samples, c.data->size()));
  return r;
}

namespace {

nlohmann::json bits_json(const std::vector<BitSensitivity>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& b : v) {
    a.push_back(
        {{"bits", b.bits}, {"omega", b.omega}, {"std_error", b.std_error}, {"parts", b.parts}});
  }
  return a;
}

std::vector<BitSensitivity> bits_from_json(const nlohmann::json& a, const std::string& where) {
  MPQ_CHECK(a.is_array(), where, ": expected an array");
  std::vector<BitSensitivity> v;
  for (const auto& e : a) {
    MPQ_CHECK(e.is_object() && e.contains("bits") && e.contains("omega"), where,
              ": expected entries with \"bits\" and \"omega\"");
    BitSensitivity b;
    b.bits = e.at("bits").get<int>();
    b.omega = e.at("omega").get<double>();
    b.std_error = e.value("std_error", 0.0);
    b.parts = e.value("parts", nlohmann::json::object());
    v.push_back(b);
  }
  return v;
}

}  // namespace

nlohmann::json to_json(const SensitivityResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers) {
    nlohmann::json j = {{"name", l.name},
                        {"op", l.op},
                        {"params", l.params},
                        {"group", l.group},
                        {"weight", bits_json(l.weight)}};
    if (!l.act.empty()) j["act"] = bits_json(l.act);
    if (!l.extra.empty()) j["extra"] = l.extra;
    layers.push_back(j);
  }
  // Tied groups: their members' Omega summed per candidate (std errors in quadrature), for
  // allocators that give a group one bit width.
  std::map<int64_t, nlohmann::json> groups;
  for (const auto& l : r.layers) {
    nlohmann::json& g = groups[l.group];
    if (g.is_null()) {
      g = {
          {"group", l.group}, {"layers", nlohmann::json::array()}, {"weight", bits_json(l.weight)}};
      for (auto& b : g["weight"]) {
        b.erase("parts");
        b["std_error"] = b["std_error"].get<double>() * b["std_error"].get<double>();
      }
    } else {
      for (size_t k = 0; k < l.weight.size() && k < g["weight"].size(); ++k) {
        nlohmann::json& b = g["weight"][k];
        b["omega"] = b["omega"].get<double>() + l.weight[k].omega;
        b["std_error"] =
            b["std_error"].get<double>() + l.weight[k].std_error * l.weight[k].std_error;
      }
    }
    g["layers"].push_back(l.name);
  }
  nlohmann::json group_list = nlohmann::json::array();
  for (auto& [id, g] : groups) {
    for (auto& b : g["weight"]) b["std_error"] = std::sqrt(b["std_error"].get<double>());
    group_list.push_back(g);
  }
  return {{"format", "mpq.sensitivity"},
          {"version", 1},
          {"metric", r.metric},
          {"groups", group_list},
          {"info", r.info},
          {"layers", layers},
          {"extra", r.extra}};
}

SensitivityResult sensitivity_from_json(const nlohmann::json& j, const std::string& source) {
  MPQ_CHECK(j.is_object() && j.value("format", "") == "mpq.sensitivity", source,
            ": expected an mpq sensitivity file (\"format\": \"mpq.sensitivity\")");
  MPQ_CHECK(j.value("version", 0) == 1, source, ": expected version 1, found ",
            j.value("version", 0));
  SensitivityResult r;
  r.metric = j.value("metric", "");
  r.info = j.value("info", nlohmann::json::object());
  r.extra = j.value("extra", nlohmann::json::object());
  MPQ_CHECK(j.contains("layers") && j.at("layers").is_array(), source, ": expected \"layers\"");
  for (const auto& e : j.at("layers")) {
    LayerSensitivity l;
    MPQ_CHECK(e.is_object() && e.contains("name"), source, ": a layer without \"name\"");
    l.name = e.at("name").get<std::string>();
    std::string where = source + ": layer '" + l.name + "'";
    l.op = e.value("op", "");
    l.params = e.value("params", int64_t(0));
    l.group = e.value("group", int64_t(0));
    MPQ_CHECK(e.contains("weight"), where, ": expected \"weight\"");
    l.weight = bits_from_json(e.at("weight"), where + ": weight");
    if (e.contains("act")) l.act = bits_from_json(e.at("act"), where + ": act");
    l.extra = e.value("extra", nlohmann::json::object());
    r.layers.push_back(std::move(l));
  }
  return r;
}

SensitivityResult load_sensitivity(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    MPQ_FAIL(path, ": not valid JSON: ", e.what());
  }
  return sensitivity_from_json(j, path);
}

}  // namespace mpq
