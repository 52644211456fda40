// Op family: linear (de)quantisation, QuantizeLinear and DequantizeLinear, per tensor or per axis
// (opset 13+). Quantisation rounds half to even and saturates to the integer type;
// dequantisation is plain tensor arithmetic so that autograd reaches the scale (and a float input,
// which fake-quantisation graphs feed it).
#include <ATen/ATen.h>

#include <limits>
#include <string>

#include "exec/op_registry.h"

namespace mpq {
namespace {

// The scale (or zero point) shaped to broadcast against x: a scalar, or a vector along `axis`.
at::Tensor broadcast_param(OpContext& ctx, const at::Tensor& p, const at::Tensor& x,
                           const char* name) {
  if (p.numel() == 1) return p.reshape({});
  ctx.check(ctx.opset() >= 13, "input ", name, ": expected a scalar before opset 13, found shape ",
            p.sizes());
  int64_t block_size = ctx.attr_int("block_size", 0);
  ctx.check(block_size == 0, "attribute 'block_size': expected 0 (mpq does not implement blocked ",
            "quantization), found ", block_size);
  int64_t axis = ctx.attr_int("axis", 1);
  ctx.check(axis >= -x.dim() && axis < x.dim(), "attribute 'axis': expected a value in [", -x.dim(),
            ", ", x.dim() - 1, "], found ", axis);
  if (axis < 0) axis += x.dim();
  ctx.check(p.dim() == 1 && p.size(0) == x.size(axis), "input ", name,
            ": expected a scalar or a 1-D tensor of ", x.size(axis), " values (axis ", axis,
            "), found shape ", p.sizes());
  std::vector<int64_t> shape(size_t(x.dim()), 1);
  shape[size_t(axis)] = p.size(0);
  return p.reshape(shape);
}

template <typename T>
std::pair<double, double> range_of() {
  return {double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max())};
}

// The saturation range of a quantised type mpq can represent.
std::pair<double, double> quantized_range(OpContext& ctx, at::ScalarType type) {
  switch (type) {
    case at::kByte:
      return range_of<uint8_t>();
    case at::kChar:
      return range_of<int8_t>();
    case at::kShort:
      return range_of<int16_t>();
    case at::kInt:
      return range_of<int32_t>();
    default:
      ctx.fail("quantized type: expected uint8, int8, int16 or int32, found ", type);
  }
}

at::ScalarType output_type(OpContext& ctx) {
  if (ctx.has_input(2)) return ctx.input(2).scalar_type();
  int64_t code = ctx.attr_int("output_dtype", 0);
  switch (code) {
    case 0:
    case 2:
      return at::kByte;
    case 3:
      return at::kChar;
    case 5:
      return at::kShort;
    default:
      ctx.fail("attribute 'output_dtype': expected 2 (uint8), 3 (int8) or 5 (int16), found ", code);
  }
}

// float64 when either side is float64, float32 otherwise (float16 math loses the rounding).
at::ScalarType math_type(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kDouble || b.scalar_type() == at::kDouble ? at::kDouble
                                                                          : at::kFloat;
}

std::vector<at::Tensor> quantize_linear(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  const at::Tensor& scale = ctx.input(1);
  ctx.check(at::isFloatingType(x.scalar_type()) || x.scalar_type() == at::kInt,
            "input x: expected a floating-point or int32 tensor, found ", x.scalar_type());
  ctx.check(at::isFloatingType(scale.scalar_type()),
            "input y_scale: expected a floating-point tensor, found ", scale.scalar_type());
  at::ScalarType type = output_type(ctx);
  auto [lo, hi] = quantized_range(ctx, type);
  at::ScalarType math = math_type(x, scale);
  at::Tensor q = at::round(x.to(math) / broadcast_param(ctx, scale, x, "y_scale").to(math));
  if (ctx.has_input(2)) q = q + broadcast_param(ctx, ctx.input(2), x, "y_zero_point").to(math);
  return {q.clamp(lo, hi).to(type)};
}

std::vector<at::Tensor> dequantize_linear(OpContext& ctx) {
  const at::Tensor& x = ctx.input(0);
  const at::Tensor& scale_in = ctx.input(1);
  at::ScalarType type = scale_in.scalar_type();
  ctx.check(at::isFloatingType(type), "input x_scale: expected a floating-point tensor, found ",
            type);
  ctx.check(x.scalar_type() != at::kBool, "input x: expected an integer tensor, found Bool");
  at::Tensor scale = broadcast_param(ctx, scale_in, x, "x_scale");
  at::Tensor zero_point =
      ctx.has_input(2) ? broadcast_param(ctx, ctx.input(2), x, "x_zero_point") : at::Tensor();
  at::Tensor centred;
  if (at::isFloatingType(x.scalar_type())) {
    centred = zero_point.defined() ? x.to(type) - zero_point.to(type) : x.to(type);
  } else {
    // Subtract in int64 so that int32 inputs keep every bit before the conversion.
    centred = (zero_point.defined() ? x.to(at::kLong) - zero_point.to(at::kLong) : x).to(type);
  }
  return {centred * scale};
}

}  // namespace

void register_quant_ops(OpRegistry& r) {
  // 13 adds per-axis parameters, 19 float8 and saturate, 21 blocks and 4/16-bit types; the
  // representable subset (no float8, no uint16/int4, no blocks) behaves the same in all of them.
  r.add("QuantizeLinear", 10, 1000, quantize_linear);
  r.add("DequantizeLinear", 10, 1000, dequantize_linear);
}

}  // namespace mpq
