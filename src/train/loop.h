// The epoch loop every kind of training shares (float training, QAT, SDQ): shuffled mini-batches
// with augmentation, one optimiser step per batch on a cosine schedule, validation after each
// epoch, the best result written by the caller's function, and a checkpoint after every epoch (an
// ONNX file: the graph's weights, the optimiser's buffers and any extra state tensors as
// initializers, the progress in metadata) from which the same run resumes.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace mpq {

struct TrainLoop {
  std::string name = "train";  // for messages and the progress bar
  Graph* graph = nullptr;      // its initializers are checkpointed and restored
  std::vector<Param> params;   // what the optimiser updates (graph weights and others)
  // Tensors outside the graph that a checkpoint must hold (learned step sizes, SDQ's bitwidth
  // parameters, ...), restored in place on resume.
  std::map<std::string, at::Tensor> state;
  // The loss to minimise and the logits (for the running accuracy; undefined when the outputs
  // are not class scores) of one (augmented) batch.
  std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& x, const Batch& batch)> loss;
  std::function<void(bool training)> set_training;
  // Called after each optimiser step with the global step; returning true ends training there
  // (the epoch is then validated and saved as usual). Optional.
  std::function<bool(int64_t step)> after_step;
  std::function<EpochScore()> validate;  // the current model
  // Writes the current model as the best so far (atomically). Required.
  std::function<void(const EpochStats& epoch)> save_best;
  // Called before each epoch with its 0-based index (e.g. to freeze statistics). Optional.
  std::function<void(int64_t epoch)> start_epoch;
};

// Runs `loop` over `data` with `options` (epochs, batch, optimizer, schedule, augmentation, seed,
// output/checkpoint/resume; options.validate is not used). Resumes from the checkpoint when it
// exists and options.resume is set; throws naming the checkpoint when it does not match.
TrainResult run_training(TrainLoop& loop, const Dataset& data, const TrainOptions& options);

}  // namespace mpq
