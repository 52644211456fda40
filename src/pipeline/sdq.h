// `mpq train --sdq` (issue 8, methods.md §5): SDQ's two stages on a model and budgets.
//   stage 1  the budgets, candidates and ties come from the search module exactly as for
//            `mpq search` (model_facts, the target, build_problem: real-byte size, BitOps,
//            latency tables, pins, tied layers), so the learned plan is judged by the same cost
//            model; sdq_search (train/sdq.h) learns the widths and the result is written as a
//            plan.json in the search's format, each layer's reason saying when it dropped;
//   stage 2  that plan trained from the float model with distillation and entropy-aware bin
//            regularization (train_qat, qat.h), exported as QDQ ONNX.
// A finished stage 1 (its plan file present with the same problem) is not repeated on resume.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "quant/plan.h"
#include "train/qat.h"
#include "train/sdq.h"

namespace mpq {

struct SdqCommandOptions {
  std::vector<std::string> budgets;            // as written: "avg-bits=2.5", "bops=0.3x"
  std::vector<int> bits = {2, 3, 4, 5, 6, 8};  // candidate weight widths
  int act_bits = 4;
  std::string target;       // "" = built in
  SdqOptions stage1;        // stage1.qat: the loss, optimiser and schedule of stage 1
  QatOptions stage2;        // output: the quantized model
  std::string plan_output;  // stage 1's plan.json
  bool train_plan = true;   // false: stop after stage 1
};

struct SdqRun {
  SdqResult stage1;
  bool stage1_from_file = false;
  Plan plan;
  QatResult stage2;
  bool trained = false;
};

SdqRun run_sdq(const Graph& model, const std::string& model_path, const Dataset& train_data,
               const Dataset& calibration, const SdqCommandOptions& options);

nlohmann::json to_json(const SdqResult& result);

}  // namespace mpq
