#include "train/optimizer.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace mpq {

Optimizer::Optimizer(std::vector<Param> params, OptimizerOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
  MPQ_CHECK(options_.kind == "sgd" || options_.kind == "adamw",
            "--optimizer: expected sgd or adamw, found '", options_.kind, "'");
  MPQ_CHECK(options_.lr > 0, "--lr: expected a positive learning rate, found ", options_.lr);
  slot1_.resize(params_.size());
  slot2_.resize(params_.size());
}

void Optimizer::zero_grad() {
  for (auto& p : params_)
    if (p.tensor.grad().defined()) p.tensor.mutable_grad().zero_();
}

void Optimizer::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const auto& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor p = params_[i].tensor;
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    double wd = params_[i].decay ? o.weight_decay : 0.0;
    if (o.kind == "sgd") {
      if (wd != 0) g = g.add(p, wd);
      if (o.momentum != 0) {
        if (!slot1_[i].defined())
          slot1_[i] = g.clone();
        else
          slot1_[i].mul_(o.momentum).add_(g);
        g = o.nesterov ? g.add(slot1_[i], o.momentum) : slot1_[i];
      }
      p.add_(g, -lr);
    } else {
      if (wd != 0) p.mul_(1 - lr * wd);
      if (!slot1_[i].defined()) {
        slot1_[i] = at::zeros_like(p);
        slot2_[i] = at::zeros_like(p);
      }
      slot1_[i].mul_(o.beta1).add_(g, 1 - o.beta1);
      slot2_[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
      double c1 = 1 - std::pow(o.beta1, double(steps_)), c2 = 1 - std::pow(o.beta2, double(steps_));
      at::Tensor denom = (slot2_[i] / c2).sqrt_().add_(o.eps);
      p.addcdiv_(slot1_[i], denom, -lr / c1);
    }
  }
}

std::map<std::string, at::Tensor> Optimizer::state() const {
  std::map<std::string, at::Tensor> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (slot1_[i].defined()) s[params_[i].name + "/slot1"] = slot1_[i];
    if (slot2_[i].defined()) s[params_[i].name + "/slot2"] = slot2_[i];
  }
  s["step"] = at::scalar_tensor(steps_, at::kLong);
  return s;
}

void Optimizer::load_state(const std::map<std::string, at::Tensor>& s) {
  for (size_t i = 0; i < params_.size(); ++i) {
    auto a = s.find(params_[i].name + "/slot1"), b = s.find(params_[i].name + "/slot2");
    if (a != s.end()) slot1_[i] = a->second.clone();
    if (b != s.end()) slot2_[i] = b->second.clone();
  }
  auto st = s.find("step");
  if (st != s.end()) steps_ = st->second.item<int64_t>();
}

double cosine_lr(double base, int64_t step, int64_t total, int64_t warmup) {
  if (step < warmup) return base * double(step + 1) / double(warmup);
  double t = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return 0.5 * base * (1 + std::cos(M_PI * std::min(1.0, t)));
}

}  // namespace mpq
