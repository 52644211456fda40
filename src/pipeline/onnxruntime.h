// ONNX Runtime as an independent reference: mpq runs a model file in ONNX Runtime through its
// node binding (tools/ort/ort_run.js, onnxruntime-node installed by scripts/setup.sh) and reads
// the outputs back. Tensors cross as .npy files in a temporary folder.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace mpq {

// True when node and the onnxruntime-node package are installed (and qemu-x86_64 when an
// emulated CPU is set).
bool onnxruntime_available(std::string* why = nullptr);

// Runs ONNX Runtime from now on under qemu-x86_64 (Debian's qemu-user) emulating the x86 CPU
// model `cpu` ("Haswell": AVX2 without VNNI or AVX-512; "" = natively), so a model can be checked
// as the integer kernels of another CPU compute it. Slow: for verification, not timing.
void set_onnxruntime_cpu(const std::string& cpu);
const std::string& onnxruntime_cpu();

// Runs `model_path` in ONNX Runtime on `inputs` (in the model's input order); returns outputs in
// the model's output order. Throws mpq::Error with ONNX Runtime's message on failure.
std::vector<at::Tensor> run_onnxruntime(const std::string& model_path,
                                        const std::vector<at::Tensor>& inputs);

// Runs the model repeatedly for about `seconds` with `threads` intra-op threads and returns the
// mean seconds per run.
double time_onnxruntime(const std::string& model_path, const std::vector<at::Tensor>& inputs,
                        int threads, double seconds);

}  // namespace mpq
