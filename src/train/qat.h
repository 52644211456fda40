// Quantization-aware training of a plan (issue 8, methods.md §5 stage 2): the plan is first
// quantized post-training (ptq.h: BatchNormalization folded, scales from calibration, activation
// ranges), then its float weights are fine-tuned through straight-through fake quantization:
//   scales      fixed at the PTQ values (the default), or learned (LSQ, qat_ops.h) for weights
//               (one per row of the scheme) and activations (one per tensor; the zero point stays);
//   BN          folded before training (its statistics frozen in the folded weights, the default),
//               or kept and trained with batch statistics (`fold_batchnorm` false in the PTQ
//               options) until `freeze_bn_epoch`, from which on running statistics are used (and
//               Dropout is off); exported unfolded after the quantized layer then;
//   loss        (1 - kd_weight) cross-entropy to the labels (label smoothing as in training) +
//               kd_weight * distillation_loss to the float model at `kd_temperature`, plus
//               bin_reg (lambda_E) times the mean over weight-quantized layers of
//               bin_regularization (SDQ's entropy-aware bin regularization; entropy term optional);
//   schedule    the training loop's (loop.h): cosine learning rate, checkpoints, resume.
// After each epoch the current weights and scales are rounded into a static QuantizedModel,
// validated, and the best is exported as QDQ ONNX (export_qdq.h), so it verifies in ONNX Runtime
// like any PTQ result.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "exec/executor.h"
#include "quant/export_qdq.h"
#include "quant/plan.h"
#include "quant/ptq.h"
#include "train/loop.h"
#include "train/trainer.h"

namespace mpq {

struct QatOptions {
  TrainOptions train;  // output: the quantized model (QDQ ONNX); validate is not used
  PtqOptions ptq;      // the starting point (and fold_batchnorm)
  QdqOptions qdq;
  bool lsq = false;
  int64_t freeze_bn_epoch = -1;  // BN kept: first 0-based epoch with running statistics; -1 never
  double kd_weight = 1.0;        // 0: labels only, no teacher
  double kd_temperature = 1.0;
  double bin_reg = 0;  // lambda_E
  bool bin_entropy = true;
  // Accuracy of a static quantized model (the current weights rounded); required.
  std::function<EpochScore(const QuantizedModel&)> validate;
};

// A quantized model whose float weights (and, with LSQ, scales) train: the PTQ model's graph with
// its own copies of every tensor, an executor running it with fake quantization attached.
class QatNetwork {
 public:
  QatNetwork(QuantizedModel model, bool lsq);
  Graph& graph() { return model_->graph; }
  const QuantizedModel& model() const { return *model_; }
  Executor& executor() { return *executor_; }
  // Weights and biases (decay on rank >= 2), then the learned scales.
  std::vector<Param> params() const;
  std::map<std::string, at::Tensor> state() const;  // learned scales by name
  // Mean over weight-quantized layers of bin_regularization at the current scales.
  at::Tensor bin_loss(bool entropy) const;
  // The current weights rounded with the current scales: a static model to evaluate and export.
  QuantizedModel snapshot() const;

 private:
  std::unique_ptr<QuantizedModel> model_;
  std::unique_ptr<Executor> executor_;
  bool lsq_;
  std::vector<at::Tensor> weight_scale_, act_scale_;  // per layer (undefined when not learned)
};

// The loss of one batch: cross-entropy to the labels and distillation to the teacher's logits,
// mixed by kd_weight (teacher undefined or kd_weight 0: labels only; kd_weight 1: no labels
// needed).
at::Tensor qat_task_loss(const at::Tensor& logits, const at::Tensor& teacher_logits,
                         const Batch& batch, const QatOptions& options);

struct QatResult {
  TrainResult train;
  QuantizedModel model;  // the best epoch's static model (the one written)
  SizeReport sizes;
};

// `calibration` feeds the PTQ starting point. Throws for multipoint plans (points are not
// trained) and for data without labels when kd_weight < 1.
QatResult train_qat(const Graph& model, const Plan& plan, const Dataset& train_data,
                    const Dataset& calibration, const QatOptions& options);

}  // namespace mpq
