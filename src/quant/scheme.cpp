#include "quant/scheme.h"

#include <ATen/ATen.h>

#include <limits>

#include "core/error.h"

namespace mpq {
namespace {

using G = Granularity;

// One row per scheme; kNumSchemes makes a missing or extra row a build error.
constexpr std::array<SchemeInfo, kNumSchemes> kSchemes = {{
    {"float", false, true, true, G::kTensor, "left unquantized (float32)"},
    {"sym-tensor", true, true, true, G::kTensor, "signed grid, zero point 0, one scale"},
    {"sym-channel", true, true, true, G::kChannel,
     "signed grid, zero point 0, one scale per output channel (default for weights)"},
    {"sym-group", true, true, true, G::kGroup,
     "signed grid, zero point 0, one scale per group of g inputs of a channel"},
    {"usym-tensor", true, true, false, G::kTensor,
     "unsigned grid, zero point 0 (non-negative data), one scale"},
    {"usym-channel", true, true, false, G::kChannel,
     "unsigned grid, zero point 0, one scale per output channel"},
    {"usym-group", true, true, false, G::kGroup,
     "unsigned grid, zero point 0, one scale per group"},
    {"affine-tensor", true, false, false, G::kTensor,
     "unsigned grid with a zero point, one scale (default for activations)"},
    {"affine-channel", true, false, false, G::kChannel,
     "unsigned grid with a zero point per output channel"},
    {"affine-group", true, false, false, G::kGroup, "unsigned grid with a zero point per group"},
    {"saffine-tensor", true, false, true, G::kTensor, "signed grid with a zero point, one scale"},
    {"saffine-channel", true, false, true, G::kChannel,
     "signed grid with a zero point per output channel"},
    {"saffine-group", true, false, true, G::kGroup, "signed grid with a zero point per group"},
}};

// Keeps 1 / scale finite in float32 for all-zero tensors.
constexpr double kMinScale = 1e-12;

}  // namespace

const std::array<SchemeInfo, kNumSchemes>& scheme_table() { return kSchemes; }

const SchemeInfo& find_scheme(const std::string& name) {
  std::string names;
  for (const auto& s : kSchemes) {
    if (name == s.name) return s;
    names += names.empty() ? s.name : std::string(", ") + s.name;
  }
  MPQ_FAIL("quantizer scheme '", name, "': expected one of ", names);
}

void check_spec(const QuantSpec& spec, const std::string& where) {
  const SchemeInfo& info = find_scheme(spec.scheme);
  if (!info.quantized) return;
  MPQ_CHECK((spec.bits >= 2 && spec.bits <= 8) || spec.bits == 16 || spec.bits == 32, where,
            ": bits: expected 2-8, 16 or 32 (float), found ", spec.bits);
  if (info.granularity == Granularity::kGroup) {
    MPQ_CHECK(spec.group_size > 0, where, ": scheme '", spec.scheme,
              "' needs a group size > 0, found ", spec.group_size);
  }
}

QuantSpec weight_spec(int bits) { return {bits, "sym-channel", 0}; }
QuantSpec activation_spec(int bits) { return {bits, "affine-tensor", 0}; }

IntRange int_range(int bits, bool is_signed) {
  MPQ_ASSERT(bits >= 1 && bits <= 31, "bits ", bits);
  if (is_signed) return {-(int64_t(1) << (bits - 1)), (int64_t(1) << (bits - 1)) - 1};
  return {0, (int64_t(1) << bits) - 1};
}

QParams params_from_range(const at::Tensor& lo_in, const at::Tensor& hi_in, int bits,
                          const SchemeInfo& scheme) {
  MPQ_ASSERT(scheme.quantized, "scheme ", scheme.name, " is not quantized");
  IntRange r = int_range(bits, scheme.is_signed);
  at::Tensor lo = lo_in.detach().to(at::kDouble);
  at::Tensor hi = hi_in.detach().to(at::kDouble);
  QParams p;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  if (scheme.symmetric) {
    at::Tensor top = scheme.is_signed ? at::maximum(lo.abs(), hi.abs()) : hi.clamp_min(0);
    p.scale = (top / double(r.qmax)).clamp_min(kMinScale);
    p.zero_point = at::zeros_like(p.scale);
  } else {
    lo = lo.clamp_max(0);
    hi = hi.clamp_min(0);
    p.scale = ((hi - lo) / double(r.qmax - r.qmin)).clamp_min(kMinScale);
    p.zero_point = (double(r.qmin) - at::round(lo / p.scale)).clamp(double(r.qmin), double(r.qmax));
  }
  p.scale = p.scale.to(at::kFloat);
  p.zero_point = p.zero_point.to(at::kFloat);
  return p;
}

at::Tensor quantize_to_int(const at::Tensor& x, const QParams& p) {
  at::Tensor s = p.scale.to(x.scalar_type());
  at::Tensor z = p.zero_point.to(x.scalar_type());
  return (at::round(x / s) + z).clamp(double(p.qmin), double(p.qmax));
}

at::Tensor dequantize(const at::Tensor& q, const QParams& p) {
  at::ScalarType t = at::isFloatingType(q.scalar_type()) ? q.scalar_type() : at::kFloat;
  return (q.to(t) - p.zero_point.to(t)) * p.scale.to(t);
}

at::Tensor fake_quantize(const at::Tensor& x, const QParams& p) {
  at::Tensor s = p.scale.to(x.scalar_type());
  at::Tensor z = p.zero_point.to(x.scalar_type());
  at::Tensor lo = (double(p.qmin) - z) * s;
  at::Tensor hi = (double(p.qmax) - z) * s;
  at::Tensor inside = at::clamp(x, lo, hi);  // gradient 1 inside the range, 0 outside
  at::Tensor q;
  {
    at::NoGradGuard no_grad;
    q = dequantize(quantize_to_int(x.detach(), p), p);
  }
  return inside + (q - inside.detach());
}

RowLayout make_row_layout(const std::vector<int64_t>& shape, int64_t channel_axis,
                          const QuantSpec& spec) {
  RowLayout l;
  l.shape = shape;
  int64_t rank = int64_t(shape.size());
  if (channel_axis < 0) channel_axis += rank;
  MPQ_ASSERT(rank == 0 || (channel_axis >= 0 && channel_axis < rank), "axis ", channel_axis);
  l.channel_axis = rank == 0 ? 0 : channel_axis;
  l.granularity = spec.info().granularity;
  l.group_size = spec.group_size;
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  l.channels = rank == 0 ? 1 : shape[size_t(l.channel_axis)];
  l.k = l.channels == 0 ? 0 : numel / l.channels;
  l.padded_k = l.k;
  switch (l.granularity) {
    case Granularity::kTensor:
      l.rows = 1;
      l.row_size = numel;
      break;
    case Granularity::kChannel:
      l.rows = l.channels;
      l.row_size = l.k;
      break;
    case Granularity::kGroup:
      MPQ_ASSERT(l.group_size > 0, "group size");
      l.padded_k = (l.k + l.group_size - 1) / l.group_size * l.group_size;
      l.rows = l.channels * (l.padded_k / l.group_size);
      l.row_size = l.group_size;
      break;
  }
  return l;
}

at::Tensor to_channel_rows(const at::Tensor& w, int64_t channel_axis) {
  if (w.dim() == 0) return w.reshape({1, 1});
  return w.movedim(channel_axis, 0).reshape({w.size(channel_axis), -1});
}

at::Tensor from_channel_rows(const at::Tensor& rows, const std::vector<int64_t>& shape,
                             int64_t channel_axis) {
  if (shape.empty()) return rows.reshape({});
  std::vector<int64_t> moved = shape;
  moved.erase(moved.begin() + channel_axis);
  moved.insert(moved.begin(), shape[size_t(channel_axis)]);
  return rows.reshape(moved).movedim(0, channel_axis);
}

at::Tensor to_rows(const at::Tensor& w, const RowLayout& l) {
  switch (l.granularity) {
    case Granularity::kTensor:
      return w.reshape({1, -1});
    case Granularity::kChannel:
      return to_channel_rows(w, l.channel_axis);
    case Granularity::kGroup: {
      at::Tensor rows = to_channel_rows(w, l.channel_axis);
      if (l.padded_k > l.k) rows = at::constant_pad_nd(rows, {0, l.padded_k - l.k});
      return rows.reshape({l.rows, l.group_size});
    }
  }
  MPQ_ASSERT(false, "granularity");
  return {};
}

at::Tensor from_rows(const at::Tensor& rows, const RowLayout& l) {
  switch (l.granularity) {
    case Granularity::kTensor:
      return rows.reshape(l.shape);
    case Granularity::kChannel:
      return from_channel_rows(rows, l.shape, l.channel_axis);
    case Granularity::kGroup: {
      at::Tensor channel_rows = rows.reshape({l.channels, l.padded_k});
      if (l.padded_k > l.k) channel_rows = channel_rows.narrow(1, 0, l.k);
      return from_channel_rows(channel_rows, l.shape, l.channel_axis);
    }
  }
  MPQ_ASSERT(false, "granularity");
  return {};
}

}  // namespace mpq
