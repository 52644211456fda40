// mpq eval MODEL --data D [--ref FLOAT]: accuracy, agreement with a reference, throughput.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "onnx/io.h"
#include "pipeline/eval.h"

namespace mpq::cli {

void add_eval_command(CLI::App& app) {
  struct Args {
    std::string model, ref, output;
    DataArgs data;
    int64_t batch_size = 100;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "top-1/top-5 accuracy and loss; agreement, KL and SQNR against --ref; throughput");
  cmd->add_option("model", args->model, "ONNX model")->required();
  add_data_options(*cmd, args->data, true);
  cmd->add_option("--ref", args->ref, "reference model (e.g. the float model) to compare with");
  cmd->add_option("-b,--batch-size", args->batch_size, "samples per batch")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_option("-o,--output", args->output, "write to this file instead of stdout");
  cmd->callback([args] {
    Graph model = import_onnx(args->model);
    Graph ref;
    if (!args->ref.empty()) ref = import_onnx(args->ref);
    auto data = open_data(args->data, &model);
    EvalOptions opt;
    opt.batch_size = args->batch_size;
    EvalResult r = evaluate(model, *data, opt, args->ref.empty() ? nullptr : &ref);
    emit(args->json ? to_json(r).dump(2) + "\n" : format_text(r), args->output);
  });
}

}  // namespace mpq::cli
