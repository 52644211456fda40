// mpq zoo ARCH -o MODEL.onnx: writes a model of the built-in zoo with freshly initialised weights.
#include "cli/common.h"
#include "core/log.h"
#include "onnx/io.h"
#include "pipeline/zoo.h"

namespace mpq::cli {

void add_zoo_command(CLI::App& app) {
  struct Args {
    std::string arch, output;
    ZooOptions zoo;
  };
  auto args = std::make_shared<Args>();
  std::string names;
  for (const auto& n : zoo_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand(
      "zoo", "write a zoo architecture (" + names + ") as ONNX with initialised weights");
  cmd->add_option("arch", args->arch, "architecture: " + names)->required();
  cmd->add_option("-o,--output", args->output, "ONNX file to write")->required();
  cmd->add_option("--opset", args->zoo.opset, "ONNX opset")->check(CLI::Range(7, 21));
  cmd->add_option("--width-mult", args->zoo.width_mult, "channel multiplier")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->zoo.seed, "weight initialisation seed");
  cmd->add_flag("--hardswish", args->zoo.hardswish, "mobilenetv2: HardSwish activations");
  cmd->add_flag("--constants", args->zoo.weights_as_constants,
                "store weights as Constant nodes (paddle2onnx style)");
  cmd->add_flag("--dynamic-hw", args->zoo.dynamic_hw,
                "declare the input's height and width symbolic");
  cmd->callback([args] {
    Graph g = build_zoo_model(args->arch, args->zoo);
    export_onnx(g, args->output);
    log_info("wrote ", args->output);
  });
}

}  // namespace mpq::cli
