// SDQ stage 1: bit widths learned by stochastic choice between adjacent widths (methods.md §5).
// See sdq.h.
#include "train/sdq.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "quant/weight_scale.h"
#include "train/qat_ops.h"

namespace mpq {
namespace {

std::vector<double> totals(const SdqProblem& p, const std::vector<int>& index) {
  std::vector<double> c(p.limits.size(), 0.0);
  for (size_t g = 0; g < p.groups.size(); ++g)
    for (size_t k = 0; k < c.size(); ++k) c[k] += p.groups[g].cost[size_t(index[g])][k];
  return c;
}

bool meets(const SdqProblem& p, const std::vector<int>& index) {
  std::vector<double> c = totals(p, index);
  for (size_t k = 0; k < c.size(); ++k)
    if (c[k] > p.limits[k] * (1 + 1e-9)) return false;
  return true;
}

void check_problem(const SdqProblem& p) {
  MPQ_CHECK(!p.groups.empty(), "sdq: no layer has candidate bit widths");
  MPQ_CHECK(p.budgets.size() == p.limits.size() && !p.limits.empty(), "sdq: no budget given");
  for (const auto& g : p.groups) {
    MPQ_CHECK(!g.layers.empty() && !g.bits.empty() && g.cost.size() == g.bits.size(),
              "sdq: group '", g.layers.empty() ? "" : g.layers[0], "' has no candidates");
    for (size_t i = 0; i < g.bits.size(); ++i) {
      MPQ_CHECK(i == 0 || g.bits[i] > g.bits[i - 1], "sdq: group '", g.layers[0],
                "': candidate widths must ascend");
      MPQ_CHECK(g.cost[i].size() == p.limits.size(), "sdq: group '", g.layers[0],
                "': one cost per budget expected");
    }
  }
}

// The start: the largest width w (over all candidates) with every group at its largest candidate
// <= w costing at most twice every limit, or the user's start_bits.
std::vector<int> start_index(const SdqProblem& p, int start_bits, int* chosen) {
  std::vector<int> widths;
  for (const auto& g : p.groups) widths.insert(widths.end(), g.bits.begin(), g.bits.end());
  std::sort(widths.rbegin(), widths.rend());
  widths.erase(std::unique(widths.begin(), widths.end()), widths.end());
  auto at_width = [&](int w) {
    std::vector<int> index(p.groups.size(), 0);
    for (size_t g = 0; g < p.groups.size(); ++g)
      for (size_t i = 0; i < p.groups[g].bits.size(); ++i)
        if (p.groups[g].bits[i] <= w) index[g] = int(i);
    return index;
  };
  if (start_bits > 0) {
    *chosen = start_bits;
    return at_width(start_bits);
  }
  for (int w : widths) {
    std::vector<double> c = totals(p, at_width(w));
    bool ok = true;
    for (size_t k = 0; k < c.size(); ++k) ok = ok && c[k] <= 2 * p.limits[k];
    if (ok) {
      *chosen = w;
      return at_width(w);
    }
  }
  *chosen = widths.back();
  return at_width(widths.back());
}

}  // namespace

SdqResult sdq_search(const Graph& model, const SdqProblem& p, const Dataset& train_data,
                     const Dataset& calibration, const SdqOptions& o) {
  check_problem(p);
  MPQ_CHECK(o.threshold > 0 && o.threshold < o.beta_init && o.beta_init < 1,
            "--sdq-threshold: expected 0 < threshold < beta_init (", o.beta_init, "), found ",
            o.threshold);
  MPQ_CHECK(o.max_epochs > 0, "--sdq-epochs: expected a positive number, found ", o.max_epochs);
  MPQ_CHECK(meets(p, std::vector<int>(p.groups.size(), 0)),
            "sdq: the budgets cannot be met even with every layer at its lowest width");
  const auto start_time = std::chrono::steady_clock::now();
  SdqResult r;
  std::vector<int> index = start_index(p, o.start_bits, &r.start_bits);
  const size_t groups = p.groups.size();

  // The starting point: PTQ at the start widths (activation ranges, folded BN, layouts).
  Plan start;
  for (size_t g = 0; g < groups; ++g)
    for (const auto& name : p.groups[g].layers) {
      LayerPlan lp;
      lp.name = name;
      lp.weight = weight_spec(p.groups[g].bits[size_t(index[g])]);
      lp.act = activation_spec(p.act_bits);
      start.layers.push_back(lp);
    }
  PtqOptions ptq = o.qat.ptq;
  ptq.progress = o.qat.train.progress;
  QatNetwork net(quantize_ptq(model, start, &calibration, ptq), /*lsq=*/false);

  // Fixed scales per candidate width (clipping by weight MSE on the starting weights), and the
  // weight hooks: the sampled mixture of the two adjacent widths.
  std::vector<at::Tensor> beta(groups), choice(groups);
  for (size_t g = 0; g < groups; ++g) {
    beta[g] = at::full({}, o.beta_init, at::kFloat).requires_grad_(true);
    choice[g] = at::ones({}, at::kFloat);
  }
  std::map<std::string, size_t> group_of;
  for (size_t g = 0; g < groups; ++g)
    for (const auto& name : p.groups[g].layers) group_of[name] = g;
  struct LayerScales {
    const QuantizedLayer* layer;
    size_t group;
    std::vector<QParams> params;  // per candidate of its group
    at::Tensor weight;            // the trained float weight (its gradient feeds the Fisher)
    at::Tensor delta_sq;          // (Q_{b_i}(W) - Q_{b_{i-1}}(W))^2 of this step (weight layout)
    at::Tensor fisher;            // running mean of batch * gradient^2 (weight layout)
  };
  std::vector<LayerScales> scales;
  for (const QuantizedLayer& ql : net.model().layers) {
    auto it = group_of.find(ql.layer.name);
    if (it == group_of.end() || !ql.weight_quantized) continue;
    LayerScales ls{&ql, it->second, {}, net.model().graph.initializers.at(ql.layer.weight), {}, {}};
    at::Tensor rows = to_rows(ls.weight.detach(), ql.layout);
    WeightScaleOptions ws;
    ws.method = "mse";
    for (int b : p.groups[it->second].bits)
      ls.params.push_back(weight_params(rows, b, ql.plan.weight.info(), ws));
    scales.push_back(std::move(ls));
  }
  for (LayerScales& ls : scales) {
    LayerScales* l = &ls;
    const int* current = &index[ls.group];
    const at::Tensor* h = &choice[ls.group];
    net.executor().set_weight_hook(
        ls.layer->layer.weight, [l, current, h](const std::string&, const at::Tensor& w) {
          at::Tensor rows = to_rows(w, l->layer->layout);
          const int i = *current;
          at::Tensor high = fake_quantize(rows, l->params[size_t(i)]);
          if (i == 0) return from_rows(high, l->layer->layout);
          at::Tensor low = fake_quantize(rows, l->params[size_t(i - 1)]);
          at::Tensor delta = high - low;
          l->delta_sq = from_rows(delta.detach().square(), l->layer->layout);
          return from_rows(low + *h * delta, l->layer->layout);
        });
  }

  const TrainOptions& t = o.qat.train;
  Executor teacher(model);
  const bool distil = o.qat.kd_weight > 0;
  Optimizer opt(net.params(), t.optimizer);
  DataLoader loader(train_data, t.batch_size, /*shuffle=*/true, t.seed, /*drop_last=*/true);
  MPQ_CHECK(loader.num_batches() > 0, train_data.describe(), ": fewer samples than one batch (",
            t.batch_size, ")");
  const int64_t steps_per_epoch = loader.num_batches();
  const int64_t total_steps = steps_per_epoch * o.max_epochs;
  at::manual_seed(t.seed);
  double lambda = o.cost_weight;
  std::vector<double> velocity(groups, 0.0);
  // Group g takes its next lower width for good; its beta restarts.
  auto drop = [&](size_t g, bool forced) {
    const auto& bits = p.groups[g].bits;
    r.drops.push_back({r.steps, p.groups[g].layers[0], bits[size_t(index[g])],
                       bits[size_t(index[g] - 1)], forced});
    --index[g];
    at::NoGradGuard no_grad;
    beta[g].fill_(o.beta_init);
    velocity[g] = 0;
  };
  // The second-order part of the straight-through estimate. The loss difference that beta's
  // gradient stands for, f(1) - f(0) with f(h) = L(low + h delta), is f'(1) - c = f'(0) + c for a
  // quadratic f, c = delta' H delta / 2; the straight-through gradient gives f'(h) at the sampled
  // h only, so c is subtracted (h = 1) or added (h = 0), with H the diagonal empirical Fisher:
  // a running mean of batch * (dL/dW)^2, the batch loss being a mean over the batch.
  constexpr double kFisherDecay = 0.95;
  int64_t fisher_steps = 0;
  auto second_order = [&]() {
    at::Tensor correction = at::zeros({}, at::kFloat);
    if (o.curvature <= 0 || fisher_steps == 0) return correction;
    const double unbias = 1 / (1 - std::pow(kFisherDecay, double(fisher_steps)));
    std::vector<double> c(groups, 0.0);
    for (const LayerScales& ls : scales)
      if (index[ls.group] > 0 && ls.fisher.defined())
        c[ls.group] += 0.5 * unbias * (ls.fisher * ls.delta_sq).sum().item<double>();
    for (size_t g = 0; g < groups; ++g)
      if (index[g] > 0)
        correction = correction + curvature_correction(choice[g], o.curvature * c[g]);
    return correction;
  };
  auto update_fisher = [&]() {
    if (o.curvature <= 0) return;
    at::NoGradGuard no_grad;
    for (LayerScales& ls : scales) {
      if (index[ls.group] == 0 || !ls.weight.grad().defined()) continue;
      at::Tensor f = ls.weight.grad().square() * double(t.batch_size) * (1 - kFisherDecay);
      ls.fisher = ls.fisher.defined() ? ls.fisher.mul_(kFisherDecay).add_(f) : f;
    }
    ++fisher_steps;
  };
  bool done = meets(p, index);
  Progress progress("sdq stage 1", total_steps);
  if (!t.progress) progress.finish();
  net.executor().set_training(true);
  for (int64_t epoch = 0; epoch < o.max_epochs && !done; ++epoch) {
    at::Generator gen = at::detail::createCPUGenerator(t.seed * 1000003 + uint64_t(epoch));
    loader.start_epoch(epoch);
    Batch batch;
    while (!done && loader.next(&batch)) {
      at::Tensor x = t.augment ? augment_batch(batch.x, t.crop_padding, t.flip, gen) : batch.x;
      for (size_t g = 0; g < groups; ++g)
        choice[g] = index[g] > 0 ? st_gumbel_choice(beta[g], logistic_noise(beta[g]), o.tau)
                                 : at::ones({}, at::kFloat);
      at::Tensor teacher_logits;
      if (distil) {
        at::NoGradGuard no_grad;
        teacher_logits = teacher.run({x})[0];
      }
      at::Tensor logits = net.executor().run({x})[0];
      at::Tensor loss = qat_task_loss(logits, teacher_logits, batch, o.qat);
      // Expected cost of the budgets not met yet.
      const std::vector<double> hard = totals(p, index);
      at::Tensor penalty = at::zeros({}, at::kFloat);
      // Each group's share of the penalty per unit of beta: its cost step over the average
      // group's budget, summed over the unmet budgets.
      std::vector<double> share(groups, 0.0);
      for (size_t k = 0; k < hard.size(); ++k) {
        if (hard[k] <= p.limits[k]) continue;
        at::Tensor expected = at::zeros({}, at::kFloat);
        for (size_t g = 0; g < groups; ++g) {
          const auto& c = p.groups[g].cost;
          const size_t i = size_t(index[g]);
          if (i == 0) {
            expected = expected + c[0][k];
            continue;
          }
          expected = expected + beta[g] * c[i][k] + (1 - beta[g]) * c[i - 1][k];
          share[g] += (c[i][k] - c[i - 1][k]) * double(groups) / p.limits[k];
        }
        penalty = penalty + expected * (double(groups) / p.limits[k]);
      }
      double mean_share = 0;
      for (size_t g = 0; g < groups; ++g) mean_share += share[g] / double(groups);
      if (mean_share <= 0) mean_share = 1;
      at::Tensor objective = loss + second_order() + lambda * penalty;
      opt.zero_grad();
      for (auto& b : beta)
        if (b.grad().defined()) b.mutable_grad().zero_();
      objective.backward();
      update_fisher();
      opt.step(cosine_lr(t.optimizer.lr, r.steps, total_steps, 0));
      {
        // Gradient descent with momentum (it averages the noisy single-sample estimates).
        at::NoGradGuard no_grad;
        for (size_t g = 0; g < groups; ++g) {
          if (!beta[g].grad().defined()) continue;
          const double grad = beta[g].grad().item<double>();
          const double step = o.normalize ? grad / std::max(share[g], mean_share) : grad;
          velocity[g] = o.beta_momentum * velocity[g] + step;
          beta[g].sub_(o.beta_lr * velocity[g]).clamp_(0.01, 0.99);
        }
      }
      ++r.steps;
      lambda *= o.cost_growth;
      // Drops, lowest beta first, until the budgets hold.
      std::vector<size_t> low;
      for (size_t g = 0; g < groups; ++g)
        if (index[g] > 0 && beta[g].item<double>() < o.threshold) low.push_back(g);
      std::sort(low.begin(), low.end(), [&](size_t a, size_t b) {
        return beta[a].item<double>() < beta[b].item<double>();
      });
      for (size_t g : low) {
        drop(g, false);
        if (meets(p, index)) {
          done = true;
          r.met_by_training = true;
          break;
        }
      }
      char suffix[96];
      const std::vector<double> now = totals(p, index);
      std::snprintf(suffix, sizeof suffix, "loss %.4f, %s %.3g of %.3g, %zu drops",
                    loss.item<double>(), p.budgets[0].c_str(), now[0], p.limits[0], r.drops.size());
      if (t.progress) progress.advance(1, suffix);
    }
  }
  progress.finish();
  if (!done) {
    log_info("sdq: the budgets were not met after ", o.max_epochs,
             " epoch(s) of stage 1; dropping the layers with the lowest beta until they are");
    while (!meets(p, index)) {
      size_t best = groups;
      for (size_t g = 0; g < groups; ++g)
        if (index[g] > 0 && (best == groups || beta[g].item<double>() < beta[best].item<double>()))
          best = g;
      MPQ_ASSERT(best < groups, "every group at its lowest width but the budgets fail");
      drop(best, true);
    }
  }
  for (size_t g = 0; g < groups; ++g) {
    r.bits.push_back(p.groups[g].bits[size_t(index[g])]);
    r.beta.push_back(beta[g].item<double>());
  }
  r.cost = totals(p, index);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return r;
}

}  // namespace mpq
