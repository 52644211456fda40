// mpq quantize MODEL (--bits W[/A] | --plan P) --data D [--method rtn|mse|multipoint] -o OUT.onnx
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "onnx/io.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/quantize.h"
#include "quant/observer.h"
#include "quant/scheme.h"
#include "quant/weight_scale.h"

namespace mpq::cli {
namespace {

std::string table_help() {
  std::string s = "\nweight and activation schemes (--scheme, --act-scheme, plan files):\n";
  for (const auto& row : scheme_table())
    s += "  " + std::string(row.name) + ": " + row.description + "\n";
  s += "activation observers (--observer):\n";
  for (const auto& row : observer_table())
    s += "  " + std::string(row.name) + ": " + row.description + "\n";
  s += "weight scales (--weight-scale):\n";
  for (const auto& row : weight_scale_table())
    s += "  " + std::string(row.name) + ": " + row.description + "\n";
  return s;
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  struct Args {
    std::string model, output, bits, plan, eval, scheme = "sym-channel",
                                                 act_scheme = "affine-tensor";
    std::string scope = "layer", int8;
    int64_t group_size = 0;
    DataArgs data;
    PtqOptions ptq;
    QdqOptions qdq;
    bool no_bias_correction = false, no_fold = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "post-training quantization to a QDQ ONNX model (rtn, mse, multipoint)");
  cmd->add_option("model", a->model, "float ONNX model")->required();
  cmd->add_option("--bits", a->bits, "uniform bits W or W/A (e.g. 4/8; no /A: float activations)");
  cmd->add_option("--plan", a->plan, "per-layer plan (plan.json, docs/plan.md)");
  add_data_options(*cmd, a->data, false);
  auto* method = cmd->add_option("-m,--method", a->ptq.method, "rtn | mse | multipoint")
                     ->capture_default_str();
  auto* observer = cmd->add_option("--observer", a->ptq.observer,
                                   "activation observer (default: minmax for rtn, mse otherwise)");
  auto* scale = cmd->add_option("--weight-scale", a->ptq.weight_scale.method,
                                "weight scale method (default: maxabs for rtn, mse otherwise)");
  cmd->add_option("--clip-error", a->ptq.clip_error,
                  "what mse clipping and multipoint points minimise: output (the layer's output "
                  "error on calibration data) or weight (the plain weight error)")
      ->capture_default_str();
  auto* percentile = cmd->add_option("--percentile", a->ptq.observer_options.percentile,
                                     "percentile for the percentile observer")
                         ->capture_default_str();
  cmd->add_option("--scheme", a->scheme, "weight scheme for --bits")->capture_default_str();
  cmd->add_option("--act-scheme", a->act_scheme, "activation scheme for --bits")
      ->capture_default_str();
  cmd->add_option("--group-size", a->group_size, "group size for *-group weight schemes");
  cmd->add_option("--samples", a->ptq.calibration_samples, "calibration samples")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->ptq.seed, "seed of the calibration sample order")
      ->capture_default_str();
  cmd->add_option("--points", a->ptq.extra_points,
                  "multipoint: extra points as a fraction of each layer's channels")
      ->capture_default_str();
  cmd->add_option("--max-points", a->ptq.max_points, "multipoint: points per channel at most")
      ->capture_default_str();
  cmd->add_option("--point-scope", a->scope,
                  "multipoint: spend the extra points per layer or over the network")
      ->check(CLI::IsMember({"layer", "network"}))
      ->capture_default_str();
  cmd->add_flag("--no-bias-correction", a->no_bias_correction, "skip bias correction");
  cmd->add_flag("--no-fold-bn", a->no_fold, "keep BatchNormalization separate");
  cmd->add_option("--weight-storage", a->qdq.weight_storage,
                  "packed: 2-7 bit weights as bit planes; int8: one byte per weight")
      ->check(CLI::IsMember({"packed", "int8"}))
      ->capture_default_str();
  add_int8_option(*cmd, a->int8);
  cmd->add_option("--eval", a->eval,
                  "also evaluate float and quantized (simulated) accuracy on this data");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_option("-o,--output", a->output, "quantized ONNX model to write")->required();
  cmd->footer(table_help() +
              "\nA plan from `mpq search --proxy-search` names its quantizer (method, observer,\n"
              "weight scale, percentile); flags given here win over it.\n");
  cmd->callback([a, method, observer, scale, percentile] {
    // The --bits/--plan and --int8 checks first, before the model is read.
    if (a->bits.empty() == a->plan.empty()) plan_from_args(a->plan, a->bits, Graph(), "quantize");
    a->qdq.int8_format = int8_format_choice(a->int8, "");
    Graph model = import_onnx(a->model);
    Plan plan = plan_from_args(a->plan, a->bits, model, "quantize");
    if (!a->bits.empty()) {
      for (auto& l : plan.layers) {
        l.weight.scheme = a->scheme;
        l.weight.group_size = a->group_size;
        l.act.scheme = a->act_scheme;
      }
      check_plan(plan, model, "--bits");
    }
    if (plan.extra.contains("quantizer")) {
      const PtqOptions chosen = plan_quantizer(plan, a->plan);
      if (!method->count()) a->ptq.method = chosen.method;
      if (!observer->count()) a->ptq.observer = chosen.observer;
      if (!scale->count()) a->ptq.weight_scale.method = chosen.weight_scale.method;
      if (!percentile->count())
        a->ptq.observer_options.percentile = chosen.observer_options.percentile;
    }
    a->ptq.bias_correction = !a->no_bias_correction;
    a->ptq.fold_batchnorm = !a->no_fold;
    a->ptq.point_scope = a->scope == "network" ? PointScope::kNetwork : PointScope::kLayer;
    std::unique_ptr<Dataset> calibration;
    if (!a->data.spec.empty()) calibration = open_data(a->data, &model);
    QuantizeResult r = run_quantize(model, plan, calibration.get(), a->ptq, a->qdq, a->output);
    if (!a->eval.empty()) {
      auto data = open_other_data(a->data, a->eval, -1, &model);
      evaluate_quantized(model, &r, *data, {});
    }
    emit(a->json ? to_json(r).dump(2) + "\n" : format_text(r) + "wrote " + a->output + "\n", "");
  });
}

void add_verify_command(CLI::App& app) {
  struct Args {
    std::string model, output, cpu;
    DataArgs data;
    VerifyOptions options;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "verify", "run a (quantized) ONNX model in ONNX Runtime and in mpq; compare every output");
  cmd->add_option("model", a->model, "ONNX model, e.g. from mpq quantize")->required();
  add_data_options(*cmd, a->data, true);
  cmd->add_option("--samples", a->options.samples, "samples to compare")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("-b,--batch-size", a->options.batch_size, "samples per ONNX Runtime call")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-rel", a->options.max_rel,
                  "bound on max |ONNX Runtime - mpq| / max |ONNX Runtime| per output")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--per-layer", a->options.per_layer,
                "compare every quantized layer's output (always done beyond the bound)");
  cmd->add_option("--emulate-cpu", a->cpu,
                  "run ONNX Runtime under qemu-x86_64 as this x86 CPU model, e.g. Haswell (AVX2, "
                  "no VNNI): the integer kernels another machine runs (slow; Debian qemu-user)");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_option("-o,--output", a->output, "write to this file instead of stdout");
  cmd->callback([a] {
    set_onnxruntime_cpu(a->cpu);
    Graph model = import_onnx(a->model);
    auto data = open_data(a->data, &model);
    VerifyResult r = verify_model(a->model, *data, a->options);
    emit(a->json ? to_json(r).dump(2) + "\n" : format_text(r), a->output);
  });
}

}  // namespace mpq::cli
