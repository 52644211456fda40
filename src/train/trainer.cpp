#include "train/trainer.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "exec/executor.h"
#include "onnx/io.h"

namespace mpq {
namespace {

constexpr const char* kStatePrefix = "mpq.optimizer/";

std::set<std::string> running_statistics(const Graph& g) {
  std::set<std::string> stats;
  for (const auto& n : g.nodes)
    if (n.op_type == "BatchNormalization" && n.inputs.size() >= 5) {
      stats.insert(n.inputs[3]);
      stats.insert(n.inputs[4]);
    }
  return stats;
}

// Saves the model plus the optimiser state and progress as one ONNX file (extra initializers
// and metadata), so a checkpoint is readable with the same tools as a model.
void save_checkpoint(const Graph& model, const Optimizer& opt, const TrainResult& r,
                     const std::string& path) {
  Graph ckpt = model;
  for (const auto& [key, t] : opt.state()) ckpt.initializers[kStatePrefix + key] = t;
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : r.history)
    history.push_back({{"epoch", e.epoch}, {"val_accuracy", e.val_accuracy}});
  ckpt.metadata["mpq.train.epochs_done"] =
      std::to_string(r.history.size() + size_t(r.resumed_from));
  ckpt.metadata["mpq.train.best_accuracy"] = std::to_string(r.best_accuracy);
  ckpt.metadata["mpq.train.best_epoch"] = std::to_string(r.best_epoch);
  ExportOptions o;
  o.check = false;  // unused optimiser initializers are fine; the model itself was checked
  export_onnx(ckpt, path, o);
}

}  // namespace

std::vector<std::string> trainable_parameters(const Graph& g) {
  std::set<std::string> stats = running_statistics(g);
  std::vector<std::string> names;
  for (const auto& [name, t] : g.initializers)
    if (at::isFloatingType(t.scalar_type()) && t.numel() > 1 && !stats.count(name))
      names.push_back(name);
  return names;
}

at::Tensor augment_batch(const at::Tensor& x, int64_t padding, bool flip, at::Generator& gen) {
  at::NoGradGuard no_grad;
  int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  at::Tensor out = x;
  if (padding > 0) {
    at::Tensor padded = at::constant_pad_nd(x, {padding, padding, padding, padding}, 0);
    at::Tensor offsets = at::randint(0, 2 * padding + 1, {n, 2}, gen, at::kLong);
    auto off = offsets.accessor<int64_t, 2>();
    out = at::empty_like(x);
    for (int64_t i = 0; i < n; ++i)
      out[i].copy_(padded[i].slice(1, off[i][0], off[i][0] + h).slice(2, off[i][1], off[i][1] + w));
  }
  if (flip) {
    at::Tensor mask = at::rand({n, 1, 1, 1}, gen) < 0.5;
    out = at::where(mask, out.flip({3}), out);
  }
  return out;
}

TrainResult train_model(Graph* model, const Dataset& data, const TrainOptions& o) {
  MPQ_CHECK(!o.output.empty(), "train: an output path (-o) is required");
  MPQ_CHECK(o.epochs > 0, "--epochs: expected a positive number, found ", o.epochs);
  MPQ_CHECK(o.batch_size > 0, "--batch-size: expected a positive number, found ", o.batch_size);
  MPQ_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 1,
            "--label-smoothing: expected a value in [0, 1), found ", o.label_smoothing);
  MPQ_CHECK(data.has_labels(), data.describe(), ": training needs labels");
  MPQ_CHECK(o.validate, "train: no validation function");
  MPQ_CHECK(model->inputs.size() == 1, model->source, ": training needs a model with one input");
  std::string ckpt_path = o.checkpoint.empty() ? o.output + ".ckpt" : o.checkpoint;
  TrainResult result;

  std::map<std::string, at::Tensor> saved_state;
  if (o.resume && file_exists(ckpt_path)) {
    Graph ckpt = import_onnx(ckpt_path);
    for (auto it = ckpt.initializers.begin(); it != ckpt.initializers.end();) {
      if (it->first.rfind(kStatePrefix, 0) == 0) {
        saved_state[it->first.substr(std::string(kStatePrefix).size())] = it->second;
        it = ckpt.initializers.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [name, t] : model->initializers) {
      auto it = ckpt.initializers.find(name);
      MPQ_CHECK(it != ckpt.initializers.end() && it->second.sizes() == t.sizes(), ckpt_path,
                ": checkpoint does not match the model (weight '", name,
                "'); delete it to start over");
      t = it->second;
    }
    result.resumed_from = std::stoll(ckpt.metadata.at("mpq.train.epochs_done"));
    result.best_accuracy = std::stod(ckpt.metadata.at("mpq.train.best_accuracy"));
    result.best_epoch = std::stoll(ckpt.metadata.at("mpq.train.best_epoch"));
    log_info("train: resuming ", ckpt_path, " after epoch ", result.resumed_from);
  }

  std::vector<Param> params;
  for (const auto& name : trainable_parameters(*model)) {
    at::Tensor& t = model->initializers.at(name);
    t = t.detach().clone().requires_grad_(true);
    params.push_back({name, t, t.dim() >= 2});
  }
  MPQ_CHECK(!params.empty(), model->source, ": no trainable weights");
  for (const auto& name : running_statistics(*model))
    model->initializers.at(name) = model->initializers.at(name).detach().clone();
  Optimizer opt(params, o.optimizer);
  if (!saved_state.empty()) opt.load_state(saved_state);

  Executor exec(*model);
  DataLoader loader(data, o.batch_size, /*shuffle=*/true, o.seed, /*drop_last=*/true);
  MPQ_CHECK(loader.num_batches() > 0, data.describe(), ": fewer samples than one batch (",
            o.batch_size, ")");
  const int64_t steps_per_epoch = loader.num_batches();
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = int64_t(o.warmup_epochs * double(steps_per_epoch));
  at::manual_seed(o.seed);  // Dropout

  for (int64_t epoch = result.resumed_from; epoch < o.epochs; ++epoch) {
    auto start = std::chrono::steady_clock::now();
    at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003 + uint64_t(epoch));
    loader.start_epoch(epoch);
    exec.set_training(true);
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                      steps_per_epoch);
    if (!o.progress) progress.finish();
    double loss_sum = 0, correct = 0, seen = 0, lr = 0;
    Batch batch;
    for (int64_t step = epoch * steps_per_epoch; loader.next(&batch); ++step) {
      at::Tensor x = o.augment ? augment_batch(batch.x, o.crop_padding, o.flip, gen) : batch.x;
      at::Tensor logits = exec.run({x})[0];
      at::Tensor loss =
          at::cross_entropy_loss(logits, batch.y, {}, at::Reduction::Mean, -100, o.label_smoothing);
      opt.zero_grad();
      loss.backward();
      lr = cosine_lr(o.optimizer.lr, step, total_steps, warmup);
      opt.step(lr);
      double l = loss.item<double>();
      MPQ_CHECK(std::isfinite(l), "train: the loss became ", l, " at epoch ", epoch + 1,
                " (learning rate too high?)");
      int64_t b = batch.x.size(0);
      loss_sum += l * double(b);
      correct += logits.argmax(1).eq(batch.y).sum().item<double>();
      seen += double(b);
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "loss %.4f acc %.2f%%", loss_sum / seen,
                    100 * correct / seen);
      if (o.progress) progress.advance(1, suffix);
    }
    progress.finish();
    exec.set_training(false);
    EpochStats e;
    e.epoch = epoch + 1;
    e.lr = lr;
    e.train_loss = loss_sum / seen;
    e.train_accuracy = correct / seen;
    Graph snapshot = *model;
    for (auto& [name, t] : snapshot.initializers) t = t.detach().clone();
    Validation v = o.validate(snapshot);
    e.val_accuracy = v.accuracy;
    e.val_loss = v.loss;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(e);
    log_info("epoch ", e.epoch, ": train loss ", e.train_loss, " acc ", 100 * e.train_accuracy,
             "%, val loss ", e.val_loss, " acc ", 100 * e.val_accuracy, "%, lr ", e.lr, ", ",
             e.seconds, " s");
    if (e.val_accuracy > result.best_accuracy || result.best_epoch == 0) {
      result.best_accuracy = e.val_accuracy;
      result.best_epoch = e.epoch;
      snapshot.metadata["mpq.train.val_accuracy"] = std::to_string(e.val_accuracy);
      snapshot.metadata["mpq.train.epoch"] = std::to_string(e.epoch);
      export_onnx(snapshot, o.output);
    }
    save_checkpoint(snapshot, opt, result, ckpt_path);
  }
  for (auto& [name, t] : model->initializers) t = t.detach();
  return result;
}

}  // namespace mpq
