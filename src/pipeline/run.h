// `mpq run` (issue 7): the whole pipeline in one command. Each stage writes its artifact into the
// run folder, so any stage can be re-run or edited by hand:
//   check budgets (before any expensive work, from the model's shape facts alone)
//   -> sensitivity.json (cached, docs/sensitivity.md) -> plan.json + frontier.json (search)
//   -> model.q.onnx (quantize) -> evaluation of float, mixed, uniform baselines and a few
//   frontier points -> verification in ONNX Runtime -> run.json -> report.html / report.md.
// A method is a preset of metric, solver and quantizer (one row each in method_table()); metric
// and solver can also be given directly and mixed freely.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "pipeline/ctc.h"
#include "pipeline/sensitivity.h"
#include "quant/export_qdq.h"
#include "quant/ptq.h"

namespace mpq {

struct MethodPreset {
  const char* name;
  const char* metric;     // sensitivity metric
  const char* solver;     // search solver; "pareto" = exact mckp at the budget, from the frontier
  const char* quantizer;  // PTQ method
  const char* summary;
};

// mpqco, hawq, ompq, pareto, lcpaq, multipoint.
const std::vector<MethodPreset>& method_table();
const MethodPreset& find_method(const std::string& name);  // throws listing the names

struct RunOptions {
  std::string method = "mpqco";
  // A text recognizer's task (pipeline/ctc.h): every model is also scored by its greedy CTC
  // reading of the evaluation data; null = none.
  std::shared_ptr<const CtcTask> ctc;
  std::string metric, solver;  // "" = the method's
  std::vector<std::string> budgets;
  std::string target;                          // target file; "" = built in
  std::vector<int> bits = {2, 3, 4, 5, 6, 8};  // candidate weight bits
  std::vector<int> act_bits;              // candidate activation bits (delta-loss measures them)
  int64_t sensitivity_samples = -1;       // -1: the metric's default
  int64_t max_probes = -1;                // hessian: most Hutchinson probes; -1: the default
  SensitivityRunOptions sensitivity_run;  // cache folder, on/off
  PtqOptions ptq;                         // method is set from the preset unless given
  QdqOptions qdq;                         // export: weight storage, int8 format
  bool quantizer_given = false;
  std::vector<int> uniform_bits = {2, 3, 4, 8};  // uniform baselines: weight bits
  std::vector<int> uniform_act_bits = {8};       // ... each at these activation bits
  int proxy_evals = 48;                          // lcpaq: candidates the proxy search scores
  int64_t proxy_samples = 128;                   // lcpaq: samples the KL proxy is measured on
  int frontier_evals = 3;  // frontier points quantized and evaluated for the report
  bool verify = true;
  int64_t verify_samples = 500;
  bool report = true;
};

struct RunSummary {
  nlohmann::json run;  // run.json
  std::string dir;
};

// model_path: the float model's file (hashed for the cache and provenance). `calibration` feeds
// the sensitivity and PTQ calibration, `evaluation` the accuracy / agreement measurements.
// Throws mpq::Error for bad input, and for budgets no choice meets before any work starts.
RunSummary run_pipeline(const std::string& model_path, const Dataset& calibration,
                        const Dataset& evaluation, const std::string& dir,
                        const RunOptions& options);

// The short table `mpq run` prints: float, uniform at the same size, mixed; size and BitOps.
std::string format_summary(const RunSummary& summary);

}  // namespace mpq
