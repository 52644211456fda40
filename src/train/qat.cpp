// Quantization-aware training of a plan with distillation and bin regularization (methods.md §5
// stage 2; docs/training.md). See qat.h.
#include "train/qat.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/cpu.h"
#include "core/error.h"
#include "core/int8_format.h"
#include "core/log.h"
#include "onnx/io.h"
#include "quant/simulate.h"
#include "train/qat_ops.h"

namespace mpq {

QatNetwork::QatNetwork(QuantizedModel model, bool lsq)
    : model_(std::make_unique<QuantizedModel>(std::move(model))), lsq_(lsq) {
  // Own copies: training updates weights and BatchNormalization statistics in place.
  for (auto& [name, t] : model_->graph.initializers) t = t.detach().clone();
  const std::vector<std::string> trainable = trainable_parameters(model_->graph);
  for (const auto& name : trainable) model_->graph.initializers.at(name).requires_grad_(true);
  executor_ = std::make_unique<Executor>(model_->graph);
  Executor& ex = *executor_;
  weight_scale_.resize(model_->layers.size());
  act_scale_.resize(model_->layers.size());
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    const QuantizedLayer& ql = model_->layers[i];
    MPQ_CHECK(!ql.multipoint, "qat: layer '", ql.layer.name,
              "' is multipoint; quantization-aware training trains plain bit widths (remove its "
              "extra_points from the plan)");
    if (ql.weight_quantized) {
      const QuantizedLayer* l = &ql;
      if (lsq) {
        at::Tensor s = ql.weight_params.scale.detach().clone().requires_grad_(true);
        weight_scale_[i] = s;
        double g = 1.0 / std::sqrt(double(ql.layout.row_size) * double(ql.weight_params.qmax));
        ex.set_weight_hook(ql.layer.weight, [l, s, g](const std::string&, const at::Tensor& w) {
          const QParams& p = l->weight_params;
          at::Tensor rows = to_rows(w, l->layout);
          return from_rows(
              lsq_fake_quantize(rows, s.clamp_min(1e-8), p.zero_point, p.qmin, p.qmax, g),
              l->layout);
        });
      } else {
        ex.set_weight_hook(ql.layer.weight, [l](const std::string&, const at::Tensor& w) {
          return from_rows(fake_quantize(to_rows(w, l->layout), l->weight_params), l->layout);
        });
      }
    }
    if (ql.act_quantized) {
      QParams p = ql.act_params;
      if (lsq) {
        at::Tensor s = p.scale.detach().clone().requires_grad_(true);
        act_scale_[i] = s;
        ex.set_value_hook(ql.act_value, [p, s](const std::string&, const at::Tensor& x) {
          double features = x.dim() > 0 && x.size(0) > 0 ? double(x.numel() / x.size(0)) : 1.0;
          double g = 1.0 / std::sqrt(features * double(p.qmax));
          return lsq_fake_quantize(x, s.clamp_min(1e-8), p.zero_point, p.qmin, p.qmax, g);
        });
      } else {
        ex.set_value_hook(ql.act_value, [p](const std::string&, const at::Tensor& x) {
          return fake_quantize(x, p);
        });
      }
    }
  }
}

std::vector<Param> QatNetwork::params() const {
  std::vector<Param> out;
  for (const auto& name : trainable_parameters(model_->graph)) {
    const at::Tensor& t = model_->graph.initializers.at(name);
    out.push_back({name, t, t.dim() >= 2});
  }
  for (const auto& [name, t] : state()) out.push_back({name, t, false});
  return out;
}

std::map<std::string, at::Tensor> QatNetwork::state() const {
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    const std::string& layer = model_->layers[i].layer.name;
    if (weight_scale_[i].defined()) out[layer + "/weight_scale"] = weight_scale_[i];
    if (act_scale_[i].defined()) out[layer + "/act_scale"] = act_scale_[i];
  }
  return out;
}

at::Tensor QatNetwork::bin_loss(bool entropy) const {
  at::Tensor total;
  int64_t layers = 0;
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    const QuantizedLayer& ql = model_->layers[i];
    if (!ql.weight_quantized) continue;
    const QParams& p = ql.weight_params;
    at::Tensor scale = weight_scale_[i].defined() ? weight_scale_[i].clamp_min(1e-8) : p.scale;
    at::Tensor rows = to_rows(model_->graph.initializers.at(ql.layer.weight), ql.layout);
    at::Tensor l = bin_regularization(rows, scale, p.zero_point, p.qmin, p.qmax, entropy);
    total = total.defined() ? total + l : l;
    ++layers;
  }
  if (!total.defined()) return at::zeros({});
  return total / double(layers);
}

QuantizedModel QatNetwork::snapshot() const {
  at::NoGradGuard no_grad;
  QuantizedModel s = *model_;
  for (auto& [name, t] : s.graph.initializers) t = t.detach().clone();
  for (size_t i = 0; i < s.layers.size(); ++i) {
    QuantizedLayer& ql = s.layers[i];
    if (ql.weight_quantized) {
      if (weight_scale_[i].defined())
        ql.weight_params.scale = weight_scale_[i].detach().clamp_min(1e-8).clone();
      at::Tensor rows = to_rows(s.graph.initializers.at(ql.layer.weight), ql.layout);
      ql.weight_int = quantize_to_int(rows, ql.weight_params);
      ql.weight_hat = from_rows(dequantize(ql.weight_int, ql.weight_params), ql.layout);
    }
    if (ql.act_quantized && act_scale_[i].defined())
      ql.act_params.scale = act_scale_[i].detach().clamp_min(1e-8).clone();
  }
  return s;
}

at::Tensor qat_task_loss(const at::Tensor& logits, const at::Tensor& teacher_logits,
                         const Batch& batch, const QatOptions& o) {
  const double w = teacher_logits.defined() ? o.kd_weight : 0.0;
  at::Tensor loss;
  if (w < 1) {
    loss = (1 - w) * at::cross_entropy_loss(logits, batch.y, {}, at::Reduction::Mean, -100,
                                            o.train.label_smoothing);
  }
  if (w > 0) {
    at::Tensor kd = w * distillation_loss(logits, teacher_logits, o.kd_temperature);
    loss = loss.defined() ? loss + kd : kd;
  }
  return loss;
}

QatResult train_qat(const Graph& model, const Plan& plan, const Dataset& train_data,
                    const Dataset& calibration, const QatOptions& o) {
  MPQ_CHECK(o.validate, "qat: no validation function");
  MPQ_CHECK(o.kd_weight >= 0 && o.kd_weight <= 1, "--kd-weight: expected a value in [0, 1], found ",
            o.kd_weight);
  MPQ_CHECK(o.kd_temperature > 0, "--kd-temperature: expected a positive number, found ",
            o.kd_temperature);
  MPQ_CHECK(o.bin_reg >= 0, "--bin-reg: expected a non-negative number, found ", o.bin_reg);
  MPQ_CHECK(o.kd_weight == 1 || train_data.has_labels(), train_data.describe(),
            ": no labels; quantization-aware training without labels needs --kd-weight 1 "
            "(distillation from the float model only)");
  MPQ_CHECK(model.inputs.size() == 1, model.source, ": training needs a model with one input");
  check_exportable(model);  // the result is exported: fail before training
  PtqOptions ptq = o.ptq;
  ptq.progress = o.train.progress;
  log_info("qat: quantizing the starting point (", ptq.method, ")");
  // reduce-range trains the reduced widths it exports (int8_format.h).
  const Int8Format format = resolve_int8_format(o.qdq.int8_format, host_cpu(), "--int8");
  QatNetwork net(quantize_ptq(model, apply_int8_format(plan, format), &calibration, ptq), o.lsq);
  Executor teacher(model);
  const bool distil = o.kd_weight > 0;

  TrainLoop loop;
  loop.name = "qat";
  loop.graph = &net.graph();
  loop.params = net.params();
  loop.state = net.state();
  bool frozen = false;
  loop.start_epoch = [&](int64_t epoch) {
    frozen = o.freeze_bn_epoch >= 0 && epoch >= o.freeze_bn_epoch;
  };
  loop.set_training = [&](bool on) { net.executor().set_training(on && !frozen); };
  loop.loss = [&](const at::Tensor& x, const Batch& batch) {
    at::Tensor teacher_logits;
    if (distil) {
      at::NoGradGuard no_grad;
      teacher_logits = teacher.run({x})[0];
    }
    at::Tensor logits = net.executor().run({x})[0];
    at::Tensor loss = qat_task_loss(logits, teacher_logits, batch, o);
    if (o.bin_reg > 0) loss = loss + o.bin_reg * net.bin_loss(o.bin_entropy);
    return std::make_pair(loss, logits);
  };
  QatResult result;
  loop.validate = [&] { return o.validate(net.snapshot()); };
  loop.save_best = [&](const EpochStats& e) {
    result.model = net.snapshot();
    Graph q = export_qdq(result.model, o.qdq, &result.sizes);
    q.metadata["mpq.train.val_accuracy"] = std::to_string(e.val_accuracy);
    q.metadata["mpq.train.epoch"] = std::to_string(e.epoch);
    export_onnx(q, o.train.output);
  };
  result.train = run_training(loop, train_data, o.train);
  if (result.model.layers.empty()) result.model = net.snapshot();  // resumed after the last epoch
  return result;
}

}  // namespace mpq
