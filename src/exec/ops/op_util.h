// Small helpers shared by several op families: axis normalisation with ONNX-style errors, ATen's
// pad order, and the compute type for float16 on the CPU (libtorch 1.13 has no CPU float16
// kernels for convolution, matrix products or normalisation).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "exec/op_context.h"

namespace mpq {

// Maps an axis in [-rank, rank) to [0, rank). Negative axes only became legal at opset 11, but
// older exporters never write them, so accepting them everywhere costs nothing.
inline int64_t normalize_axis(const OpContext& ctx, const char* name, int64_t axis, int64_t rank) {
  ctx.check(axis >= -rank && axis < rank, "'", name, "': expected an axis in [", -rank, ", ",
            rank - 1, "], found ", axis);
  return axis < 0 ? axis + rank : axis;
}

// Normalises every axis and rejects repeats.
inline std::vector<int64_t> normalize_axes(const OpContext& ctx, const char* name,
                                           std::vector<int64_t> axes, int64_t rank) {
  std::vector<bool> seen(size_t(rank), false);
  for (int64_t& a : axes) {
    a = normalize_axis(ctx, name, a, rank);
    ctx.check(!seen[size_t(a)], "'", name, "': axis ", a, " is listed twice");
    seen[size_t(a)] = true;
  }
  return axes;
}

// ONNX lists pads as all begins then all ends; ATen's pad list runs from the last axis backwards,
// (begin, end) per axis.
inline std::vector<int64_t> aten_pads(const std::vector<int64_t>& begin,
                                      const std::vector<int64_t>& end) {
  std::vector<int64_t> pads;
  for (size_t i = begin.size(); i-- > 0;) {
    pads.push_back(begin[i]);
    pads.push_back(end[i]);
  }
  return pads;
}

// A per-spatial-axis attribute (kernel_shape, strides, dilations): `rank` values, each
// `fallback` when the attribute is absent.
inline std::vector<int64_t> spatial_ints(const OpContext& ctx, const char* name, int64_t rank,
                                         int64_t fallback) {
  std::vector<int64_t> v = ctx.attr_ints(name, std::vector<int64_t>(size_t(rank), fallback));
  ctx.check(int64_t(v.size()) == rank, "attribute '", name, "': expected ", rank,
            " values (one per spatial axis), found ", v.size());
  return v;
}

// The type to compute in: float32 for float16 tensors on the CPU, the tensor's own otherwise.
inline at::ScalarType compute_type(const at::Tensor& x) {
  return x.is_cpu() && x.scalar_type() == at::kHalf ? at::kFloat : x.scalar_type();
}

}  // namespace mpq
