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

// A Conv's window geometry, 1-D kernels seen as 2-D with height 1.
struct ConvGeometry {
  std::vector<int64_t> kernel, strides, dilations;  // {h, w}
  std::vector<int64_t> pads;                        // {top, left, bottom, right}
};

// `x` [N, C, (H,) W] becomes 4-D; the geometry follows the node's attributes and auto_pad.
ConvGeometry conv_geometry(const Node& n, const at::Tensor& weight, at::Tensor* x) {
  int64_t spatial = weight.dim() - 2;
  if (spatial == 1) *x = x->unsqueeze(2);  // view a 1-D conv as 2-D with height 1
  ConvGeometry c;
  c.kernel.assign(weight.sizes().begin() + 2, weight.sizes().end());
  c.strides = ints_attr(n, "strides", std::vector<int64_t>(size_t(spatial), 1));
  c.dilations = ints_attr(n, "dilations", std::vector<int64_t>(size_t(spatial), 1));
  c.pads = ints_attr(n, "pads", std::vector<int64_t>(size_t(2 * spatial), 0));
  std::string auto_pad = str_attr(n, "auto_pad");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int64_t d = 0; d < spatial; ++d) {
      size_t i = size_t(d);
      int64_t in = x->size(x->dim() - spatial + d);
      int64_t out = (in + c.strides[i] - 1) / c.strides[i];
      int64_t total = std::max<int64_t>(
          (out - 1) * c.strides[i] + (c.kernel[i] - 1) * c.dilations[i] + 1 - in, 0);
      int64_t small = total / 2;
      c.pads[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      c.pads[size_t(d + spatial)] = total - c.pads[i];
    }
  } else if (auto_pad == "VALID") {
    std::fill(c.pads.begin(), c.pads.end(), 0);
  }
  if (spatial == 1) {
    c.kernel.insert(c.kernel.begin(), 1);
    c.strides.insert(c.strides.begin(), 1);
    c.dilations.insert(c.dilations.begin(), 1);
    c.pads = {0, c.pads[0], 0, c.pads[1]};
  }
  return c;
}

// The zero-padded input [..., H + pads, W + pads] and the output size {OH, OW}.
at::Tensor pad_input(const at::Tensor& x, const ConvGeometry& c, int64_t* oh, int64_t* ow) {
  // constant_pad_nd takes (last dim begin, end, previous dim begin, end).
  at::Tensor p = at::constant_pad_nd(x, {c.pads[1], c.pads[3], c.pads[0], c.pads[2]});
  *oh = (p.size(-2) - c.dilations[0] * (c.kernel[0] - 1) - 1) / c.strides[0] + 1;
  *ow = (p.size(-1) - c.dilations[1] * (c.kernel[1] - 1) - 1) / c.strides[1] + 1;
  return p;
}

// Conv input [N, C, (H,) W] -> [groups, N * L, C / groups * prod(kernel)].
at::Tensor conv_patches(const Node& n, const at::Tensor& weight, at::Tensor x, int64_t groups) {
  ConvGeometry c = conv_geometry(n, weight, &x);
  int64_t oh = 0, ow = 0;
  x = pad_input(x, c, &oh, &ow);
  at::Tensor cols = at::im2col(x, c.kernel, c.dilations, {0, 0}, c.strides);  // [N, C*kh*kw, L]
  int64_t batch = cols.size(0), k = cols.size(1) / groups, positions = cols.size(2);
  return cols.reshape({batch, groups, k, positions})
      .permute({1, 0, 3, 2})
      .reshape({groups, batch * positions, k});
}

// Sums over every window position of a padded [C, Hp, Wp] tensor: [C, kh, kw] -> [groups, K].
at::Tensor window_sums(const at::Tensor& padded, const ConvGeometry& c, int64_t oh, int64_t ow,
                       int64_t groups) {
  using at::indexing::Slice;
  std::vector<at::Tensor> sums;
  for (int64_t a = 0; a < c.kernel[0]; ++a) {
    for (int64_t b = 0; b < c.kernel[1]; ++b) {
      int64_t h0 = a * c.dilations[0], w0 = b * c.dilations[1];
      sums.push_back(padded
                         .index({Slice(), Slice(h0, h0 + c.strides[0] * (oh - 1) + 1, c.strides[0]),
                                 Slice(w0, w0 + c.strides[1] * (ow - 1) + 1, c.strides[1])})
                         .sum({1, 2}));
    }
  }
  return at::stack(sums, 1).reshape({groups, -1});  // [C, kh*kw]: c major, like im2col
}

// Rows r = first, first + step, ... of the conv's N * OH * OW patch rows: [groups, R, K].
at::Tensor conv_rows(const at::Tensor& padded, const ConvGeometry& c, int64_t oh, int64_t ow,
                     int64_t groups, int64_t first, int64_t step) {
  int64_t total = padded.size(0) * oh * ow;
  at::Tensor r = at::arange(first, total, step, at::kLong);
  at::Tensor n = r.div(oh * ow, "floor"), pos = r.remainder(oh * ow);
  at::Tensor h = pos.div(ow, "floor") * c.strides[0], w = pos.remainder(ow) * c.strides[1];
  // Channels last, so that each gathered row is contiguous.
  at::Tensor nhwc = padded.permute({0, 2, 3, 1}).contiguous();
  std::vector<at::Tensor> taps;
  for (int64_t a = 0; a < c.kernel[0]; ++a) {
    for (int64_t b = 0; b < c.kernel[1]; ++b) {
      taps.push_back(nhwc.index({n, h + a * c.dilations[0], w + b * c.dilations[1]}));  // [R, C]
    }
  }
  int64_t rows = r.size(0);
  return at::stack(taps, 2)  // [R, C, kh*kw]
      .reshape({rows, groups, -1})
      .permute({1, 0, 2});
}

void add_to(at::Tensor* sum, const at::Tensor& value) {
  *sum = sum->defined() ? *sum + value : value;
}

// The Gram matrix of the rows [groups, R, K]: a float32 product (one batch's rows; float64 would
// double its time) added to the float64 sums.
void add_gram(const at::Tensor& rows, PatchSums* s) {
  at::Tensor d = rows.to(at::kFloat);
  add_to(&s->gram, at::bmm(d.transpose(1, 2), d).to(at::kDouble));
  add_to(&s->gram_sum, d.to(at::kDouble).sum(1));
  s->gram_rows += d.size(1);
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

void accumulate_patches(const Graph& g, const QuantLayer& l, const at::Tensor& input,
                        const PatchRequest& want, PatchSums* s) {
  if (!want.mean && !want.square && want.gram_rows < 0) return;
  at::NoGradGuard no_grad;
  const at::Tensor& w = g.initializers.at(l.weight);
  if (l.op != "Conv") {  // the patches are a view of the input: [1, M, K]
    at::Tensor p = layer_patches(g, l, input);
    if (want.mean || want.square) s->rows += p.size(1);
    // In row blocks of about 4M values, so the float64 copy stays small.
    int64_t block = std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, p.size(2)));
    for (int64_t r0 = 0; r0 < p.size(1) && (want.mean || want.square); r0 += block) {
      at::Tensor d = p.slice(1, r0, std::min(p.size(1), r0 + block)).to(at::kDouble);
      if (want.mean) add_to(&s->sum, d.sum(1));
      if (want.square) add_to(&s->square_sum, d.square().sum(1));
    }
    if (want.gram_rows >= 0) add_gram(subsample_rows(p, want.gram_rows), s);
    return;
  }
  at::Tensor x = input.detach().to(w.scalar_type());
  ConvGeometry c = conv_geometry(g.nodes[size_t(l.node)], w, &x);
  const int64_t batch = x.size(0), groups = layer_groups(g, l);
  int64_t oh = 0, ow = 0;
  pad_input(x.narrow(0, 0, std::min<int64_t>(batch, 1)), c, &oh, &ow);
  const int64_t positions = oh * ow, rows = batch * positions;
  if (want.mean || want.square) s->rows += rows;
  const int64_t step = want.gram_rows <= 0 || rows <= want.gram_rows
                           ? 1
                           : (rows + want.gram_rows - 1) / want.gram_rows;
  // A few samples at a time (about 4M values), so that the copies below stay small.
  const int64_t chunk =
      std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, x[0].numel()));
  at::Tensor sum, square;  // [C, H, W] over the batch
  for (int64_t n0 = 0; n0 < batch; n0 += chunk) {
    at::Tensor xc = x.narrow(0, n0, std::min(chunk, batch - n0));
    if (want.mean) add_to(&sum, xc.sum(0));
    if (want.square) add_to(&square, xc.square().sum(0));
    if (want.gram_rows >= 0) {
      // Rows first, first + step, ... of the batch, those of these samples.
      int64_t first = (step - (n0 * positions) % step) % step;
      int64_t o1 = 0, o2 = 0;
      add_gram(conv_rows(pad_input(xc, c, &o1, &o2), c, oh, ow, groups, first, step), s);
    }
  }
  // Each patch entry is one padded input value seen at one kernel offset: sums over the rows are
  // sums over windows of the batch-summed input.
  if (want.mean)
    add_to(&s->sum, window_sums(pad_input(sum.to(at::kDouble), c, &oh, &ow), c, oh, ow, groups));
  if (want.square)
    add_to(&s->square_sum,
           window_sums(pad_input(square.to(at::kDouble), c, &oh, &ow), c, oh, ow, groups));
}

}  // namespace mpq
