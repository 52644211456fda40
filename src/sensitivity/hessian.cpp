// The `hessian` metric (methods.md §2): Hutchinson's estimator of each layer's Hessian trace with
// Hessian-vector products by double backward through the executor.
//
// Cost. A probe needs, per batch, one forward, one backward that keeps its graph, and one double
// backward (H v; "layer" probes: one per layer). The forward and the first backward do not depend
// on the probe, so probes run in chunks: per batch the gradient graph is built once and every probe
// of the chunk is applied to it, which makes a probe cost about one double backward. The chunk
// size comes from the stopping rule itself (the probes the current standard errors say are still
// needed, at most doubling the count), so little work is spent past the point where it would stop.
// Memory stays at one batch's gradient graph. Probe p of weight k is drawn from a generator seeded
// by (seed, p, k), so results do not depend on the chunking and a resumed run repeats exactly.
#include "sensitivity/hessian.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "quant/patches.h"
#include "quant/scheme.h"

namespace mpq {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The distinct weights the layers read (two layers may share one initializer).
struct Weights {
  std::vector<std::string> names;
  std::vector<size_t> of_layer;  // index into names per layer
};

Weights distinct_weights(const SensitivityContext& c) {
  Weights w;
  std::map<std::string, size_t> index;
  for (const auto& l : c.layers) {
    auto it = index.emplace(l.weight, w.names.size()).first;
    if (it->second == w.names.size()) w.names.push_back(l.weight);
    w.of_layer.push_back(it->second);
  }
  return w;
}

// Rademacher probe p for weight k: +-1 with the weight's shape and options.
at::Tensor rademacher(uint64_t seed, int64_t probe, size_t weight, const at::Tensor& like) {
  uint64_t s = splitmix64(splitmix64(splitmix64(seed) ^ uint64_t(probe)) ^ uint64_t(weight));
  at::Generator gen = at::detail::createCPUGenerator(s);
  at::Tensor v = at::randint(0, 2, like.sizes(), gen, at::kFloat);
  return v.mul_(2).sub_(1).to(like.options());
}

double dot_product(const at::Tensor& a, const at::Tensor& b) {
  return at::dot(a.reshape({-1}), b.reshape({-1})).item<double>();
}

// v * Hv summed per output channel: each channel's share of v^T H v, whose mean over probes is
// the trace of the channel's diagonal block.
std::vector<double> channel_products(const at::Tensor& v, const at::Tensor& hv, int64_t axis) {
  at::Tensor sums = to_channel_rows(v * hv, axis).sum(1).to(at::kDouble).contiguous();
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
}

// The executor with the selected weights as leaves that require grad; prepare() runs a batch and
// keeps the gradient's graph, hvp() applies the Hessian of that batch's loss to a probe.
class HessianEngine {
 public:
  HessianEngine(const SensitivityContext& c, const Weights& weights,
                const std::vector<bool>& active)
      : c_(c), ex_(c.graph), leaves_(weights.names.size()) {
    for (size_t k = 0; k < weights.names.size(); ++k) {
      if (!active[k]) continue;
      // A view of the initializer (no copy) that autograd treats as a leaf.
      leaves_[k] = c.graph.initializers.at(weights.names[k]).detach().requires_grad_(true);
      at::Tensor leaf = leaves_[k];
      ex_.set_weight_hook(weights.names[k],
                          [leaf](const std::string&, const at::Tensor&) { return leaf; });
    }
  }

  // Forward and gradient of the batch's mean loss; returns the loss.
  double prepare(const Batch& batch) {
    release();
    auto start = Clock::now();
    c10::InferenceMode grad_mode(false);  // autograd on, even inside inference
    at::Tensor logits = ex_.run({batch.x})[0];
    // The weights are the float model's, so its logits are the label-free reference.
    at::Tensor reference = c_.options.label_free ? logits.detach() : at::Tensor();
    at::Tensor loss = sensitivity_loss(logits, batch.y, reference, c_.options.label_free,
                                       options_output_kind(c_.options));
    std::vector<at::Tensor> inputs;
    for (const auto& leaf : leaves_)
      if (leaf.defined()) inputs.push_back(leaf);
    grads_.assign(leaves_.size(), at::Tensor());
    if (!inputs.empty() && loss.requires_grad()) {
      std::vector<at::Tensor> grads = torch::autograd::grad({loss}, inputs, {}, true, true, true);
      for (size_t k = 0, i = 0; k < leaves_.size(); ++k)
        if (leaves_[k].defined()) grads_[k] = grads[i++];
    }
    gradient_seconds += seconds_since(start);
    return loss.item<double>();
  }

  // The block H_SS v_S of the prepared batch's Hessian, S = `weights` (v: one tensor each); an
  // entry stays undefined where H_SS v_S is zero.
  std::vector<at::Tensor> hvp(const std::vector<size_t>& weights,
                              const std::vector<at::Tensor>& v) {
    auto start = Clock::now();
    c10::InferenceMode grad_mode(false);  // autograd on, even inside inference
    std::vector<at::Tensor> outputs, grad_outputs, inputs;
    for (size_t i = 0; i < weights.size(); ++i) {
      const at::Tensor& g = grads_.at(weights[i]);
      MPQ_ASSERT(leaves_[weights[i]].defined(), "weight ", weights[i], " is not a leaf");
      inputs.push_back(leaves_[weights[i]]);
      // A gradient that does not depend on the weights (a loss linear in them) has H = 0 there.
      if (g.defined() && g.requires_grad()) {
        outputs.push_back(g);
        grad_outputs.push_back(v[i]);
      }
    }
    std::vector<at::Tensor> hv(weights.size());
    if (!outputs.empty())
      hv = torch::autograd::grad(outputs, inputs, grad_outputs, true, false, true);
    hvp_seconds += seconds_since(start);
    return hv;
  }

  void release() { grads_.clear(); }

  double gradient_seconds = 0;
  double hvp_seconds = 0;

 private:
  const SensitivityContext& c_;
  Executor ex_;
  std::vector<at::Tensor> leaves_;  // per weight, undefined where not active
  std::vector<at::Tensor> grads_;   // per weight, with their graph
};

// Mean and standard error of the mean of column k of values[probe][k]; one probe: error 0.
std::pair<double, double> column_stats(const std::vector<std::vector<double>>& values, size_t k) {
  double n = double(values.size()), mean = 0, ss = 0;
  for (const auto& row : values) mean += row[k];
  mean /= n;
  if (values.size() < 2) return {mean, 0.0};
  for (const auto& row : values) ss += (row[k] - mean) * (row[k] - mean);
  return {mean, std::sqrt(ss / (n - 1) / n)};
}

// The probe count to reach next: min_probes first; then the count at which every weight's error
// would meet the tolerance, at least one more and at most double the current count.
int64_t next_probe_count(const std::vector<std::vector<double>>& values, size_t weights,
                         const SensitivityOptions& o) {
  int64_t done = int64_t(values.size());
  if (done < o.min_probes) return o.min_probes;
  if (done < 2) return std::min<int64_t>(2, o.max_probes);
  double need = 0;
  for (size_t k = 0; k < weights; ++k) {
    auto [mean, se] = column_stats(values, k);
    double allowed = o.tolerance * std::abs(mean);
    if (se <= allowed) continue;
    need = allowed > 0 ? std::max(need, double(done) * (se / allowed) * (se / allowed))
                       : std::numeric_limits<double>::infinity();
  }
  if (need == 0) return done;  // converged
  int64_t target = std::isfinite(need) ? int64_t(std::ceil(need)) : 2 * done;
  return std::min({std::max(target, done + 1), 2 * done, o.max_probes});
}

nlohmann::json resume_header(const SensitivityContext& c, size_t weights) {
  const SensitivityOptions& o = c.options;
  return {{"metric", "hessian"},
          {"probe", o.probe},
          {"seed", o.seed},
          {"weights", weights},
          {"label_free", o.label_free},
          {"output", o.output},
          {"samples", std::min<int64_t>(o.samples, c.data->size())},
          {"batch_size", o.batch_size},
          {"channels", true}};
}

}  // namespace

SensitivityResult hessian_sensitivity(const SensitivityContext& c) {
  const SensitivityOptions& o = c.options;
  MPQ_CHECK(c.data, "hessian: no data");
  auto start = Clock::now();
  Weights weights = distinct_weights(c);
  const size_t nw = weights.names.size();
  SampleBatches batches(*c.data, o, batch_for_budget(c.graph, *c.data, o, true, 2.5, "hessian"));
  const int64_t n = batches.samples();

  // values[p][k] = v_k^T (H v)_k of probe p for weight k, H the Hessian of the mean loss.
  std::vector<std::vector<double>> values;
  // channel_values[p][k][c]: probe p's v * Hv of weight k summed over output channel c.
  std::vector<std::vector<std::vector<double>>> channel_values;
  nlohmann::json header = resume_header(c, nw);
  double loss = 0, previous_hvp = 0, previous_gradient = 0;
  if (!c.resume.state.is_null()) {
    const nlohmann::json& s = c.resume.state;
    MPQ_CHECK(s.is_object() && s.value("header", nlohmann::json()) == header,
              "hessian: the resume state was made with other options or another model (expected ",
              header.dump(), ", found ", s.value("header", nlohmann::json()).dump(), ")");
    values = s.at("values").get<std::vector<std::vector<double>>>();
    channel_values = s.at("channel_values").get<decltype(channel_values)>();
    loss = s.value("loss", 0.0);
    previous_hvp = s.value("hvp_seconds", 0.0);
    previous_gradient = s.value("gradient_seconds", 0.0);
  }

  HessianEngine engine(c, weights, std::vector<bool>(nw, true));
  std::optional<Progress> progress;
  if (o.progress) {
    progress.emplace("hessian", o.max_probes);
    progress->advance(int64_t(values.size()));
  }
  std::vector<size_t> all(nw);
  for (size_t k = 0; k < nw; ++k) all[k] = k;
  std::vector<at::Tensor> like(nw);
  for (size_t k = 0; k < nw; ++k) like[k] = c.graph.initializers.at(weights.names[k]);
  std::vector<int64_t> axis(nw, 0);
  for (size_t i = 0; i < c.layers.size(); ++i) {
    axis[weights.of_layer[i]] = output_channel_axis(c.graph, c.layers[i]);
  }

  bool prepared = false;  // one batch: its graph serves every chunk
  for (;;) {
    const int64_t done = int64_t(values.size());
    const int64_t target = next_probe_count(values, nw, o);
    if (done >= o.max_probes || target <= done) break;
    std::vector<std::vector<double>> chunk(size_t(target - done), std::vector<double>(nw, 0.0));
    std::vector<std::vector<std::vector<double>>> channel_chunk(
        size_t(target - done), std::vector<std::vector<double>>(nw));
    auto add = [&](int64_t p, size_t k, double weight, const at::Tensor& v, const at::Tensor& hv) {
      chunk[size_t(p - done)][k] += weight * dot_product(v, hv);
      std::vector<double> ch = channel_products(v, hv, axis[k]);
      std::vector<double>& acc = channel_chunk[size_t(p - done)][k];
      acc.resize(ch.size(), 0.0);
      for (size_t j = 0; j < ch.size(); ++j) acc[j] += weight * ch[j];
    };
    double chunk_loss = 0;
    for (const Batch& batch : batches) {
      const double weight = double(batch.x.size(0)) / double(n);
      if (!prepared) chunk_loss += weight * engine.prepare(batch);
      prepared = batches.size() == 1;
      for (int64_t p = done; p < target; ++p) {
        std::vector<at::Tensor> v(nw);
        for (size_t k = 0; k < nw; ++k) v[k] = rademacher(o.seed, p, k, like[k]);
        if (o.probe == "global") {
          std::vector<at::Tensor> hv = engine.hvp(all, v);
          for (size_t k = 0; k < nw; ++k)
            if (hv[k].defined()) add(p, k, weight, v[k], hv[k]);
        } else {
          for (size_t k = 0; k < nw; ++k) {
            std::vector<at::Tensor> hv = engine.hvp({k}, {v[k]});
            if (hv[0].defined()) add(p, k, weight, v[k], hv[0]);
          }
        }
      }
    }
    if (done == 0) loss = chunk_loss;
    values.insert(values.end(), chunk.begin(), chunk.end());
    channel_values.insert(channel_values.end(), channel_chunk.begin(), channel_chunk.end());
    if (progress) progress->advance(target - done);
    if (c.resume.save) {
      c.resume.save({{"header", header},
                     {"values", values},
                     {"channel_values", channel_values},
                     {"loss", loss},
                     {"gradient_seconds", previous_gradient + engine.gradient_seconds},
                     {"hvp_seconds", previous_hvp + engine.hvp_seconds}});
    }
  }
  engine.release();
  if (progress) progress->finish();

  SensitivityResult r;
  const int64_t probes = int64_t(values.size());
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const QuantLayer& layer = c.layers[i];
    auto [trace, trace_se] = column_stats(values, weights.of_layer[i]);
    const double params = double(c.graph.initializers.at(layer.weight).numel());
    LayerSensitivity l;
    const size_t k = weights.of_layer[i];
    const int64_t ax = axis[k];
    const double channels = double(like[k].size(ax));
    for (int bits : o.bits) {
      at::Tensor dw = delta_weight(c.graph, layer, bits, o);
      const double dw_sq = dw.to(at::kDouble).pow(2).sum().item<double>();
      BitSensitivity b;
      b.bits = bits;
      if (o.granularity == "channel") {
        // Per probe: sum_c (v * Hv)_c / n_c * ||dW_c||^2; Omega is its mean over probes.
        at::Tensor dw_c = to_channel_rows(dw.to(at::kDouble), ax).pow(2).sum(1).contiguous();
        const double* d = dw_c.data_ptr<double>();
        const double per_channel = params / channels;
        std::vector<std::vector<double>> samples;
        for (const auto& probe : channel_values) {
          double omega = 0;
          if (!probe[k].empty()) {
            for (int64_t j = 0; j < dw_c.numel(); ++j) omega += probe[k][size_t(j)] * d[j];
          }
          samples.push_back({omega / per_channel});
        }
        std::tie(b.omega, b.std_error) = column_stats(samples, 0);
      } else {
        b.omega = trace / params * dw_sq;
        b.std_error = trace_se / params * dw_sq;
      }
      b.parts = {{"trace", trace}, {"dw_sq", dw_sq}};
      l.weight.push_back(b);
    }
    l.extra = {{"trace", trace}, {"trace_std_error", trace_se}, {"probes", probes}};
    r.layers.push_back(std::move(l));
  }
  r.extra = {{"probes", probes},
             {"probe", o.probe},
             {"granularity", o.granularity},
             {"samples", n},
             {"loss", loss},
             {"gradient_seconds", previous_gradient + engine.gradient_seconds},
             {"hvp_seconds", previous_hvp + engine.hvp_seconds},
             {"seconds", seconds_since(start)}};
  return r;
}

HessianProduct hessian_vector_product(const SensitivityContext& c,
                                      const std::vector<at::Tensor>& probe) {
  MPQ_CHECK(c.data, "hessian: no data");
  MPQ_CHECK(probe.size() == c.layers.size(), "hessian_vector_product: expected ", c.layers.size(),
            " probe tensors (one per layer), found ", probe.size());
  Weights weights = distinct_weights(c);
  const size_t nw = weights.names.size();
  // A weight read by several layers takes the first defined probe among them.
  std::vector<at::Tensor> v(nw);
  for (size_t i = 0; i < probe.size(); ++i) {
    if (!probe[i].defined()) continue;
    const at::Tensor& w = c.graph.initializers.at(c.layers[i].weight);
    MPQ_CHECK(probe[i].sizes() == w.sizes(), "hessian_vector_product: layer '", c.layers[i].name,
              "': expected a probe of shape ", w.sizes(), ", found ", probe[i].sizes());
    size_t k = weights.of_layer[i];
    if (!v[k].defined()) v[k] = probe[i].to(w.options());
  }
  std::vector<bool> active(nw);
  std::vector<size_t> selected;
  std::vector<at::Tensor> selected_v;
  for (size_t k = 0; k < nw; ++k) {
    active[k] = v[k].defined();
    if (!active[k]) continue;
    selected.push_back(k);
    selected_v.push_back(v[k]);
  }
  HessianProduct result;
  result.hv.resize(probe.size());
  SampleBatches batches(*c.data, c.options,
                        batch_for_budget(c.graph, *c.data, c.options, true, 2.5, "hessian"));
  const int64_t n = batches.samples();
  std::vector<at::Tensor> sum(nw);
  HessianEngine engine(c, weights, active);
  for (const Batch& batch : batches) {
    const double weight = double(batch.x.size(0)) / double(n);
    result.loss += weight * engine.prepare(batch);
    if (selected.empty()) continue;
    std::vector<at::Tensor> hv = engine.hvp(selected, selected_v);
    for (size_t i = 0; i < selected.size(); ++i) {
      size_t k = selected[i];
      if (!sum[k].defined()) sum[k] = at::zeros_like(v[k]);
      if (hv[i].defined()) sum[k].add_(hv[i], weight);
    }
  }
  for (size_t i = 0; i < probe.size(); ++i)
    if (probe[i].defined()) result.hv[i] = sum[weights.of_layer[i]];
  return result;
}

}  // namespace mpq
