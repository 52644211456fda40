// Packed storage of sub-8-bit integer weights in QDQ ONNX files ("bit planes"). ONNX has 4-bit
// types only from opset 21, so for models of opsets 11-21 mpq stores a b-bit weight (b = 1..8) as
// a uint8 initializer of b bit planes, b/8 of a byte per element, plus a small subgraph of
// standard ops that unpacks it into the 8-bit integer tensor DequantizeLinear reads. ONNX Runtime
// folds that subgraph into a constant when it creates a session, so inference pays nothing for
// it; mpq's executor runs it like any other nodes; tools reading a packed model back recognise it
// with find_packed / read_packed.
//
// Layout. A weight q holds n = numel integers in [qmin, qmax], qmax = qmin + 2^b - 1 (qmin =
// -2^(b-1) for signed grids, 0 for unsigned ones); element e counts in row-major order. Stored is
// u = q - qmin in [0, 2^b - 1] as a uint8 tensor `planes` of shape [b, B], B = ceil(n / 8): bit k
// of u[e] is bit (e % 8) of byte planes[k][e / 8] (least significant bit first). Padding bits of
// each plane's last byte are written as zero and ignored when read. Size: b * ceil(n / 8) bytes.
//   u[e] = sum_k ((planes[k][e / 8] >> (e % 8)) & 1) << k,    q[e] = u[e] + qmin
// Example: b = 2, qmin = 0, q = [0 1 2 3 0 1 2 3 3] gives planes = [[0xAA 0x01] [0xCC 0x01]];
// b = 3, qmin = -4, q = [-4 3 0 -1] gives planes = [[0x0A] [0x0A] [0x06]].
// The unpacked element type (packed_type) is uint8 when qmin >= 0 and int8 when qmin < 0; the
// range must fit it, and DequantizeLinear's zero point must have that type too.
//
// Unpack subgraph written by emit_unpack, P = name_prefix; each node is named P_<tag> and so is
// its output value, except the last, whose output is `output`; constants are initializers P_<name>:
//   P_reshape_planes  Reshape(planes, P_planes_shape = [b, B, 1])           uint8 [b, B, 1]
//   P_shift           BitShift(., P_shifts = uint8 [0..7]), RIGHT           uint8 [b, B, 8]
//   P_mod             Mod(., P_two = uint8 scalar 2)                        uint8 0 or 1
//   P_cast_int32      Cast(., to = INT32)                                   int32 [b, B, 8]
//   P_mul             Mul(., P_weights = int32 [b, 1, 1] of 2^k)            int32 [b, B, 8]
//   P_sum             ReduceSum(., axes = [0], keepdims = 0)                int32 [B, 8]: u, padded
//   P_flatten         Reshape(., P_flat_shape = [8B])   (when n % 8 != 0)   int32 [8B]
//   P_slice           Slice(., P_starts = [0], P_ends = [n])  (likewise)    int32 [n]
//   P_reshape         Reshape(., P_shape = shape)                           int32 `shape`
//   P_add_qmin        Add(., P_qmin = int32 scalar qmin)  (when qmin != 0)  int32 q
//   P_cast            Cast(., to = INT8 or UINT8) -> output                 packed_type `shape`
// ReduceSum takes its axes as an attribute before opset 13 and as the input P_axes = [0] from 13.
// BitShift needs opset 11. Every op runs on a type ONNX Runtime's CPU provider registers for it
// (BitShift and Mod on uint8; Mul, ReduceSum and Add on int32). Cost: O(b * n) time and memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

// The opsets emit_unpack supports.
inline constexpr int64_t kMinPackedOpset = 11;
inline constexpr int64_t kMaxPackedOpset = 21;

// The unpacked element type for a b-bit grid starting at qmin: at::kByte (uint8) when qmin >= 0,
// at::kChar (int8) otherwise. Throws when bits is not in 1..8 or the range does not fit the type.
at::ScalarType packed_type(int bits, int64_t qmin);
// Bytes of the planes of `numel` elements: bits * ceil(numel / 8).
int64_t packed_bytes(int bits, int64_t numel);

// Packs integer values (any integer dtype, or a floating dtype holding integers) in
// [qmin, qmin + 2^bits - 1] into planes, a uint8 tensor [bits, ceil(n / 8)]. Throws naming the
// first value out of range (or not an integer) and the range. Example: a 4-bit signed weight:
//   at::Tensor planes = pack_bitplanes(q, 4, -8);
at::Tensor pack_bitplanes(const at::Tensor& q, int bits, int64_t qmin);
// The inverse: a packed_type(bits, qmin) tensor of `shape`. Throws when planes is not a uint8
// tensor of shape [bits, ceil(numel(shape) / 8)].
at::Tensor unpack_bitplanes(const at::Tensor& planes, int bits, int64_t qmin,
                            const std::vector<int64_t>& shape);

// Adds to `graph` the unpack subgraph above, which turns the uint8 initializer `planes` (already
// in graph->initializers) into the packed_type tensor `output` of `shape`, and returns the names of
// the nodes added. The nodes go right before the first node reading `output` (so a graph in
// topological order stays so), or at the end when none does yet. Throws when the graph's opset is
// outside 11..21, the planes do not match bits and shape, shape has no elements, `output` is
// already a value of the graph, or one of the new names (all start with name_prefix + "_") is.
// Example: emit_unpack(&g, "conv1.w_planes", 4, -8, {16, 3, 3, 3}, "conv1.w_q", "conv1.w_unpack");
std::vector<std::string> emit_unpack(Graph* graph, const std::string& planes, int bits,
                                     int64_t qmin, const std::vector<int64_t>& shape,
                                     const std::string& output, const std::string& name_prefix);

// A packed weight found in a graph.
struct PackedWeight {
  std::string planes;  // the uint8 initializer
  int bits = 0;
  int64_t qmin = 0;
  std::vector<int64_t> shape;
  std::vector<std::string> nodes;  // the unpack subgraph, in order
};

// Recognises `value` as the output of an unpack subgraph by its pattern, not its names: walking
// back from `value` along first inputs must reach a uint8 initializer through nodes whose op types,
// attributes and constant inputs (initializers) are exactly those emit_unpack writes for that
// initializer, the graph's opset and the bits, qmin and shape the chain's constants state. Names
// may differ, so a model renamed by another tool still matches. nullopt otherwise.
std::optional<PackedWeight> find_packed(const Graph& graph, const std::string& value);
// Evaluates a recognised unpack subgraph: sets *q to the integer weight (as unpack_bitplanes
// returns it) and returns true; returns false, leaving *q alone, when `value` is not produced by
// one. Example: at::Tensor q; if (read_packed(g, "conv1.w_q", &q)) report(q);
bool read_packed(const Graph& graph, const std::string& value, at::Tensor* q);

}  // namespace mpq
