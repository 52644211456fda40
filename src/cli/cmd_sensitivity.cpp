// mpq sensitivity MODEL --data D --metric NAME [--bits 2,3,4,5,6,8] [--samples N] -o
// sensitivity.json
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "onnx/io.h"
#include "pipeline/sensitivity.h"

namespace mpq::cli {
namespace {

std::string metric_help() {
  std::string s = "\nmetrics (--metric):\n";
  for (const auto& m : metric_table()) {
    s += "  " + std::string(m.name) + ": " + m.description +
         (m.needs_labels ? " (labels, or --label-free)" : " (no labels)") + "\n";
  }
  s += "\noutput kinds (--output-kind; the label-free loss and agreement follow it):\n";
  for (const auto& k : output_kind_table())
    s += "  " + std::string(k.name) + ": " + k.description + "\n";
  s += "\nResults are cached by model, data and options (--cache-dir, --no-cache); an interrupted\n"
       "run resumes where it stopped.\n";
  return s;
}

}  // namespace

void add_sensitivity_command(CLI::App& app) {
  struct Args {
    std::string model, output;
    DataArgs data;
    SensitivityOptions options;
    SensitivityRunOptions run;
    int64_t samples = -1;
    bool no_cache = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "sensitivity", "per-layer sensitivity to quantization at each candidate bit width");
  cmd->footer(metric_help());
  cmd->add_option("model", a->model, "float ONNX model")->required();
  add_data_options(*cmd, a->data, true);
  cmd->add_option("--metric", a->options.metric, "hessian | fisher | orthogonality | delta-loss")
      ->capture_default_str();
  cmd->add_option("--bits", a->options.bits, "candidate weight bit widths")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--act-bits", a->options.act_bits,
                  "delta-loss: candidate activation bit widths too (e.g. 4,8)")
      ->delimiter(',');
  cmd->add_option("--samples", a->samples,
                  "samples the metric reads (default 512; orthogonality: 32)");
  cmd->add_option("-b,--batch-size", a->options.batch_size, "samples per batch")
      ->capture_default_str();
  cmd->add_option("--seed", a->options.seed, "seed of the sample order and the probes")
      ->capture_default_str();
  cmd->add_flag("--label-free", a->options.label_free,
                "compare with the float model's outputs (KL, or squared error for maps and "
                "embeddings) instead of labelled cross-entropy");
  std::vector<std::string> kinds = output_kind_names();
  kinds.insert(kinds.begin(), "auto");
  cmd->add_option("--output-kind", a->options.output,
                  "what the model's output is: auto (metadata, else inferred) | scores | "
                  "sequence | map | embedding")
      ->check(CLI::IsMember(kinds))
      ->capture_default_str();
  cmd->add_option("--scheme", a->options.weight_scheme, "weight scheme of dW(b)")
      ->capture_default_str();
  cmd->add_option("--weight-scale", a->options.weight_scale, "weight scale method of dW(b)")
      ->capture_default_str();
  cmd->add_option("--probe", a->options.probe, "hessian: global or layer probes")
      ->capture_default_str();
  cmd->add_option("--granularity", a->options.granularity,
                  "hessian: one trace per layer (HAWQ) or per output channel")
      ->capture_default_str();
  cmd->add_option("--min-probes", a->options.min_probes, "hessian: probes at least")
      ->capture_default_str();
  cmd->add_option("--max-probes", a->options.max_probes, "hessian: probes at most")
      ->capture_default_str();
  cmd->add_option("--tolerance", a->options.tolerance,
                  "hessian: stop when every trace's standard error is below this fraction")
      ->capture_default_str();
  cmd->add_option("--beta", a->options.beta, "orthogonality: theta = exp(-beta gamma)")
      ->capture_default_str();
  cmd->add_flag("--validate", a->run.validate,
                "compare with delta-loss per layer and on random mixed configurations");
  cmd->add_option("--configs", a->run.configs, "validation: random mixed configurations")
      ->capture_default_str();
  cmd->add_option("--cache-dir", a->run.cache_dir,
                  "cache folder (default $MPQ_CACHE_DIR, $XDG_CACHE_HOME/mpq or ~/.cache/mpq)");
  cmd->add_flag("--no-cache", a->no_cache, "neither read nor write the cache");
  cmd->add_flag("--json", a->json, "print JSON instead of a table");
  cmd->add_option("-o,--output", a->output, "write sensitivity.json here");
  cmd->callback([a] {
    Graph model = import_onnx(a->model);
    auto data = open_data(a->data, &model);
    a->options.samples = a->samples > 0                         ? a->samples
                         : a->options.metric == "orthogonality" ? 32
                                                                : 512;
    MPQ_CHECK(a->samples == -1 || a->samples > 0, "--samples: expected > 0, found ", a->samples);
    a->run.use_cache = !a->no_cache;
    SensitivityRun r = run_sensitivity_command(model, a->model, *data, a->options, a->run);
    std::string json = to_json(r).dump(1) + "\n";
    if (!a->output.empty()) emit(json, a->output);
    emit(a->json ? json : format_text(r) + (a->output.empty() ? "" : "wrote " + a->output + "\n"),
         "");
  });
}

}  // namespace mpq::cli
