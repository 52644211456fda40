// Training a Graph's float weights with the executor's autograd (`mpq train`): mini-batch SGD or
// AdamW with a cosine schedule, label-smoothed cross-entropy, padded-random-crop and flip
// augmentation, BatchNormalization running statistics updated in training. After each epoch the
// model is validated, the best one is written (atomically) to the output, and a checkpoint with
// the optimiser state is written beside it so an interrupted run resumes where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "train/optimizer.h"

namespace mpq {

struct EpochScore {
  double accuracy = 0;  // top-1, in [0, 1]
  double loss = 0;
};

struct TrainOptions {
  int64_t epochs = 30;
  int64_t batch_size = 128;
  OptimizerOptions optimizer;
  double warmup_epochs = 0;
  double label_smoothing = 0.1;
  bool augment = true;
  int64_t crop_padding = 2;  // padded random crop: pad each side, crop back to the input size
  bool flip = true;          // random horizontal flip
  uint64_t seed = 0;
  std::string output;      // best model (ONNX); required
  std::string checkpoint;  // default: output + ".ckpt"
  bool resume = true;      // continue from the checkpoint when it exists
  bool progress = true;
  // Called after each epoch on a copy of the model; required.
  std::function<EpochScore(const Graph&)> validate;
};

struct EpochStats {
  int64_t epoch = 0;  // 1-based
  double lr = 0, train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0, seconds = 0;
  double train_seconds = 0;  // the optimisation steps alone (no validation, no saving)
};

struct TrainResult {
  std::vector<EpochStats> history;
  double best_accuracy = 0;
  int64_t best_epoch = 0;
  int64_t resumed_from = 0;  // epochs already done when the run started
};

// The initializers training updates: floating-point tensors with more than one element that are
// not BatchNormalization running statistics (scalars are constants such as Clip bounds).
std::vector<std::string> trainable_parameters(const Graph& graph);

// Trains `model` in place (it ends with the last epoch's weights; the best are in the output).
TrainResult train_model(Graph* model, const Dataset& train_data, const TrainOptions& options);

// Padded random crop and horizontal flip of an N x C x H x W batch, drawn from `gen`.
at::Tensor augment_batch(const at::Tensor& x, int64_t padding, bool flip, at::Generator& gen);

}  // namespace mpq
