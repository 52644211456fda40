#include "quant/patches.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace mpq {
namespace {

int64_t int_attr(const Node& n, const char* name, int64_t fallback) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? fallback : it->second.i;
}

std::vector<int64_t> ints_attr(const Node& n, const char* name, std::vector<int64_t> fallback) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() || it->second.ints.empty() ? fallback : it->second.ints;
}

std::string str_attr(const Node& n, const char* name) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? "" : it->second.s;
}

// Conv input [N, C, (H,) W] -> [groups, N * L, C / groups * prod(kernel)].
at::Tensor conv_patches(const Node& n, const at::Tensor& weight, at::Tensor x, int64_t groups) {
  int64_t spatial = weight.dim() - 2;
  if (spatial == 1) {  // view a 1-D conv as 2-D with height 1
    x = x.unsqueeze(2);
  }
  std::vector<int64_t> kernel(weight.sizes().begin() + 2, weight.sizes().end());
  std::vector<int64_t> strides = ints_attr(n, "strides", std::vector<int64_t>(size_t(spatial), 1));
  std::vector<int64_t> dilations =
      ints_attr(n, "dilations", std::vector<int64_t>(size_t(spatial), 1));
  std::vector<int64_t> pads = ints_attr(n, "pads", std::vector<int64_t>(size_t(2 * spatial), 0));
  std::string auto_pad = str_attr(n, "auto_pad");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int64_t d = 0; d < spatial; ++d) {
      int64_t in = x.size(x.dim() - spatial + d);
      int64_t out = (in + strides[size_t(d)] - 1) / strides[size_t(d)];
      int64_t total = std::max<int64_t>(
          (out - 1) * strides[size_t(d)] + (kernel[size_t(d)] - 1) * dilations[size_t(d)] + 1 - in,
          0);
      int64_t small = total / 2;
      pads[size_t(d)] = auto_pad == "SAME_UPPER" ? small : total - small;
      pads[size_t(d + spatial)] = total - pads[size_t(d)];
    }
  } else if (auto_pad == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  }
  if (spatial == 1) {
    kernel.insert(kernel.begin(), 1);
    strides.insert(strides.begin(), 1);
    dilations.insert(dilations.begin(), 1);
    pads = {0, pads[0], 0, pads[1]};
  }
  // constant_pad_nd takes (last dim begin, end, previous dim begin, end).
  x = at::constant_pad_nd(x, {pads[1], pads[3], pads[0], pads[2]});
  at::Tensor cols = at::im2col(x, kernel, dilations, {0, 0}, strides);  // [N, C*kh*kw, L]
  int64_t batch = cols.size(0), k = cols.size(1) / groups, positions = cols.size(2);
  return cols.reshape({batch, groups, k, positions})
      .permute({1, 0, 3, 2})
      .reshape({groups, batch * positions, k});
}

}  // namespace

int64_t output_channel_axis(const Graph& g, const QuantLayer& l) {
  const Node& n = g.nodes[size_t(l.node)];
  if (l.op == "Conv") return 0;
  if (l.op == "ConvTranspose") return 1;
  if (l.op == "Gemm") return int_attr(n, "transB", 0) != 0 ? 0 : 1;
  MPQ_ASSERT(l.op == "MatMul", "op ", l.op);
  int64_t rank = g.initializers.at(l.weight).dim();
  return l.weight_input == 1 ? rank - 1 : rank - 2;
}

int64_t activation_input(const QuantLayer& l) { return l.weight_input == 0 ? 1 : 0; }

int64_t layer_groups(const Graph& g, const QuantLayer& l) {
  if (l.op != "Conv" && l.op != "ConvTranspose") return 1;
  return int_attr(g.nodes[size_t(l.node)], "group", 1);
}

bool has_patches(const Graph& g, const QuantLayer& l) {
  int64_t rank = g.initializers.at(l.weight).dim();
  if (l.op == "Conv") return rank == 3 || rank == 4;
  if (l.op == "Gemm") return true;
  if (l.op == "MatMul") return rank == 2;
  return false;
}

at::Tensor layer_patches(const Graph& g, const QuantLayer& l, const at::Tensor& input) {
  MPQ_ASSERT(has_patches(g, l), "layer ", l.name, " has no patch view");
  const Node& n = g.nodes[size_t(l.node)];
  const at::Tensor& w = g.initializers.at(l.weight);
  at::Tensor x = input.detach().to(w.scalar_type());
  at::Tensor p;
  if (l.op == "Conv") {
    p = conv_patches(n, w, x, layer_groups(g, l));
  } else if (l.op == "Gemm") {
    if (int_attr(n, "transA", 0) != 0) x = x.t();
    p = x.reshape({1, x.size(0), -1});
  } else if (l.weight_input == 1) {  // x @ W: rows of x
    p = x.reshape({1, -1, w.size(0)});
  } else {  // W @ x: columns of x
    p = x.transpose(-1, -2).reshape({1, -1, w.size(1)});
  }
  return p;
}

at::Tensor subsample_rows(const at::Tensor& p, int64_t max_rows) {
  if (max_rows <= 0 || p.size(1) <= max_rows) return p;
  int64_t step = (p.size(1) + max_rows - 1) / max_rows;
  return p.slice(1, 0, p.size(1), step);
}

}  // namespace mpq
