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
#include "train/loop.h"

namespace mpq {
namespace {

constexpr const char* kStatePrefix = "mpq.optimizer/";
constexpr const char* kExtraPrefix = "mpq.state/";

std::set<std::string> running_statistics(const Graph& g) {
  std::set<std::string> stats;
  for (const auto& n : g.nodes)
    if (n.op_type == "BatchNormalization" && n.inputs.size() >= 5) {
      stats.insert(n.inputs[3]);
      stats.insert(n.inputs[4]);
    }
  return stats;
}

// Saves the model plus the optimiser state, the loop's extra state and the progress as one ONNX
// file (extra initializers and metadata), so a checkpoint is readable with the same tools as a
// model.
void save_checkpoint(const TrainLoop& loop, const Optimizer& opt, const TrainResult& r,
                     const std::string& path) {
  Graph ckpt = *loop.graph;
  for (auto& [name, t] : ckpt.initializers) t = t.detach().clone();
  for (const auto& [key, t] : opt.state()) ckpt.initializers[kStatePrefix + key] = t;
  for (const auto& [key, t] : loop.state)
    ckpt.initializers[kExtraPrefix + key] = t.detach().clone();
  ckpt.metadata["mpq.train.epochs_done"] =
      std::to_string(r.history.size() + size_t(r.resumed_from));
  ckpt.metadata["mpq.train.best_accuracy"] = std::to_string(r.best_accuracy);
  ckpt.metadata["mpq.train.best_epoch"] = std::to_string(r.best_epoch);
  ExportOptions o;
  o.check = false;  // unused optimiser initializers are fine; the model itself was checked
  export_onnx(ckpt, path, o);
}

// Restores weights, extra state and progress from a checkpoint in place; returns the optimiser
// state.
std::map<std::string, at::Tensor> load_checkpoint(TrainLoop& loop, const std::string& path,
                                                  TrainResult* result) {
  Graph ckpt = import_onnx(path);
  std::map<std::string, at::Tensor> opt_state;
  auto take = [&](const std::string& name, const std::string& what) {
    auto it = ckpt.initializers.find(name);
    MPQ_CHECK(it != ckpt.initializers.end(), path, ": checkpoint does not match the ", loop.name,
              " run (", what, " missing); delete it to start over");
    return it->second;
  };
  at::NoGradGuard no_grad;
  for (auto& [name, t] : loop.graph->initializers) {
    at::Tensor saved = take(name, "weight '" + name + "'");
    MPQ_CHECK(saved.sizes() == t.sizes(), path, ": checkpoint does not match the model (weight '",
              name, "'); delete it to start over");
    t.copy_(saved);
  }
  for (auto& [name, t] : loop.state) {
    at::Tensor saved = take(kExtraPrefix + name, "state '" + name + "'");
    MPQ_CHECK(saved.sizes() == t.sizes(), path, ": checkpoint does not match the ", loop.name,
              " run (state '", name, "'); delete it to start over");
    t.copy_(saved);
  }
  for (const auto& [name, t] : ckpt.initializers)
    if (name.rfind(kStatePrefix, 0) == 0)
      opt_state[name.substr(std::string(kStatePrefix).size())] = t;
  result->resumed_from = std::stoll(ckpt.metadata.at("mpq.train.epochs_done"));
  result->best_accuracy = std::stod(ckpt.metadata.at("mpq.train.best_accuracy"));
  result->best_epoch = std::stoll(ckpt.metadata.at("mpq.train.best_epoch"));
  return opt_state;
}

void check_options(const TrainOptions& o) {
  MPQ_CHECK(!o.output.empty(), "train: an output path (-o) is required");
  MPQ_CHECK(o.epochs > 0, "--epochs: expected a positive number, found ", o.epochs);
  MPQ_CHECK(o.batch_size > 0, "--batch-size: expected a positive number, found ", o.batch_size);
  MPQ_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 1,
            "--label-smoothing: expected a value in [0, 1), found ", o.label_smoothing);
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

TrainResult run_training(TrainLoop& loop, const Dataset& data, const TrainOptions& o) {
  check_options(o);
  MPQ_CHECK(loop.graph && loop.loss && loop.validate && loop.save_best && loop.set_training,
            loop.name, ": incomplete training loop");
  MPQ_CHECK(!loop.params.empty(), loop.graph->source, ": no trainable weights");
  std::string ckpt_path = o.checkpoint.empty() ? o.output + ".ckpt" : o.checkpoint;
  TrainResult result;
  std::map<std::string, at::Tensor> saved_state;
  if (o.resume && file_exists(ckpt_path)) {
    saved_state = load_checkpoint(loop, ckpt_path, &result);
    log_info(loop.name, ": resuming ", ckpt_path, " after epoch ", result.resumed_from);
  }
  Optimizer opt(loop.params, o.optimizer);
  if (!saved_state.empty()) opt.load_state(saved_state);

  DataLoader loader(data, o.batch_size, /*shuffle=*/true, o.seed, /*drop_last=*/true);
  MPQ_CHECK(loader.num_batches() > 0, data.describe(), ": fewer samples than one batch (",
            o.batch_size, ")");
  const int64_t steps_per_epoch = loader.num_batches();
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = int64_t(o.warmup_epochs * double(steps_per_epoch));
  at::manual_seed(o.seed + uint64_t(result.resumed_from));  // Dropout, stochastic choices

  bool stop = false;
  for (int64_t epoch = result.resumed_from; epoch < o.epochs && !stop; ++epoch) {
    auto start = std::chrono::steady_clock::now();
    at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003 + uint64_t(epoch));
    loader.start_epoch(epoch);
    if (loop.start_epoch) loop.start_epoch(epoch);
    loop.set_training(true);
    Progress progress(
        loop.name + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
        steps_per_epoch);
    if (!o.progress) progress.finish();
    double loss_sum = 0, correct = 0, seen = 0, lr = 0;
    Batch batch;
    for (int64_t step = epoch * steps_per_epoch; loader.next(&batch); ++step) {
      at::Tensor x = o.augment ? augment_batch(batch.x, o.crop_padding, o.flip, gen) : batch.x;
      auto [loss, logits] = loop.loss(x, batch);
      opt.zero_grad();
      loss.backward();
      lr = cosine_lr(o.optimizer.lr, step, total_steps, warmup);
      opt.step(lr);
      double l = loss.item<double>();
      MPQ_CHECK(std::isfinite(l), loop.name, ": the loss became ", l, " at epoch ", epoch + 1,
                " (learning rate too high?)");
      int64_t b = batch.x.size(0);
      loss_sum += l * double(b);
      if (logits.defined() && batch.y.defined() && logits.dim() == 2)
        correct += logits.argmax(1).eq(batch.y).sum().item<double>();
      seen += double(b);
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "loss %.4f acc %.2f%%", loss_sum / seen,
                    100 * correct / seen);
      if (o.progress) progress.advance(1, suffix);
      if (loop.after_step && loop.after_step(step)) {
        stop = true;
        break;
      }
    }
    progress.finish();
    const double train_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    loop.set_training(false);
    EpochStats e;
    e.train_seconds = train_seconds;
    e.epoch = epoch + 1;
    e.lr = lr;
    e.train_loss = loss_sum / std::max(seen, 1.0);
    e.train_accuracy = correct / std::max(seen, 1.0);
    EpochScore v = loop.validate();
    e.val_accuracy = v.accuracy;
    e.val_loss = v.loss;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(e);
    log_info(loop.name, " epoch ", e.epoch, ": train loss ", e.train_loss, " acc ",
             100 * e.train_accuracy, "%, val loss ", e.val_loss, " acc ", 100 * e.val_accuracy,
             "%, lr ", e.lr, ", ", e.seconds, " s");
    if (e.val_accuracy > result.best_accuracy || result.best_epoch == 0) {
      result.best_accuracy = e.val_accuracy;
      result.best_epoch = e.epoch;
      loop.save_best(e);
    }
    save_checkpoint(loop, opt, result, ckpt_path);
  }
  return result;
}

TrainResult train_model(Graph* model, const Dataset& data, const TrainOptions& o) {
  MPQ_CHECK(data.has_labels(), data.describe(), ": training needs labels");
  MPQ_CHECK(o.validate, "train: no validation function");
  MPQ_CHECK(model->inputs.size() == 1, model->source, ": training needs a model with one input");
  TrainLoop loop;
  loop.graph = model;
  for (const auto& name : trainable_parameters(*model)) {
    at::Tensor& t = model->initializers.at(name);
    t = t.detach().clone().requires_grad_(true);
    loop.params.push_back({name, t, t.dim() >= 2});
  }
  for (const auto& name : running_statistics(*model))
    model->initializers.at(name) = model->initializers.at(name).detach().clone();
  Executor exec(*model);
  const double smoothing = o.label_smoothing;
  loop.set_training = [&exec](bool on) { exec.set_training(on); };
  loop.loss = [&exec, smoothing](const at::Tensor& x, const Batch& batch) {
    at::Tensor logits = exec.run({x})[0];
    at::Tensor loss =
        at::cross_entropy_loss(logits, batch.y, {}, at::Reduction::Mean, -100, smoothing);
    return std::make_pair(loss, logits);
  };
  auto snapshot = [model] {
    Graph s = *model;
    for (auto& [name, t] : s.initializers) t = t.detach().clone();
    return s;
  };
  loop.validate = [&] { return o.validate(snapshot()); };
  loop.save_best = [&](const EpochStats& e) {
    Graph s = snapshot();
    s.metadata["mpq.train.val_accuracy"] = std::to_string(e.val_accuracy);
    s.metadata["mpq.train.epoch"] = std::to_string(e.epoch);
    export_onnx(s, o.output);
  };
  TrainResult r = run_training(loop, data, o);
  for (auto& [name, t] : model->initializers) t = t.detach();
  return r;
}

}  // namespace mpq
