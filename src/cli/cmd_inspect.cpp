// mpq inspect MODEL: layers, shapes, params, MACs, what mpq can quantize.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "onnx/io.h"
#include "pipeline/inspect.h"

namespace mpq::cli {

void add_inspect_command(CLI::App& app) {
  struct Args {
    std::string model, input_shape, output;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "per quantizable layer: op, weight shape, params and MACs; totals");
  cmd->add_option("model", args->model, "ONNX model")->required();
  cmd->add_option("--input-shape", args->input_shape,
                  "input shape(s) to measure MACs at, e.g. 1x28x28 (';' between inputs)");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_option("-o,--output", args->output, "write to this file instead of stdout");
  cmd->callback([args] {
    Graph g = import_onnx(args->model);
    std::vector<std::vector<int64_t>> shapes;
    if (!args->input_shape.empty()) shapes = parse_shapes(args->input_shape, "--input-shape");
    ModelSummary s = inspect_model(g, shapes);
    emit(args->json ? to_json(s).dump(2) + "\n" : format_table(s), args->output);
  });
}

}  // namespace mpq::cli
