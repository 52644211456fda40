// Quantizer schemes (methods.md, shared notation): how a tensor is mapped onto a b-bit integer
// grid. A scheme fixes the grid (signed or unsigned), the zero point (symmetric: 0; affine: chosen
// so that the real range [lo, hi] fits and 0 is exact) and the granularity (one scale per tensor,
// per output channel, or per group of `group_size` consecutive elements of an output channel along
// its input dimension). Every scheme is one row of one table; plans, `--help` and the tests walk
// the table. Bits: 2-8 and 16; the "float" row leaves a tensor unquantized.
//
//   q = clamp(round_half_even(x / s) + z, qmin, qmax),   x_hat = (q - z) * s
//   signed grid [-2^(b-1), 2^(b-1) - 1], unsigned [0, 2^b - 1]
//   symmetric signed:   s = max(|lo|, |hi|) / (2^(b-1) - 1), z = 0
//   symmetric unsigned: s = max(hi, 0) / (2^b - 1), z = 0 (for non-negative data)
//   affine:             lo <= 0 <= hi enforced, s = (hi - lo) / (qmax - qmin), z = qmin - round(lo
//   / s)
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mpq {

enum class Granularity { kTensor, kChannel, kGroup };

struct SchemeInfo {
  const char* name;  // "sym-channel"
  bool quantized;    // false only for "float"
  bool symmetric;
  bool is_signed;
  Granularity granularity;
  const char* description;
};

inline constexpr size_t kNumSchemes = 13;
const std::array<SchemeInfo, kNumSchemes>& scheme_table();
// Throws listing the valid names. Example: find_scheme("affine-tensor").
const SchemeInfo& find_scheme(const std::string& name);

// What a plan gives one weight or activation: a scheme at a bit width.
struct QuantSpec {
  int bits = 8;
  std::string scheme = "sym-channel";
  int64_t group_size = 0;  // for *-group schemes; elements per group along the input dimension
  const SchemeInfo& info() const { return find_scheme(scheme); }
  bool quantized() const { return info().quantized && bits < 32; }
};

// Throws "WHERE: ..." when bits are outside {2..8, 16, 32} or a group scheme has no group size.
void check_spec(const QuantSpec& spec, const std::string& where);
// The default specs: weights symmetric signed per channel, activations affine unsigned per tensor.
QuantSpec weight_spec(int bits);
QuantSpec activation_spec(int bits);

struct IntRange {
  int64_t qmin = 0, qmax = 0;
};
IntRange int_range(int bits, bool is_signed);

// Scale and zero point, broadcastable against the tensor they quantize (one value, or one per row
// of a RowLayout). Both float32; the zero point holds integers.
struct QParams {
  at::Tensor scale;
  at::Tensor zero_point;
  int64_t qmin = 0, qmax = 0;
};

// Parameters from a real range; lo and hi are tensors of equal shape (per row) or 0-d.
// Zero or negative widths get the smallest scale, so every value quantizes to the zero point.
QParams params_from_range(const at::Tensor& lo, const at::Tensor& hi, int bits,
                          const SchemeInfo& scheme);

// x_hat with straight-through gradients: d x_hat / d x = 1 where x lies inside the grid's real
// range [(qmin - z) s, (qmax - z) s] and 0 outside. Gradients do not reach scale or zero point.
at::Tensor fake_quantize(const at::Tensor& x, const QParams& p);
// The integers q (float tensor holding integers; cast for storage).
at::Tensor quantize_to_int(const at::Tensor& x, const QParams& p);
at::Tensor dequantize(const at::Tensor& q, const QParams& p);

// A weight viewed as rows that each own one scale: [1, numel] per tensor; [channels, K] per
// channel (output-channel axis moved first, K = the remaining elements in order); per group
// [channels * ceil(K / g), g] after zero-padding K to a multiple of g.
struct RowLayout {
  std::vector<int64_t> shape;  // the weight's shape
  int64_t channel_axis = 0;
  Granularity granularity = Granularity::kChannel;
  int64_t group_size = 0;
  int64_t channels = 1;  // shape[channel_axis]
  int64_t k = 1;         // elements per channel
  int64_t padded_k = 1;  // k rounded up to a multiple of group_size (group), else k
  int64_t rows = 1;
  int64_t row_size = 1;
};
RowLayout make_row_layout(const std::vector<int64_t>& shape, int64_t channel_axis,
                          const QuantSpec& spec);
// Both differentiable; from_rows(to_rows(w)) == w.
at::Tensor to_rows(const at::Tensor& w, const RowLayout& layout);
at::Tensor from_rows(const at::Tensor& rows, const RowLayout& layout);
// [channels, K]: the per-channel view whatever the granularity (multipoint, bias correction).
at::Tensor to_channel_rows(const at::Tensor& w, int64_t channel_axis);
at::Tensor from_channel_rows(const at::Tensor& rows, const std::vector<int64_t>& shape,
                             int64_t channel_axis);

}  // namespace mpq
