#include "pipeline/onnxruntime.h"

#include <ATen/ATen.h>

#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "data/dataset.h"

namespace mpq {
namespace {

// tools/ort of the source tree, unless MPQ_ORT_DIR points elsewhere.
std::string ort_dir() {
  const char* env = std::getenv("MPQ_ORT_DIR");
  return env ? env : std::string(MPQ_SOURCE_DIR) + "/tools/ort";
}

std::vector<std::string> write_inputs(const TempDir& dir, const std::vector<at::Tensor>& inputs) {
  std::vector<std::string> files;
  for (size_t i = 0; i < inputs.size(); ++i) {
    files.push_back(join_path(dir.path(), "input_" + std::to_string(i) + ".npy"));
    save_npy(files.back(), inputs[i].detach().contiguous());
  }
  return files;
}

std::string& emulated_cpu() {
  static std::string cpu;
  return cpu;
}

ProcessResult run_bridge(std::vector<std::string> args) {
  std::string why;
  MPQ_CHECK(onnxruntime_available(&why), "ONNX Runtime is not available: ", why);
  args.insert(args.begin(), {find_program("node"), join_path(ort_dir(), "ort_run.js")});
  if (!emulated_cpu().empty())
    args.insert(args.begin(), {find_program("qemu-x86_64"), "-cpu", emulated_cpu()});
  return run_process(args);
}

}  // namespace

bool onnxruntime_available(std::string* why) {
  std::string reason;
  if (find_program("node").empty())
    reason = "node is not on PATH (run scripts/setup.sh)";
  else if (!file_exists(join_path(ort_dir(), "node_modules/onnxruntime-node/package.json")))
    reason = "onnxruntime-node is not installed in " + ort_dir() + " (run scripts/setup.sh)";
  else if (!emulated_cpu().empty() && find_program("qemu-x86_64").empty())
    reason = "qemu-x86_64 is not on PATH (Debian package qemu-user) to emulate CPU '" +
             emulated_cpu() + "'";
  if (why) *why = reason;
  return reason.empty();
}

void set_onnxruntime_cpu(const std::string& cpu) { emulated_cpu() = cpu; }
const std::string& onnxruntime_cpu() { return emulated_cpu(); }

std::vector<at::Tensor> run_onnxruntime(const std::string& model_path,
                                        const std::vector<at::Tensor>& inputs) {
  TempDir dir("ort");
  std::vector<std::string> args = {"run", model_path, dir.path()};
  for (const auto& f : write_inputs(dir, inputs)) args.push_back(f);
  ProcessResult r = run_bridge(args);
  MPQ_CHECK(r.exit_code == 0, model_path, ": ONNX Runtime failed: ", r.output);
  std::vector<at::Tensor> outputs;
  for (int k = 0;; ++k) {
    std::string f = join_path(dir.path(), "output_" + std::to_string(k) + ".npy");
    if (!file_exists(f)) break;
    outputs.push_back(load_npy(f));
  }
  return outputs;
}

double time_onnxruntime(const std::string& model_path, const std::vector<at::Tensor>& inputs,
                        int threads, double seconds) {
  TempDir dir("ort");
  std::vector<std::string> args = {"bench", model_path, std::to_string(threads),
                                   std::to_string(seconds)};
  for (const auto& f : write_inputs(dir, inputs)) args.push_back(f);
  ProcessResult r = run_bridge(args);
  MPQ_CHECK(r.exit_code == 0, model_path, ": ONNX Runtime failed: ", r.output);
  auto runs_at = r.output.find("\"runs\":");
  auto secs_at = r.output.find("\"seconds\":");
  MPQ_CHECK(runs_at != std::string::npos && secs_at != std::string::npos,
            "unexpected output from the ONNX Runtime bridge: ", r.output);
  double runs = std::stod(r.output.substr(runs_at + 7));
  double secs = std::stod(r.output.substr(secs_at + 10));
  return secs / runs;
}

}  // namespace mpq
