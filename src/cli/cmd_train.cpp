// mpq train MODEL.onnx | --arch NAME --data D -o OUT.onnx: trains a model's float weights.
#include <ATen/ATen.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/common.h"
#include "core/fs.h"
#include "core/log.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "pipeline/zoo.h"
#include "train/trainer.h"

namespace mpq::cli {
namespace {

std::string join(const std::vector<double>& v) {
  std::ostringstream o;
  for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
  return o.str();
}

}  // namespace

void add_train_command(CLI::App& app) {
  struct Args {
    std::string model, arch, output, checkpoint;
    DataArgs data, val;
    ZooOptions zoo;
    TrainOptions train;
    bool no_augment = false, no_flip = false, no_resume = false;
  };
  auto a = std::make_shared<Args>();
  a->data.spec = "fashion-mnist:train";
  a->val.spec = "fashion-mnist:test";
  CLI::App* cmd = app.add_subcommand(
      "train", "train a model's float weights (SGD/AdamW, cosine schedule, augmentation)");
  cmd->add_option("model", a->model, "ONNX model to train (or --arch)");
  std::string names;
  for (const auto& n : zoo_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--arch", a->arch, "train a zoo architecture from scratch: " + names);
  cmd->add_option("-o,--output", a->train.output, "best model (ONNX)")->required();
  add_data_options(*cmd, a->data, false);
  cmd->add_option("--val-data", a->val.spec, "validation data (default fashion-mnist:test)");
  cmd->add_option("--val-limit", a->val.limit, "validate on the first N samples")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--epochs", a->train.epochs, "epochs")->check(CLI::PositiveNumber);
  cmd->add_option("-b,--batch-size", a->train.batch_size, "samples per step")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--optimizer", a->train.optimizer.kind, "sgd | adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}));
  cmd->add_option("--lr", a->train.optimizer.lr, "peak learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--momentum", a->train.optimizer.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--weight-decay", a->train.optimizer.weight_decay, "weight decay")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup", a->train.warmup_epochs, "linear warm-up epochs")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--label-smoothing", a->train.label_smoothing, "label smoothing")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--crop-padding", a->train.crop_padding, "padded random crop: pixels per side")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-augment", a->no_augment, "no crop or flip augmentation");
  cmd->add_flag("--no-flip", a->no_flip, "no horizontal flips");
  cmd->add_option("--seed", a->train.seed, "seed for initialisation, shuffling, augmentation");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint file (default OUTPUT.ckpt)");
  cmd->add_flag("--no-resume", a->no_resume, "ignore an existing checkpoint");
  cmd->add_option("--width-mult", a->zoo.width_mult, "--arch: channel multiplier")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--opset", a->zoo.opset, "--arch: ONNX opset")->check(CLI::Range(7, 21));
  cmd->callback([a] {
    MPQ_CHECK(a->model.empty() != a->arch.empty(),
              "train: give either a MODEL file or --arch NAME (found ",
              a->model.empty() ? "neither" : "both", ")");
    Graph model;
    if (a->arch.empty()) {
      model = import_onnx(a->model);
    } else {
      a->zoo.seed = a->train.seed;
      model = build_zoo_model(a->arch, a->zoo);
      // Through ONNX once, so the trained graph is exactly what a file would hold.
      model = import_onnx_bytes(export_onnx_bytes(model), ".", a->arch);
    }
    TrainOptions& t = a->train;
    t.augment = !a->no_augment;
    t.flip = !a->no_flip;
    t.resume = !a->no_resume;
    t.checkpoint = a->checkpoint;
    t.progress = log_level() >= LogLevel::kInfo;
    // Normalisation: flags, else the model's metadata, else measured on the training data.
    auto train_data = open_data(a->data, &model);
    if (a->data.mean.empty() && !model.metadata.count("mpq.mean")) {
      auto [mean, std] = channel_statistics(*train_data, 10000);
      model.metadata["mpq.mean"] = join(mean);
      model.metadata["mpq.std"] = join(std);
      train_data = open_data(a->data, &model);
    }
    auto val_data = open_data(a->val, &model);
    log_info("train: ", train_data->describe(), "; validation: ", val_data->describe());
    t.validate = [&](const Graph& g) {
      EvalOptions eo;
      eo.batch_size = 500;
      eo.progress = false;
      EvalResult r = evaluate(g, *val_data, eo, nullptr);
      return Validation{r.top1, r.loss};
    };
    TrainResult r = train_model(&model, *train_data, t);
    nlohmann::json j = {{"output", t.output},
                        {"best_accuracy", r.best_accuracy},
                        {"best_epoch", r.best_epoch},
                        {"epochs", t.epochs}};
    std::cout << j.dump(2) << std::endl;
  });
}

}  // namespace mpq::cli
