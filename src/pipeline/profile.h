// `mpq profile` (issue 9, methods.md §2: LCPAQ's hardware-aware module with measured numbers):
// every quantizable layer's kernel timed on this CPU through oneDNN (hw/onednn.h) at the shapes it
// has in the model, as float32 and as int8, with repeats and the median. The result is a target
// file: the base target (candidates, pins, ties) with a latency table that `mpq search --target`
// and `mpq run --target` read for `--budget latency=...`.
//   kernels  this CPU runs every weight width 2-8 with activations 2-8 on the int8 kernel (the
//            values held in 8-bit containers: no faster sub-8-bit kernel exists here), float layers
//            (w32) on the f32 kernel; 16-bit widths have no kernel and are marked so (left out of
//            the table and the target's kernels), never invented; layers oneDNN cannot time here
//            (ConvTranspose, MatMul with the weight first) are listed and keep no entry.
//   check    the layers' int8 (and f32) kernels also run back to back as one pass in graph order;
//            the sum of the per-layer medians is compared with the pass's median (the error is
//            reported), and the time of the rest of the model (ops that are not layers) is
//            measured in mpq's executor for the share the table does not cover.
//   whole    the whole float model, every op included, in ONNX Runtime (when installed); the
//            sum of the f32 per-layer medians is compared with it (another library's kernels
//            and the ops between the layers are both in that error). There is no whole-model
//            int8 runtime to compare with here: ONNX Runtime runs mpq's QDQ export on float
//            kernels with Q/DQ around them (the export has no Q after a layer's output to fuse
//            into an int8 kernel), which is slower than the float model.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hw/onednn.h"
#include "onnx/graph.h"

namespace mpq {

struct ProfileOptions {
  std::string target;                              // base target file; "" = the built-in default
  std::vector<std::vector<int64_t>> input_shapes;  // "" = declared (batch 1)
  TimingOptions timing;
  bool onnxruntime = true;   // the whole-model check in ONNX Runtime, when it is installed
  double ort_seconds = 1.0;  // per model
};

struct LayerProfile {
  std::string name, op, shape;
  int64_t macs = 0;         // the layer's, from inspect
  int64_t kernel_macs = 0;  // the timed kernel's (equal when the geometry is the layer's)
  bool timed = false;
  std::string why_not;  // when not timed
  KernelTiming f32, int8;
};

struct ProfileResult {
  std::string model;
  std::vector<LayerProfile> layers;
  double sum_f32_ms = 0, sum_int8_ms = 0;  // sums of the per-layer medians
  KernelTiming pass_f32, pass_int8;        // the timed layers back to back
  double other_ops_ms = 0;                 // non-layer ops in mpq's executor (float)
  bool ort = false;                        // the whole-model check ran
  std::string ort_why;                     // why not
  double ort_f32_ms = 0;                   // whole float model in ONNX Runtime, per run
  std::string wait_policy;                 // OMP_WAIT_POLICY as set (PASSIVE skews small kernels)
  nlohmann::json target;                   // the target file to write
};

ProfileResult profile_model(const Graph& model, const std::string& model_path,
                            const ProfileOptions& options);
std::string format_text(const ProfileResult& result);

}  // namespace mpq
