// Options and helpers shared by the commands: data options, input shapes, output writing. The
// commands hold no algorithm code; each is a thin file over the pipeline.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "pipeline/ctc.h"
#include "quant/plan.h"

namespace mpq::cli {

// Data options: --data, --labels, --limit, --mean, --std, --scale, --resize, --crop, --channels.
struct DataArgs {
  std::string spec;
  std::string labels;
  int64_t limit = -1;
  std::vector<double> mean, std;
  double scale = -1;
  int64_t resize = 0;
  std::vector<int64_t> crop;
  int64_t channels = 0;
};
void add_data_options(CLI::App& cmd, DataArgs& args, bool required);
// Opens the data set, with the model's own preprocessing (metadata) where flags leave it unset.
std::unique_ptr<Dataset> open_data(const DataArgs& args, const Graph* model);
// Other data (--eval, --validate-data) read with the same options: `spec` instead of args.spec,
// the first `limit` samples (-1: all).
std::unique_ptr<Dataset> open_other_data(const DataArgs& args, const std::string& spec,
                                         int64_t limit, const Graph* model);

// What the model does, for task metrics: --task classify|ctc (default: ctc when --charset is
// given), --charset FILE. For ctc, --labels (DataArgs) is the text of each sample.
struct TaskArgs {
  std::string task = "auto";
  std::string charset;
};
void add_task_options(CLI::App& cmd, TaskArgs& args);
// For ctc, takes the text labels out of `data` (they are not class labels); call before
// open_data. Returns the labels file ("" if not ctc).
std::string take_text_labels(const TaskArgs& task, DataArgs* data);
// The recognizer's task, checked against the model's output classes on one sample of `data` and
// against the sample count; nullopt when the task is not ctc.
std::optional<CtcTask> load_task(const TaskArgs& task, const std::string& labels,
                                 const DataArgs& data_args, const Graph& model,
                                 const Dataset& data);

// Parses "1x28x28" or "1,28,28" (several inputs separated by ';').
std::vector<std::vector<int64_t>> parse_shapes(const std::string& text, const std::string& flag);

// The plan of --plan FILE (checked against the model) or of uniform --bits W/A (default schemes);
// exactly one must be given. `command` names the command in the error.
Plan plan_from_args(const std::string& plan_file, const std::string& bits, const Graph& model,
                    const std::string& command);

// --int8 FORMAT: the integer types of an exported model (core/int8_format.h).
void add_int8_option(CLI::App& cmd, std::string& format);
// The format to export with: --int8 when given, else the target file's "int8_format", else
// "auto"; checked here, before any work.
std::string int8_format_choice(const std::string& flag, const std::string& target_path);

// `mpq --version`: mpq's version, the CPU, oneDNN's version and instruction set, and the int8
// kernels ONNX Runtime's MLAS picks on this CPU (what results may depend on).
std::string version_text();

// Writes `text` to stdout, or atomically to `path` when it is not empty.
void emit(const std::string& text, const std::string& path);

// Command registration, one per file (cli/cmd_*.cpp).
void add_inspect_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_zoo_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_sensitivity_command(CLI::App& app);
void add_search_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_profile_command(CLI::App& app);

}  // namespace mpq::cli
