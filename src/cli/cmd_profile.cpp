// mpq profile MODEL [--target T] -o latency.json: per-layer kernel latency on this CPU (oneDNN)
// as a target file with a latency table (pipeline/profile.h).
#include <iostream>

#include "cli/common.h"
#include "core/fs.h"
#include "onnx/io.h"
#include "pipeline/profile.h"

namespace mpq::cli {

void add_profile_command(CLI::App& app) {
  struct Args {
    std::string model, output, shapes;
    ProfileOptions options;
    bool no_ort = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "profile", "measure each layer's f32 and int8 kernel latency on this CPU (oneDNN)");
  cmd->add_option("model", a->model, "ONNX model")->required();
  cmd->add_option("--target", a->options.target,
                  "base target file (candidates, pins, ties; default: the built-in one)");
  cmd->add_option("-o,--output", a->output, "the target file with the measured latency table")
      ->required();
  cmd->add_option("--input-shape", a->shapes,
                  "input shape, e.g. 1x28x28 (default: declared, batch 1)");
  cmd->add_option("--repeats", a->options.timing.repeats, "timed samples per kernel (median)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-sample-ms", a->options.timing.min_sample_ms,
                  "each sample runs the kernel for at least this long")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-ort", a->no_ort, "skip the whole-model check in ONNX Runtime");
  cmd->callback([a] {
    a->options.onnxruntime = !a->no_ort;
    Graph model = import_onnx(a->model);
    if (!a->shapes.empty()) a->options.input_shapes = parse_shapes(a->shapes, "--input-shape");
    ProfileResult r = profile_model(model, a->model, a->options);
    write_file_atomic(a->output, r.target.dump(1) + "\n");
    std::cout << format_text(r) << "target: " << a->output << std::endl;
  });
}

}  // namespace mpq::cli
