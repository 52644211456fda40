// The `delta-loss` metric (sensitivity.h, the measured truth the metrics of methods.md §1-§4 are
// judged against) and measure_config. One float pass over the samples caches the reference logits
// (and, with act_bits, each layer's input range); every (layer, bits) is then one pass over the
// same samples with that layer's weight replaced through an Executor weight hook, or with that
// layer's input fake-quantized through a value hook on an Identity node in front of that layer
// alone (prepare_graph), so layers reading the same tensor are not quantized with it.
// Cost: (1 + L (|bits| + |act_bits|)) forward passes over the samples.
#include "sensitivity/delta_loss.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "quant/patches.h"
#include "quant/plan.h"
#include "quant/ptq.h"
#include "quant/scheme.h"

namespace mpq {
namespace {

// dW tensors kept between calls (measure_config evaluates many configurations of one context).
constexpr int64_t kMaxCachedDeltaBytes = int64_t(256) << 20;

// The float model on the context's samples.
struct FloatPass {
  std::vector<at::Tensor> logits;  // per batch, float64 outputs ([B, classes] for class scores)
  double loss = 0;                 // mean over samples
  int64_t samples = 0;
  std::vector<std::pair<double, double>> act_range;  // per layer [min, max]; empty unless asked
};

struct Measure {
  double loss = 0, top1 = 0, kl = 0, sqnr_db = 0;
  bool labelled = false;
  // Other outputs than class scores (output_kind.h): argmax agreement or cosine similarity.
  OutputKind kind = OutputKind::kScores;
  bool has_kl = false, has_agreement = false, has_cosine = false;
  double agreement = 0, cosine = 0;
};

// The graph with every layer reading a weight name of its own, so that a weight hook reaches one
// layer only even where the model ties one tensor to several nodes (the tensor stays shared).
struct UntiedGraph {
  Graph graph;
  std::vector<std::string> weight;  // per layer, the name to hook
};

UntiedGraph untie_weights(const SensitivityContext& c) {
  UntiedGraph u{c.graph, {}};
  for (const auto& l : c.layers) {
    std::string name = l.weight;
    if (c.graph.consumers(l.weight).size() > 1 || c.graph.is_graph_output(l.weight)) {
      name = l.weight + "/" + l.name;
      while (u.graph.is_initializer(name)) name += "_";
      u.graph.initializers[name] = c.graph.initializers.at(l.weight);
      u.graph.nodes[size_t(l.node)].inputs[size_t(l.weight_input)] = name;
    }
    u.weight.push_back(name);
  }
  return u;
}

at::Tensor run_logits(const Executor& ex, const Batch& b, OutputKind kind) {
  at::Tensor z = ex.run({b.x})[0];
  MPQ_CHECK(z.dim() >= 1 && z.size(0) == b.x.size(0), ex.graph().source, ": expected the batch (",
            b.x.size(0), ") as the first dimension of the first output, found shape ", z.sizes());
  // Class scores as [batch, classes]; other kinds keep their axes (steps, channels).
  if (kind == OutputKind::kScores) z = z.reshape({z.size(0), -1});
  // float64: a layer at 8 or 16 bits moves the loss by less than float32 resolves.
  return z.to(at::kDouble);
}

// The float pass; with `act`, also the min and max of every layer's input (hooks on a prepared
// graph's Identity outputs, which leave the logits unchanged).
FloatPass float_pass(const SensitivityContext& c, const SampleBatches& batches, bool act) {
  FloatPass fp;
  Graph prepared;
  std::unique_ptr<Executor> ex;
  if (act) {
    prepared = prepare_graph(c.graph, uniform_plan(c.graph, 8, 8), /*fold_bn=*/false);
    ex = std::make_unique<Executor>(prepared);
    fp.act_range.assign(c.layers.size(), {std::numeric_limits<double>::infinity(),
                                          -std::numeric_limits<double>::infinity()});
    for (size_t i = 0; i < c.layers.size(); ++i) {
      auto* range = &fp.act_range[i];
      ex->set_value_hook(layer_input_value(c.layers[i].name),
                         [range](const std::string&, const at::Tensor& x) {
                           if (x.numel() > 0) {
                             range->first = std::min(range->first, x.min().item<double>());
                             range->second = std::max(range->second, x.max().item<double>());
                           }
                           return x;
                         });
    }
  } else {
    ex = std::make_unique<Executor>(c.graph);
  }
  c10::InferenceMode guard;
  const OutputKind kind = options_output_kind(c.options);
  for (const Batch& b : batches) {
    at::Tensor z = run_logits(*ex, b, kind);
    if (b.y.defined() && !c.options.label_free) {
      int64_t lo = b.y.min().item<int64_t>(), hi = b.y.max().item<int64_t>();
      MPQ_CHECK(lo >= 0 && hi < z.size(1), c.data->describe(), ": labels from ", lo, " to ", hi,
                " are out of range for a model with ", z.size(1), " outputs");
    }
    int64_t n = b.x.size(0);
    fp.loss += sensitivity_loss(z, b.y, z, c.options.label_free, kind).item<double>() * double(n);
    fp.samples += n;
    fp.logits.push_back(z);
  }
  MPQ_CHECK(fp.samples > 0, c.data->describe(), ": no samples to measure on");
  fp.loss /= double(fp.samples);
  return fp;
}

// One evaluation of an executor (hooks attached) against the float pass.
Measure measure(const Executor& ex, const SensitivityContext& c, const SampleBatches& batches,
                const FloatPass& fp) {
  c10::InferenceMode guard;
  Measure m;
  m.kind = options_output_kind(c.options);
  OutputComparison compare(m.kind);
  double correct = 0;
  int64_t labelled = 0;
  for (size_t k = 0; k < batches.size(); ++k) {
    const Batch b = batches.read(k);
    at::Tensor z = run_logits(ex, b, m.kind);
    const at::Tensor& ref = fp.logits[k];
    double n = double(b.x.size(0));
    m.loss += sensitivity_loss(z, b.y, ref, c.options.label_free, m.kind).item<double>() * n;
    if (b.y.defined() && m.kind == OutputKind::kScores) {
      correct += z.argmax(1).eq(b.y).sum().item<double>();
      labelled += b.x.size(0);
    }
    compare.add(z, ref);
  }
  double total = double(fp.samples);
  m.loss /= total;
  m.kl = compare.kl / total;
  m.has_kl = compare.has_kl;
  m.has_agreement = compare.has_agreement;
  m.agreement = compare.agreement / total;
  m.has_cosine = compare.has_cosine;
  m.cosine = compare.cosine / total;
  m.labelled = labelled > 0;
  if (m.labelled) m.top1 = correct / double(labelled);
  m.sqnr_db = compare.sqnr_db();
  return m;
}

nlohmann::json finite_or_inf(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(v > 0 ? "inf" : "-inf");
}

BitSensitivity to_bit(int bits, const Measure& m, const FloatPass& fp) {
  BitSensitivity s;
  s.bits = bits;
  s.omega = m.loss - fp.loss;
  if (m.kind == OutputKind::kScores) {
    s.parts = {{"loss", m.loss}, {"kl", m.kl}, {"sqnr_db", finite_or_inf(m.sqnr_db)}};
  } else {
    s.parts = {{"loss", m.loss}, {"sqnr_db", finite_or_inf(m.sqnr_db)}};
    if (m.has_kl) s.parts["kl"] = m.kl;
    if (m.has_agreement) s.parts["agreement"] = m.agreement;
    if (m.has_cosine) s.parts["cosine"] = m.cosine;
  }
  if (m.labelled) s.parts["top1"] = m.top1;
  return s;
}

void check_data(const SensitivityContext& c, const char* what) {
  MPQ_CHECK(c.data, what, " needs data (--data)");
  MPQ_CHECK(c.options.label_free || c.data->has_labels(), what, " needs labels and data ",
            c.data->describe(), " has none: give labels or use --label-free");
}

std::string weight_key(const QuantLayer& l, int bits) {
  return l.name + "/w" + std::to_string(bits);
}
std::string act_key(const QuantLayer& l, int bits) { return l.name + "/a" + std::to_string(bits); }

nlohmann::json bit_json(const BitSensitivity& s) {
  return {{"omega", s.omega}, {"parts", s.parts}};
}

// A measurement of an earlier run, if `done` holds a well-formed one for `key`.
bool resumed_bit(const nlohmann::json& done, const std::string& key, int bits,
                 BitSensitivity* out) {
  auto it = done.find(key);
  if (it == done.end() || !it->is_object() || !it->contains("omega") ||
      !it->at("omega").is_number() || !it->contains("parts") || !it->at("parts").is_object())
    return false;
  out->bits = bits;
  out->omega = it->at("omega").get<double>();
  out->parts = it->at("parts");
  return true;
}

constexpr const char* kResumeFormat = "mpq.delta-loss.partial";

// What identifies the float pass a resume state was measured against: label-free, the float loss
// is 0 whatever the model, so the logits' sums take part too.
nlohmann::json reference_json(const FloatPass& fp) {
  double sum = 0, square = 0;
  for (const auto& z : fp.logits) {
    sum += z.sum().item<double>();
    square += z.square().sum().item<double>();
  }
  return {{"samples", fp.samples}, {"loss", fp.loss}, {"logit_sum", sum}, {"logit_square", square}};
}

bool same_reference(const nlohmann::json& a, const nlohmann::json& b) {
  if (!a.is_object() || a.size() != b.size()) return false;
  for (const auto& [name, value] : b.items()) {
    if (!a.contains(name) || !a.at(name).is_number()) return false;
    double x = a.at(name).get<double>(), y = value.get<double>();
    if (std::abs(x - y) > 1e-9 * std::max(1.0, std::abs(y))) return false;
  }
  return true;
}

// The measurements of an earlier run to keep: none when there is no state, or when it was
// measured against another float pass (another model, data or options).
nlohmann::json resumed_done(const ResumeState& resume, const nlohmann::json& reference) {
  const nlohmann::json& s = resume.state;
  if (s.is_null()) return nlohmann::json::object();
  bool valid = s.is_object() && s.value("format", "") == kResumeFormat && s.contains("done") &&
               s.at("done").is_object() && s.contains("reference");
  if (!valid) {
    log_info("warning: delta-loss: ignoring a resume state that is not ", kResumeFormat);
    return nlohmann::json::object();
  }
  if (!same_reference(s.at("reference"), reference)) {
    log_info("warning: delta-loss: ignoring a resume state measured against another float model, ",
             "data or options");
    return nlohmann::json::object();
  }
  return s.at("done");
}

}  // namespace

SensitivityResult delta_loss_sensitivity(const SensitivityContext& c) {
  const SensitivityOptions& o = c.options;
  check_data(c, "delta-loss");
  SampleBatches batches(*c.data, o,
                        batch_for_budget(c.graph, *c.data, o, false, 2.0, "delta-loss"));
  const bool act = !o.act_bits.empty();
  FloatPass fp = float_pass(c, batches, act);
  const nlohmann::json reference = reference_json(fp);
  nlohmann::json done = resumed_done(c.resume, reference);

  UntiedGraph untied = untie_weights(c);
  Executor wex(untied.graph);
  Graph prepared;
  std::unique_ptr<Executor> aex;
  if (act) {
    prepared = prepare_graph(c.graph, uniform_plan(c.graph, 8, 8), /*fold_bn=*/false);
    aex = std::make_unique<Executor>(prepared);
  }
  const SchemeInfo& act_scheme = find_scheme("affine-tensor");

  int64_t total = int64_t(c.layers.size() * (o.bits.size() + o.act_bits.size()));
  Progress progress("delta-loss", o.progress ? total : 0);
  if (!o.progress) progress.finish();

  SensitivityResult r;
  r.metric = "delta-loss";
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const QuantLayer& layer = c.layers[i];
    LayerSensitivity ls;
    bool measured = false;
    for (int b : o.bits) {
      std::string key = weight_key(layer, b);
      BitSensitivity s;
      if (resumed_bit(done, key, b, &s)) {
        ls.weight.push_back(s);
      } else {
        at::Tensor delta;
        {
          c10::InferenceMode guard;
          delta = delta_weight(c.graph, layer, b, o);
        }
        wex.set_weight_hook(untied.weight[i],
                            [delta](const std::string&, const at::Tensor& w) { return w + delta; });
        ls.weight.push_back(to_bit(b, measure(wex, c, batches, fp), fp));
        wex.clear_hooks();
        done[key] = bit_json(ls.weight.back());
        measured = true;
      }
      if (o.progress) progress.advance(1, layer.name);
    }
    for (int a : o.act_bits) {
      std::string key = act_key(layer, a);
      BitSensitivity s;
      if (resumed_bit(done, key, a, &s)) {
        ls.act.push_back(s);
      } else {
        auto [lo, hi] = fp.act_range[i];
        QParams p = params_from_range(at::scalar_tensor(lo, at::kDouble),
                                      at::scalar_tensor(hi, at::kDouble), a, act_scheme);
        aex->set_value_hook(
            layer_input_value(layer.name),
            [p](const std::string&, const at::Tensor& x) { return fake_quantize(x, p); });
        s = to_bit(a, measure(*aex, c, batches, fp), fp);
        s.parts["range"] = {lo, hi};
        ls.act.push_back(s);
        aex->clear_hooks();
        done[key] = bit_json(ls.act.back());
        measured = true;
      }
      if (o.progress) progress.advance(1, layer.name);
    }
    if (measured && c.resume.save) {
      c.resume.save({{"format", kResumeFormat}, {"reference", reference}, {"done", done}});
    }
    r.layers.push_back(std::move(ls));
  }
  progress.finish();
  r.extra = {{"float_loss", fp.loss}, {"samples", fp.samples}};
  return r;
}

struct ConfigMeasurer::State {
  const SensitivityContext& context;
  SampleBatches batches;
  FloatPass reference;
  UntiedGraph untied;
  std::map<std::string, size_t> by_name;
  std::map<std::pair<size_t, int>, at::Tensor> deltas;  // (layer, bits) -> dW
};

ConfigMeasurer::ConfigMeasurer(const SensitivityContext& c) {
  check_data(c, "measuring a configuration");
  SampleBatches batches(*c.data, c.options,
                        batch_for_budget(c.graph, *c.data, c.options, false, 2.0, "measuring"));
  FloatPass fp = float_pass(c, batches, /*act=*/false);
  state_.reset(new State{c, batches, std::move(fp), untie_weights(c), {}, {}});
  for (size_t i = 0; i < c.layers.size(); ++i) state_->by_name[c.layers[i].name] = i;
}

ConfigMeasurer::~ConfigMeasurer() = default;

ConfigMeasure ConfigMeasurer::measure(const std::map<std::string, int>& weight_bits) {
  const SensitivityContext& c = state_->context;
  Executor ex(state_->untied.graph);
  for (const auto& [name, bits] : weight_bits) {
    auto it = state_->by_name.find(name);
    MPQ_CHECK(it != state_->by_name.end(), "configuration: no quantizable layer named '", name,
              "'");
    MPQ_CHECK((bits >= 2 && bits <= 8) || bits == 16 || bits == 32, "configuration: layer '", name,
              "': expected bit widths 2-8, 16 or 32 (float), found ", bits);
    if (bits == 32) continue;
    at::Tensor& delta = state_->deltas[{it->second, bits}];
    if (!delta.defined()) {
      c10::InferenceMode guard;
      delta = delta_weight(c.graph, c.layers[it->second], bits, c.options);
    }
    ex.set_weight_hook(state_->untied.weight[it->second],
                       [delta](const std::string&, const at::Tensor& w) { return w + delta; });
  }
  Measure m = mpq::measure(ex, c, state_->batches, state_->reference);
  ConfigMeasure out;
  out.loss = m.loss;
  out.delta_loss = m.loss - state_->reference.loss;
  out.top1 = m.top1;
  out.kl = m.kl;
  out.sqnr_db = m.sqnr_db;
  return out;
}

ConfigMeasure measure_config(const SensitivityContext& c,
                             const std::map<std::string, int>& weight_bits) {
  return ConfigMeasurer(c).measure(weight_bits);
}

}  // namespace mpq
