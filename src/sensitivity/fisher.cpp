// The `fisher` metric (methods.md §1, MPQCO): Omega_l(b) = 1/(2N) sum_n <grad_W_l loss_n,
// dW_l(b)>^2 without a per-sample loop. The layer is linear in its weight, so with y = layer(x; W)
// (bias aside) <grad_W loss_n, dW> = <d loss_n / d y_n, layer(x_n; dW)>. Per batch: one forward
// with value hooks that keep every layer's input x_l and output y_l, one backward of the summed
// per-sample losses to all y_l at once (sample n's slice of the gradient is d loss_n / d y_n, since
// samples do not mix in eval mode), then per (layer, bit) one evaluation of the layer's own kernel
// on x_l with the weight dW and no bias, and a per-sample inner product. Cost: one forward +
// backward per batch plus one layer evaluation per (layer, bit); memory: one batch's activations.
#include "sensitivity/fisher.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/op_registry.h"
#include "quant/patches.h"

namespace mpq {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The layer's node run by its own kernel with input x and weight w, bias left out.
at::Tensor apply_layer(const Graph& g, const QuantLayer& l, OpKernel kernel, const at::Tensor& x,
                       const at::Tensor& w) {
  const Node& node = g.nodes[size_t(l.node)];
  std::vector<at::Tensor> args(node.inputs.size());
  args[size_t(activation_input(l))] = x;
  args[size_t(l.weight_input)] = w;
  OpContext ctx(g, node, g.opset(), std::move(args));
  return kernel(ctx).at(0);
}

// Per (layer, bit): sums over samples of s = <grad_W loss_n, dW>, s^2 and s^4.
struct Sums {
  double s1 = 0, s2 = 0, s4 = 0;
};

nlohmann::json sums_json(const std::vector<std::vector<Sums>>& sums) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& layer : sums) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& s : layer) a.push_back({s.s1, s.s2, s.s4});
    j.push_back(a);
  }
  return j;
}

void sums_from_json(const nlohmann::json& j, std::vector<std::vector<Sums>>* sums) {
  MPQ_CHECK(j.is_array() && j.size() == sums->size(),
            "fisher: the resume state has sums for another number of layers");
  for (size_t l = 0; l < sums->size(); ++l) {
    MPQ_CHECK(j[l].is_array() && j[l].size() == (*sums)[l].size(),
              "fisher: the resume state has sums for another number of bit widths");
    for (size_t b = 0; b < (*sums)[l].size(); ++b) {
      const nlohmann::json& e = j[l][b];
      (*sums)[l][b] = {e.at(0).get<double>(), e.at(1).get<double>(), e.at(2).get<double>()};
    }
  }
}

// Probabilities are clamped before their log, as in the sequence loss (output_kind.cpp).
constexpr double kProbabilityFloor = 1e-12;

}  // namespace

at::Tensor fisher_targets(OutputKind kind, const at::Tensor& float_output, uint64_t seed,
                          uint64_t first_sample) {
  at::NoGradGuard no_grad;
  const int64_t n = float_output.size(0);
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    // Sample i's own generator: the draws do not depend on how samples are batched.
    at::Generator gen =
        at::detail::createCPUGenerator(splitmix64(seed ^ splitmix64(first_sample + uint64_t(i))));
    const at::Tensor y = float_output.narrow(0, i, 1);
    switch (kind) {
      case OutputKind::kScores:
        rows.push_back(
            at::multinomial(at::softmax(y.reshape({1, -1}).to(at::kFloat), 1), 1, false, gen)
                .reshape({1}));
        break;
      case OutputKind::kSequence: {
        // One label per step from that step's probabilities (the output itself).
        at::Tensor p = y.reshape({-1, y.size(-1)}).to(at::kFloat).clamp_min(0);
        rows.push_back(at::multinomial(p, 1, false, gen).reshape({1, -1}));
        break;
      }
      case OutputKind::kMap:
      case OutputKind::kEmbedding:
        rows.push_back(y + at::randn(y.sizes(), gen, y.options()));
        break;
      default:
        MPQ_ASSERT(false, "output kind ", int(kind), " has no Fisher targets");
    }
  }
  if (rows.empty()) return {};
  return at::cat(rows, 0).to(float_output.device());
}

at::Tensor fisher_loss(OutputKind kind, const at::Tensor& output, const at::Tensor& targets) {
  const int64_t n = output.size(0);
  switch (kind) {
    case OutputKind::kScores:
      return at::cross_entropy_loss(output.reshape({n, -1}), targets, {}, at::Reduction::Sum);
    case OutputKind::kSequence: {
      // Steps are independent given the input, so the per-step score terms of one sample are
      // uncorrelated with mean zero: the 1/sqrt(T) makes E[g g^T] the Hessian of the mean over
      // steps rather than of the sum.
      at::Tensor q = output.reshape({n, -1, output.size(-1)});
      at::Tensor picked = q.clamp_min(kProbabilityFloor).log().gather(2, targets.unsqueeze(2));
      return -picked.sum() / std::sqrt(double(q.size(1)));
    }
    case OutputKind::kMap:
    case OutputKind::kEmbedding:
      return 0.5 * (output - targets).square().sum();
  }
  MPQ_ASSERT(false, "output kind ", int(kind), " has no Fisher loss");
}

SensitivityResult fisher_sensitivity(const SensitivityContext& c) {
  const SensitivityOptions& o = c.options;
  const Graph& g = c.graph;
  MPQ_CHECK(c.data, "fisher: no data");
  auto start = Clock::now();
  const size_t nl = c.layers.size(), nb = o.bits.size();
  const OutputKind kind = options_output_kind(o);

  std::vector<std::vector<at::Tensor>> dws(nl);
  std::vector<std::vector<double>> dw_sq(nl);
  std::vector<OpKernel> kernels(nl);
  for (size_t l = 0; l < nl; ++l) {
    const QuantLayer& layer = c.layers[l];
    for (int bits : o.bits) {
      dws[l].push_back(delta_weight(g, layer, bits, o));
      dw_sq[l].push_back(dws[l].back().to(at::kDouble).pow(2).sum().item<double>());
    }
    const OpRow* row = OpRegistry::builtin().find(layer.op, g.opset());
    MPQ_CHECK(row, g.where(g.nodes[size_t(layer.node)]), ": no kernel at opset ", g.opset());
    kernels[l] = row->kernel;
  }

  // Hooks keep each layer's input and output; a value may be one layer's output and another's
  // input, or the input of several layers (a tied group), so there is one hook per value.
  Executor ex(g);
  std::vector<at::Tensor> xs(nl), ys(nl);
  std::map<std::string, std::vector<std::pair<at::Tensor*, bool>>> taps;  // bool: is an output
  for (size_t l = 0; l < nl; ++l) {
    const Node& node = g.nodes[size_t(c.layers[l].node)];
    taps[node.inputs[size_t(activation_input(c.layers[l]))]].push_back({&xs[l], false});
    taps[node.outputs.at(0)].push_back({&ys[l], true});
  }
  for (const auto& [value, targets] : taps) {
    auto keep = targets;
    ex.set_value_hook(value, [keep](const std::string&, const at::Tensor& t) {
      for (const auto& [slot, output] : keep) *slot = output ? t : t.detach();
      return t;
    });
  }

  SampleBatches batches(*c.data, o, batch_for_budget(g, *c.data, o, true, 1.2, "fisher"));
  std::vector<std::vector<Sums>> sums(nl, std::vector<Sums>(nb));
  int64_t n = 0;
  size_t first = 0;
  nlohmann::json header = {{"metric", "fisher"},
                           {"seed", o.seed},
                           {"layers", nl},
                           {"bits", o.bits},
                           {"label_free", o.label_free},
                           {"output", o.output},
                           {"samples", std::min<int64_t>(o.samples, c.data->size())},
                           {"batch_size", batches.batch_size()}};
  if (!c.resume.state.is_null()) {
    const nlohmann::json& s = c.resume.state;
    MPQ_CHECK(s.is_object() && s.value("header", nlohmann::json()) == header,
              "fisher: the resume state was made with other options or another model (expected ",
              header.dump(), ", found ", s.value("header", nlohmann::json()).dump(), ")");
    first = s.at("batches").get<size_t>();
    n = s.at("n").get<int64_t>();
    sums_from_json(s.at("sums"), &sums);
    MPQ_CHECK(first <= batches.size(), "fisher: the resume state has ", first,
              " batches done, the data has ", batches.size());
  }

  std::optional<Progress> progress;
  if (o.progress) {
    progress.emplace("fisher", int64_t(batches.size()));
    progress->advance(int64_t(first));
  }
  for (size_t bi = first; bi < batches.size(); ++bi) {
    const Batch batch = batches.read(bi);
    const int64_t size = batch.x.size(0);
    std::vector<at::Tensor> grads(nl);
    {
      c10::InferenceMode grad_mode(false);  // autograd on, even inside inference
      // The input requires grad so that every layer output joins the graph; the backward below
      // asks only for the outputs' gradients, so nothing upstream of them is computed.
      at::Tensor logits = ex.run({batch.x.detach().requires_grad_(true)})[0];
      at::Tensor loss;
      if (o.label_free) {
        // The true Fisher: targets drawn from the float model's own predictive distribution.
        loss = fisher_loss(kind, logits,
                           fisher_targets(kind, logits.detach(), o.seed, batches.first_sample(bi)));
      } else {
        loss = at::cross_entropy_loss(logits.reshape({size, -1}), batch.y, {}, at::Reduction::Sum);
      }
      std::vector<size_t> wanted;
      std::vector<at::Tensor> outputs;
      for (size_t l = 0; l < nl; ++l) {
        MPQ_CHECK(ys[l].defined() && xs[l].defined(), "fisher: layer '", c.layers[l].name,
                  "' did not run");
        MPQ_CHECK(ys[l].dim() >= 1 && ys[l].size(0) == size, "fisher: layer '", c.layers[l].name,
                  "': expected the batch (", size,
                  ") as the output's first dimension, found shape ", ys[l].sizes());
        if (!ys[l].requires_grad()) continue;  // does not depend on the data: zero gradient
        wanted.push_back(l);
        outputs.push_back(ys[l]);
      }
      if (!outputs.empty()) {
        std::vector<at::Tensor> g_out =
            torch::autograd::grad({loss}, outputs, {}, false, false, true);
        for (size_t i = 0; i < wanted.size(); ++i) grads[wanted[i]] = g_out[i];
      }
      for (auto& y : ys) y.reset();
    }
    at::NoGradGuard no_grad;
    for (size_t l = 0; l < nl; ++l) {
      if (!grads[l].defined()) continue;
      std::vector<int64_t> dims;
      for (int64_t d = 1; d < grads[l].dim(); ++d) dims.push_back(d);
      for (size_t b = 0; b < nb; ++b) {
        at::Tensor out = apply_layer(g, c.layers[l], kernels[l], xs[l], dws[l][b]);
        at::Tensor s = (grads[l] * out).sum(dims).to(at::kDouble);  // [batch]
        at::Tensor s2 = s * s;
        sums[l][b].s1 += s.sum().item<double>();
        sums[l][b].s2 += s2.sum().item<double>();
        sums[l][b].s4 += (s2 * s2).sum().item<double>();
      }
    }
    for (auto& x : xs) x.reset();
    n += size;
    if (progress) progress->advance(1);
    if (c.resume.save) {
      c.resume.save({{"header", header}, {"batches", bi + 1}, {"n", n}, {"sums", sums_json(sums)}});
    }
  }
  if (progress) progress->finish();

  SensitivityResult r;
  const double count = double(n);
  for (size_t l = 0; l < nl; ++l) {
    LayerSensitivity layer;
    for (size_t b = 0; b < nb; ++b) {
      const Sums& s = sums[l][b];
      // omega = mean(s^2) / 2; its error from the sample variance of s^2.
      const double mean_sq = s.s2 / count;
      double se = 0;
      if (n > 1) {
        double var = std::max(0.0, (s.s4 - count * mean_sq * mean_sq) / (count - 1));
        se = std::sqrt(var / count);
      }
      BitSensitivity bit;
      bit.bits = o.bits[b];
      bit.omega = 0.5 * mean_sq;
      bit.std_error = 0.5 * se;
      // mean_inner: <mean gradient, dW>, the first-order term the second-order model leaves out.
      bit.parts = {{"dw_sq", dw_sq[l][b]}, {"mean_inner", s.s1 / count}};
      layer.weight.push_back(bit);
    }
    layer.extra = {{"samples", n}};
    r.layers.push_back(std::move(layer));
  }
  r.extra = {{"samples", n},
             {"seconds", std::chrono::duration<double>(Clock::now() - start).count()}};
  return r;
}

}  // namespace mpq
