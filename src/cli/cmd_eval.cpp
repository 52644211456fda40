// mpq eval MODEL --data D [--ref FLOAT] [--output-kind K]: accuracy, agreement with a reference
// (per output kind, sensitivity/output_kind.h), throughput.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "sensitivity/output_kind.h"

namespace mpq::cli {

void add_eval_command(CLI::App& app) {
  struct Args {
    std::string model, ref, output;
    DataArgs data;
    TaskArgs task;
    int64_t batch_size = 100;
    std::string output_kind = "auto";
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval",
                                     "top-1/top-5 accuracy and loss; agreement (or cosine), KL and "
                                     "SQNR against --ref; throughput");
  cmd->add_option("model", args->model, "ONNX model")->required();
  add_data_options(*cmd, args->data, true);
  add_task_options(*cmd, args->task);
  cmd->add_option("--ref", args->ref, "reference model (e.g. the float model) to compare with");
  std::vector<std::string> kinds = output_kind_names();
  kinds.insert(kinds.begin(), "auto");
  cmd->add_option("--output-kind", args->output_kind,
                  "what the output is: auto | scores | sequence | map | embedding (agreement, "
                  "KL and cosine follow it)")
      ->check(CLI::IsMember(kinds))
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", args->batch_size, "samples per batch")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_option("-o,--output", args->output, "write to this file instead of stdout");
  cmd->callback([args] {
    Graph model = import_onnx(args->model);
    Graph ref;
    if (!args->ref.empty()) ref = import_onnx(args->ref);
    const std::string text_labels = take_text_labels(args->task, &args->data);
    auto data = open_data(args->data, &model);
    std::optional<CtcTask> task = load_task(args->task, text_labels, args->data, model, *data);
    EvalOptions opt;
    if (task) opt.ctc = &*task;
    opt.batch_size = args->batch_size;
    opt.output_kind = args->output_kind;
    EvalResult r = evaluate(model, *data, opt, args->ref.empty() ? nullptr : &ref);
    emit(args->json ? to_json(r).dump(2) + "\n" : format_text(r), args->output);
  });
}

}  // namespace mpq::cli
