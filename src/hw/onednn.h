// Measured kernel latency on this CPU through oneDNN (issue 9, methods.md §2: LCPAQ's
// hardware-aware module with real numbers instead of a model). One convolution or matrix product
// per call, at the shapes a layer has in the model, as float32 (f32 src, weights, dst) or int8
// (u8 activations, s8 weights, f32 bias, u8 dst requantized with per-channel output scales: the
// kernel an int8 runtime executes for a QDQ layer; weights in the range the instruction set sums
// exactly, onednn_int8_weight_bits()). Memory layouts are oneDNN's choice (format
// any), inputs are reordered into them before timing, so the time is the kernel's alone.
// Timing: `warmup` runs, then `repeats` samples, each the mean of enough back-to-back runs to
// last at least `min_sample_ms`; the median sample is the result. No libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace mpq {

struct ConvGeometry {
  int64_t batch = 1, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t groups = 1;
  int64_t out_h() const;
  int64_t out_w() const;
  int64_t macs() const;
  std::string describe() const;  // "1x16x28x28 -> 32, 3x3 s1 p1 g1"
};

// src [m, k] times weights [k, n] (+ bias [n]).
struct MatMulGeometry {
  int64_t m = 1, k = 0, n = 0;
  int64_t macs() const { return m * k * n; }
  std::string describe() const;
};

enum class KernelType { kFloat32, kInt8 };

struct TimingOptions {
  int warmup = 3;
  int repeats = 15;
  double min_sample_ms = 2.0;
};

struct KernelTiming {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int repeats = 0;
  int64_t runs_per_sample = 0;
  std::string implementation;  // oneDNN's implementation, e.g. "brg:avx512_core_vnni"
};

KernelTiming time_conv(const ConvGeometry& g, KernelType type, const TimingOptions& options);
KernelTiming time_matmul(const MatMulGeometry& g, KernelType type, const TimingOptions& options);

// Several kernels run back to back as one pass (a network's layers in order), each with its own
// buffers; the pass is timed as above. For the check that per-kernel times add up.
using Kernel = std::variant<ConvGeometry, MatMulGeometry>;
KernelTiming time_pass(const std::vector<Kernel>& pass, KernelType type,
                       const TimingOptions& options);

// Runs one kernel on given data (NCHW / OIHW or [k, n] row-major, plain float values; for int8 the
// values must be integers in range: src in [0, 255], weights in the range of
// onednn_int8_weight_bits()) and returns the output (NCHW / [m, n]). int8 output:
// round(acc * scale[oc] + bias) saturated to [0, 255]. Throws for int8 weights outside that range
// instead of returning what the kernel would compute. For tests that the geometry and data types
// are what the timing runs.
std::vector<float> run_conv(const ConvGeometry& g, KernelType type, const std::vector<float>& src,
                            const std::vector<float>& weights, const std::vector<float>& bias,
                            const std::vector<float>& scales);
std::vector<float> run_matmul(const MatMulGeometry& g, KernelType type,
                              const std::vector<float>& src, const std::vector<float>& weights,
                              const std::vector<float>& bias, const std::vector<float>& scales);

// oneDNN's version, e.g. "oneDNN 2.6.3".
std::string onednn_version();

// The instruction set oneDNN's kernels use in this process, after any ONEDNN_MAX_CPU_ISA limit:
// "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_amx", ...
std::string onednn_isa();

// The signed weight width whose int8 products oneDNN's kernels sum exactly on that instruction set.
// 8 with VNNI or AMX: u8 x s8 products accumulate in 32 bits. 7 without: the kernels multiply with
// vpmaddubsw, which adds each pair of neighbouring u8 x s8 products into a saturating 16-bit lane,
// so 255 * 127 * 2 overflows while 255 * 64 * 2 does not. The profiler's int8 kernels run weights
// in this range (timing does not depend on the values; results then are what the layer computes).
int onednn_int8_weight_bits();

}  // namespace mpq
