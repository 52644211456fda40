// Optimisers for training ONNX weights with the executor's autograd: SGD with (Nesterov)
// momentum and AdamW, with the update rules of PyTorch's torch.optim (so results compare), and a
// cosine learning-rate schedule with linear warm-up. Weight decay applies to weights (tensors of
// rank >= 2), not to biases and normalisation parameters.
//   SGD:   g = grad + wd p;  b = mu b + g;  p -= lr (nesterov ? g + mu b : b)
//   AdamW: p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//          p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace mpq {

struct OptimizerOptions {
  std::string kind = "sgd";  // sgd | adamw
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

struct Param {
  std::string name;
  at::Tensor tensor;  // a leaf that requires grad
  bool decay = true;
};

class Optimizer {
 public:
  Optimizer(std::vector<Param> params, OptimizerOptions options);
  void zero_grad();
  // One update with learning rate `lr`. Parameters without a gradient are left alone.
  void step(double lr);
  // Buffers by "<param>/<slot>" plus "step", for checkpoints.
  std::map<std::string, at::Tensor> state() const;
  void load_state(const std::map<std::string, at::Tensor>& state);
  const std::vector<Param>& params() const { return params_; }

 private:
  std::vector<Param> params_;
  OptimizerOptions options_;
  std::vector<at::Tensor> slot1_, slot2_;  // momentum or (exp_avg, exp_avg_sq)
  int64_t steps_ = 0;
};

// Cosine decay from `base` to 0 over `total` steps after `warmup` linear steps.
double cosine_lr(double base, int64_t step, int64_t total, int64_t warmup);

}  // namespace mpq
