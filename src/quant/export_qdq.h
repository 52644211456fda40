// Writes a QuantizedModel as a QDQ ONNX graph that ONNX Runtime runs (issue 4):
//   weights      integer tensor -> DequantizeLinear (per tensor, or per output channel with `axis`)
//                -> the layer. Per-group scales dequantize a [rows, group] view that Reshape (and
//                Slice, Transpose) turn back into the weight's shape.
//   activations  the layer's input -> QuantizeLinear -> DequantizeLinear (8 bits: uint8 for
//                unsigned grids, int8 for signed); below 8 bits a Clip to the grid's real range
//                comes first, so the 8-bit types carry a 2-7 bit grid exactly; 16 bits use the
//                float chain Div, Round, Add, Clip, Sub, Mul.
//   multipoint   one DequantizeLinear per point over the channels that use it, scattered back to
//                all channels with Concat + Gather, summed with Sum (methods.md §3): the same
//                b-bit operands, executed as their sum.
// Storage: 8-bit weights as int8/uint8 initializers; 2-4 bit weights of opset-21 models as INT4 /
// UINT4 (two values per byte, read by DequantizeLinear directly); other 2-7 bit weights as bit
// planes (packing.h) unpacked by a constant subgraph of standard ops that ONNX Runtime folds at
// load time, so the file holds n * b / 8 bytes per weight (tensors whose saving would not repay the
// subgraph's ~600 bytes stay one byte per value); 16-bit weights as int16 with Cast, Sub, Mul.
// With storage "int8" every sub-8-bit weight is stored as one int8 per value instead.
// Integer types follow the int8 format (int8_format.h): u8u8 shifts signed grids to unsigned ones
// and s8s8 unsigned to signed, zero points moving with them, so the real values are unchanged.
// The format is recorded in the model's metadata (mpq.quantization: info.int8_format).
// The outputs equal the simulation (simulate.h) up to float rounding: both compute
// (clamp(round(x / s) + z) - z) * s with the same s and z.
#pragma once

#include <cstdint>
#include <string>

#include "onnx/graph.h"
#include "quant/ptq.h"

namespace mpq {

struct QdqOptions {
  std::string weight_storage = "packed";  // packed | int8
  // Integer types for the runtime's int8 kernels (int8_format.h): auto, u8s8, s8s8, u8u8,
  // reduce-range. "auto" is resolved on this machine's CPU. reduce-range must be applied to the
  // plan before quantization (apply_int8_format; run_quantize and QAT do).
  std::string int8_format = "auto";
};

// Sizes of the exported graph's tensors. Real bytes of the stored tensors, and the papers'
// convention (weights only: sum over layers of n_l * b_l / 8, multipoint counting every point,
// float layers at 32 bits; MB = 2^20 bytes).
struct SizeReport {
  int64_t weight_bytes = 0;  // integer weights as stored (packed planes, int8, int16)
  int64_t param_bytes = 0;   // scales, zero points, indices, shapes
  int64_t float_bytes = 0;   // float tensors left as they are (biases, unquantized weights)
  int64_t total_bytes() const { return weight_bytes + param_bytes + float_bytes; }
  double paper_bytes = 0;          // weights only, at their bit widths
  double float_paper_bytes = 0;    // the same weights at 32 bits
  double weight_bits_average = 0;  // paper_bytes * 8 / quantizable weights
};

// The opset the export writes: the model's, raised to 13 (per-axis QuantizeLinear and
// DequantizeLinear) by upgrade_opset when it is older.
int64_t qdq_opset(const Graph& model);
// Throws, naming the node, when the model cannot be exported (a node the opset upgrade cannot
// carry to qdq_opset): for the checks before any work.
void check_exportable(const Graph& model);

// Example: SizeReport s; Graph q = export_qdq(model, {}, &s); export_onnx(q, "model.q.onnx");
Graph export_qdq(const QuantizedModel& model, const QdqOptions& options, SizeReport* sizes);

}  // namespace mpq
