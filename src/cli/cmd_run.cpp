// mpq run MODEL --data D --budget KIND=VALUE [--method NAME] [--metric M --solver S] -o DIR
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "onnx/io.h"
#include "pipeline/run.h"

namespace mpq::cli {
namespace {

std::string method_help() {
  std::string s = "\nmethods (--method; --metric and --solver override a preset's):\n";
  for (const auto& m : method_table()) {
    s += "  " + std::string(m.name) + ": " + m.summary;
    if (*m.metric) s += " [" + std::string(m.metric) + " + " + m.solver + "]";
    s += "\n";
  }
  s += "\nWithout --eval, fashion-mnist data is evaluated on its test split and any other data on\n"
       "itself. Unlabelled data: label-free sensitivity, and quality as agreement, KL and SQNR\n"
       "against the float model.\n";
  return s;
}

// fashion-mnist[:train] -> fashion-mnist:test; anything else: the same data.
std::string default_eval(const std::string& spec) {
  if (spec.rfind("fashion-mnist", 0) == 0) return "fashion-mnist:test";
  return spec;
}

}  // namespace

void add_run_command(CLI::App& app) {
  struct Args {
    std::string model, dir, eval, eval_labels, int8;
    DataArgs data;
    TaskArgs task;
    RunOptions options;
    int64_t eval_limit = -1;
    bool no_cache = false, no_verify = false, no_report = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "run", "the whole pipeline: sensitivity, search, quantize, evaluate, verify, report");
  cmd->footer(method_help());
  cmd->add_option("model", a->model, "float ONNX model")->required();
  add_data_options(*cmd, a->data, true);
  cmd->add_option("--eval", a->eval, "evaluation data (default: see below)");
  cmd->add_option("--eval-limit", a->eval_limit, "evaluate on the first N samples only");
  cmd->add_option("--eval-labels", a->eval_labels,
                  "labels of --eval (class labels; with --task ctc the text of each sample)");
  add_task_options(*cmd, a->task);
  cmd->add_option("--budget", a->options.budgets, "KIND=VALUE, e.g. avg-bits=3, size=0.5r")
      ->required();
  cmd->add_option("--method", a->options.method,
                  "mpqco | hawq | ompq | pareto | lcpaq | multipoint")
      ->capture_default_str();
  cmd->add_option("--metric", a->options.metric, "sensitivity metric (overrides the method's)");
  cmd->add_option("--solver", a->options.solver, "search solver (overrides the method's)");
  cmd->add_option("--target", a->options.target, "target description (docs/targets.md)");
  add_int8_option(*cmd, a->int8);
  cmd->add_option("--bits", a->options.bits, "candidate weight bits")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--act-bits", a->options.act_bits,
                  "candidate activation bits (measured by delta-loss; e.g. 4,8)")
      ->delimiter(',');
  cmd->add_option("--samples", a->options.sensitivity_samples,
                  "sensitivity samples (default 512; orthogonality 32)");
  auto* quantizer = cmd->add_option("--quantizer", a->options.ptq.method,
                                    "PTQ method: rtn | mse | multipoint (default: the method's)");
  cmd->add_option("--uniform", a->options.uniform_bits,
                  "uniform weight bits to compare with (activations 8)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--proxy-evals", a->options.proxy_evals,
                  "lcpaq: candidates the proxy search scores")
      ->capture_default_str();
  cmd->add_option("--proxy-samples", a->options.proxy_samples,
                  "lcpaq: calibration samples the KL proxy is measured on")
      ->capture_default_str();
  cmd->add_option("--frontier-evals", a->options.frontier_evals,
                  "frontier points to quantize and evaluate for the report")
      ->capture_default_str();
  cmd->add_option("--cache-dir", a->options.sensitivity_run.cache_dir, "sensitivity cache folder");
  cmd->add_flag("--no-cache", a->no_cache, "neither read nor write the sensitivity cache");
  cmd->add_flag("--no-verify", a->no_verify, "skip the ONNX Runtime comparison");
  cmd->add_flag("--no-report", a->no_report, "skip report.html / report.md");
  cmd->add_flag("--json", a->json, "print run.json instead of the summary");
  cmd->add_option("-o,--output", a->dir, "run folder for every artifact")->required();
  cmd->callback([a, quantizer] {
    a->options.qdq.int8_format = int8_format_choice(a->int8, a->options.target);
    Graph model = import_onnx(a->model);
    DataArgs eval_args = a->data;
    eval_args.spec = a->eval.empty() ? default_eval(a->data.spec) : a->eval;
    eval_args.limit = a->eval_limit;
    if (!a->eval_labels.empty()) eval_args.labels = a->eval_labels;
    const std::string text_labels = take_text_labels(a->task, &eval_args);
    if (!text_labels.empty() && a->data.labels == text_labels) a->data.labels.clear();
    auto calibration = open_data(a->data, &model);
    auto evaluation = open_data(eval_args, &model);
    std::optional<CtcTask> task = load_task(a->task, text_labels, eval_args, model, *evaluation);
    if (task) a->options.ctc = std::make_shared<CtcTask>(std::move(*task));
    a->options.sensitivity_run.use_cache = !a->no_cache;
    a->options.verify = !a->no_verify;
    a->options.report = !a->no_report;
    a->options.quantizer_given = quantizer->count() > 0;
    RunSummary s = run_pipeline(a->model, *calibration, *evaluation, a->dir, a->options);
    emit(a->json ? s.run.dump(1) + "\n" : format_summary(s), "");
  });
}

}  // namespace mpq::cli
