// mpq train MODEL.onnx | --arch NAME --data D -o OUT.onnx: trains a model's float weights;
// with --qat (a plan or uniform bits) or --sdq (budgets) it trains a quantized model instead
// (train/qat.h, pipeline/sdq.h) and writes QDQ ONNX.
#include <ATen/ATen.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/common.h"
#include "core/fs.h"
#include "core/log.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "pipeline/quantize.h"
#include "pipeline/sdq.h"
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
    // Quantization-aware training and SDQ.
    bool qat = false, sdq = false, no_kd = false, no_bin_reg = false, no_entropy = false,
         stage1_only = false;
    std::string plan, bits, bn = "fold", plan_output, int8;
    std::vector<std::string> budgets;
    SdqCommandOptions sdq_options;
    QatOptions qat_options;
    double bin_reg = -1;
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
  // Quantization-aware training.
  auto* qat =
      cmd->add_flag("--qat", a->qat, "quantization-aware training of --plan or uniform --bits W/A");
  auto* sdq = cmd->add_flag("--sdq", a->sdq,
                            "SDQ: learn the bit widths under --budget, then train that plan");
  qat->excludes(sdq);
  cmd->add_option("--plan", a->plan, "--qat: the plan to train (mpq search / mpq run)");
  cmd->add_option("--bits", a->bits,
                  "--qat: uniform W/A bits, e.g. 2/4; --sdq: candidate weight widths (default "
                  "2,3,4,5,6,8)");
  cmd->add_option("--budget", a->budgets,
                  "--sdq: budget (avg-bits=2.5, size=0.5r, bops=0.3x, ...)");
  cmd->add_option("--act-bits", a->sdq_options.act_bits, "--sdq: activation bits (default 4)")
      ->check(CLI::Range(2, 8));
  cmd->add_option("--target", a->sdq_options.target, "--sdq: target file (docs/targets.md)");
  add_int8_option(*cmd, a->int8);
  cmd->add_option("--plan-out", a->plan_output, "--sdq: stage 1's plan (default OUTPUT.plan.json)");
  cmd->add_flag("--stage1-only", a->stage1_only, "--sdq: stop after writing the learned plan");
  cmd->add_option("--sdq-epochs", a->sdq_options.stage1.max_epochs,
                  "--sdq: at most this many epochs of stage 1 (default 4)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sdq-threshold", a->sdq_options.stage1.threshold,
                  "--sdq: a layer drops a width when its beta falls below this (default 0.4)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--sdq-beta-lr", a->sdq_options.stage1.beta_lr,
                  "--sdq: learning rate of beta (default 0.1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sdq-cost-weight", a->sdq_options.stage1.cost_weight,
                  "--sdq: starting weight of the cost term (default 0.005, growing 0.5 % per step)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sdq-cost-growth", a->sdq_options.stage1.cost_growth,
                  "--sdq: factor the cost term's weight grows by per step while a budget is unmet "
                  "(default 1.005)")
      ->check(CLI::Range(1.0, 2.0));
  cmd->add_option("--sdq-curvature", a->sdq_options.stage1.curvature,
                  "--sdq: weight of the Fisher (second-order) correction to beta's gradient "
                  "(default 1; 0: the plain straight-through estimate)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("!--sdq-no-normalize", a->sdq_options.stage1.normalize,
                "--sdq: beta's gradient as it is, not divided by its group's share of the cost");
  cmd->add_option("--sdq-start", a->sdq_options.stage1.start_bits,
                  "--sdq: start width (default: the widest at most twice the budget)")
      ->check(CLI::Range(2, 8));
  cmd->add_flag("--lsq", a->qat_options.lsq, "learn the step sizes (LSQ)");
  cmd->add_option("--bn", a->bn,
                  "BatchNormalization: fold (into the weights, statistics frozen; default) or "
                  "train (batch statistics until --freeze-bn)")
      ->check(CLI::IsMember({"fold", "train"}));
  cmd->add_option("--freeze-bn", a->qat_options.freeze_bn_epoch,
                  "--bn train: from this epoch (0-based) on use running statistics")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kd-weight", a->qat_options.kd_weight,
                  "weight of distillation from the float model (default 1; the rest is "
                  "cross-entropy to the labels)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--kd-temperature", a->qat_options.kd_temperature,
                  "distillation temperature (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-kd", a->no_kd, "no distillation (labels only)");
  cmd->add_option("--bin-reg", a->bin_reg,
                  "weight lambda_E of the bin regularization (default 0 for --qat, 0.1 for --sdq)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-bin-reg", a->no_bin_reg, "no bin regularization");
  cmd->add_flag("--no-entropy", a->no_entropy, "bin regularization without its entropy term");
  cmd->add_option("--method", a->qat_options.ptq.method, "starting point's PTQ: rtn | mse")
      ->check(CLI::IsMember({"rtn", "mse"}));
  cmd->add_option("--calibration-samples", a->qat_options.ptq.calibration_samples,
                  "samples for the starting point's calibration (default 512)")
      ->check(CLI::PositiveNumber);
  cmd->callback([a, cmd] {
    a->qat_options.qdq.int8_format = int8_format_choice(a->int8, a->sdq_options.target);
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
    if (a->qat || a->sdq) {
      MPQ_CHECK(!a->model.empty(), "train --qat/--sdq: give the trained float MODEL file");
      // Fine-tuning defaults, unless given.
      if (!cmd->count("--epochs")) t.epochs = 3;
      if (!cmd->count("--lr")) t.optimizer.lr = 0.01;
      if (!cmd->count("--weight-decay")) t.optimizer.weight_decay = 0;
      if (!cmd->count("--label-smoothing")) t.label_smoothing = 0;
    }
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
      return EpochScore{r.top1, r.loss};
    };
    if (a->qat || a->sdq) {
      QatOptions& q = a->qat_options;
      q.train = t;
      q.train.validate = nullptr;
      q.ptq.fold_batchnorm = a->bn == "fold";
      if (a->no_kd) q.kd_weight = 0;
      q.bin_entropy = !a->no_entropy;
      q.validate = [&](const QuantizedModel& qm) {
        EvalOptions eo;
        eo.batch_size = 500;
        eo.progress = false;
        EvalResult r = evaluate_simulated(qm, "quantized", *val_data, eo, nullptr);
        return EpochScore{r.top1, r.loss};
      };
      nlohmann::json j = {{"output", t.output}};
      if (a->qat) {
        Plan plan = plan_from_args(a->plan, a->bits, model, "train --qat");
        q.bin_reg = a->no_bin_reg ? 0 : std::max(a->bin_reg, 0.0);
        QatResult r = train_qat(model, plan, *train_data, *train_data, q);
        j["best_accuracy"] = r.train.best_accuracy;
        j["best_epoch"] = r.train.best_epoch;
        j["avg_weight_bits"] = r.sizes.weight_bits_average;
      } else {
        SdqCommandOptions& so = a->sdq_options;
        so.budgets = a->budgets;
        if (!a->bits.empty()) {
          so.bits.clear();
          std::stringstream in(a->bits);
          std::string item;
          while (std::getline(in, item, ',')) {
            MPQ_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos,
                      "--bits: expected widths like 2,3,4, found '", a->bits, "'");
            so.bits.push_back(std::stoi(item));
          }
        }
        q.bin_reg = a->no_bin_reg ? 0 : (a->bin_reg >= 0 ? a->bin_reg : 0.1);
        so.stage2 = q;
        so.stage1.qat = q;
        so.stage1.qat.bin_reg = 0;
        so.plan_output = !a->plan_output.empty() ? a->plan_output : t.output + ".plan.json";
        so.train_plan = !a->stage1_only;
        SdqRun r = run_sdq(model, a->model, *train_data, *train_data, so);
        j["plan"] = so.plan_output;
        if (!r.stage1_from_file) j["stage1"] = to_json(r.stage1);
        if (r.trained) {
          j["best_accuracy"] = r.stage2.train.best_accuracy;
          j["best_epoch"] = r.stage2.train.best_epoch;
          j["avg_weight_bits"] = r.stage2.sizes.weight_bits_average;
        } else {
          j.erase("output");
        }
      }
      std::cout << j.dump(2) << std::endl;
      return;
    }
    TrainResult r = train_model(&model, *train_data, t);
    nlohmann::json j = {{"output", t.output},
                        {"best_accuracy", r.best_accuracy},
                        {"best_epoch", r.best_epoch},
                        {"epochs", t.epochs}};
    std::cout << j.dump(2) << std::endl;
  });
}

}  // namespace mpq::cli
