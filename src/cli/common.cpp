#include "cli/common.h"

#include <iostream>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/int8_format.h"
#include "core/version.h"
#include "hw/onednn.h"
#include "pipeline/eval.h"
#include "pipeline/quantize.h"
#include "search/target.h"

namespace mpq::cli {

Plan plan_from_args(const std::string& plan_file, const std::string& bits, const Graph& model,
                    const std::string& command) {
  MPQ_CHECK(bits.empty() != plan_file.empty(), command,
            ": expected exactly one of --bits and --plan, found ",
            bits.empty() ? "neither" : "both");
  if (!plan_file.empty()) {
    Plan plan = load_plan(plan_file);
    check_plan(plan, model, plan_file);
    return plan;
  }
  auto [w, act] = parse_bits(bits, "--bits");
  return uniform_plan(model, w, act);
}

void add_data_options(CLI::App& cmd, DataArgs& a, bool required) {
  auto* data = cmd.add_option("--data", a.spec,
                              "data set: fashion-mnist[:train|:test], an IDX folder or file, an "
                              "image folder, .npy, .npz, .pb or a folder of .pb");
  if (required) data->required();
  cmd.add_option("--labels", a.labels, "labels file for --data (.npy, IDX, .pb)");
  cmd.add_option("--limit", a.limit, "use only the first N samples")->check(CLI::PositiveNumber);
  cmd.add_option("--mean", a.mean, "per-channel mean subtracted after scaling")->delimiter(',');
  cmd.add_option("--std", a.std, "per-channel std dividing after the mean")->delimiter(',');
  cmd.add_option("--scale", a.scale, "multiply raw values (default 1/255 for 8-bit data)");
  cmd.add_option("--resize", a.resize, "resize images' shorter side to this")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--crop", a.crop, "centre crop H,W")->delimiter(',');
  cmd.add_option("--channels", a.channels, "image channels: 1 (grey) or 3 (RGB)")
      ->check(CLI::IsMember({1, 3}));
}

void add_task_options(CLI::App& cmd, TaskArgs& a) {
  cmd.add_option("--task", a.task,
                 "what the model does: classify (top-1 against class labels) or ctc (a text "
                 "recognizer: greedy CTC reading against --labels text, one line per sample, with "
                 "--charset); default ctc when --charset is given")
      ->check(CLI::IsMember({"auto", "classify", "ctc"}));
  cmd.add_option("--charset", a.charset,
                 "ctc: the recognizer's symbols, one per line (class 0 is the blank)");
}

namespace {
bool is_ctc(const TaskArgs& t) {
  return t.task == "ctc" || (t.task == "auto" && !t.charset.empty());
}
}  // namespace

std::string take_text_labels(const TaskArgs& task, DataArgs* data) {
  if (!is_ctc(task)) {
    MPQ_CHECK(task.charset.empty(), "--charset is for --task ctc, found --task ", task.task);
    return "";
  }
  std::string labels = data->labels;
  data->labels.clear();
  MPQ_CHECK(!task.charset.empty(), "--task ctc needs --charset FILE (one symbol per line)");
  MPQ_CHECK(!labels.empty(),
            "--task ctc needs --labels FILE (the text of each sample, one line each)");
  return labels;
}

std::optional<CtcTask> load_task(const TaskArgs& task, const std::string& labels,
                                 const DataArgs& data_args, const Graph& model,
                                 const Dataset& data) {
  if (!is_ctc(task)) return std::nullopt;
  CtcTask t = load_ctc_task(task.charset, labels, output_classes(model, data));
  const int64_t lines = int64_t(t.labels.size());
  MPQ_CHECK(data_args.limit > 0 ? lines >= data.size() : lines == data.size(), "--labels ", labels,
            ": ", lines, " lines, expected one per sample of ", data.describe());
  return t;
}

std::unique_ptr<Dataset> open_data(const DataArgs& a, const Graph* model) {
  DataOptions o;
  o.spec = a.spec;
  o.labels = a.labels;
  o.limit = a.limit;
  o.preprocess.mean = a.mean;
  o.preprocess.std = a.std;
  o.preprocess.scale = a.scale;
  o.preprocess.resize = a.resize;
  o.preprocess.crop = a.crop;
  o.preprocess.channels = a.channels;
  if (model) o.preprocess = model_preprocess(*model, o.preprocess);
  return open_dataset(o);
}

std::unique_ptr<Dataset> open_other_data(const DataArgs& args, const std::string& spec,
                                         int64_t limit, const Graph* model) {
  DataArgs other = args;
  other.spec = spec;
  other.limit = limit;
  return open_data(other, model);
}

std::vector<std::vector<int64_t>> parse_shapes(const std::string& text, const std::string& flag) {
  std::vector<std::vector<int64_t>> shapes;
  std::stringstream all(text);
  std::string one;
  while (std::getline(all, one, ';')) {
    std::vector<int64_t> shape;
    std::string dim;
    for (char& c : one)
      if (c == 'x' || c == 'X') c = ',';
    std::stringstream dims(one);
    while (std::getline(dims, dim, ',')) {
      size_t used = 0;
      int64_t v = -1;
      try {
        v = std::stoll(dim, &used);
      } catch (const std::exception&) {
      }
      MPQ_CHECK(used == dim.size() && v > 0, flag, ": expected a shape such as 1x28x28, found '",
                text, "'");
      shape.push_back(v);
    }
    MPQ_CHECK(!shape.empty(), flag, ": expected a shape such as 1x28x28, found '", text, "'");
    shapes.push_back(shape);
  }
  return shapes;
}

void emit(const std::string& text, const std::string& path) {
  if (path.empty() || path == "-") {
    std::cout << text << std::flush;
  } else {
    write_file_atomic(path, text);
  }
}

void add_int8_option(CLI::App& cmd, std::string& format) {
  std::string help =
      "integer types for the runtime's int8 kernels (default: the target's int8_format, else "
      "auto):\n  auto: u8s8 where this CPU sums u8 x s8 exactly (VNNI, AMX, not x86), else u8u8";
  for (const auto& f : int8_format_table())
    help += "\n  " + std::string(f.name) + ": " + f.description;
  cmd.add_option("--int8", format, help);
}

std::string int8_format_choice(const std::string& flag, const std::string& target_path) {
  std::string format = flag;
  if (format.empty() && !target_path.empty()) format = load_target(target_path).int8_format;
  if (format.empty()) format = "auto";
  resolve_int8_format(format, host_cpu(), flag.empty() ? target_path : "--int8");
  return format;
}

std::string version_text() {
  const CpuInfo& cpu = host_cpu();
  return std::string("mpq ") + kVersion + "\ncpu: " + describe(cpu) + "\n" + onednn_version() +
         ": " + onednn_isa() + " kernels, int8 weights exact to " +
         std::to_string(onednn_int8_weight_bits()) + " bits\nint8 export default (--int8 auto): " +
         int8_format_info(resolve_int8_format("auto", cpu, "--int8")).name;
}

}  // namespace mpq::cli
