// A quantizable layer seen as a set of dot products: each output channel's weight row
// (to_channel_rows: [C, K]) meets input patches of K values. Bias correction needs the mean patch
// (E[dW x] = dW E[x], padding included), multipoint needs the patch Gram matrix
// G = X^T X / M (methods.md §3). Patches come per group ([groups, M, K]; channel j belongs to
// group j / (C / groups)), so depthwise and grouped convolutions get their own statistics.
// Supported: Conv with 1-D or 2-D kernels (explicit pads, auto_pad, strides, dilations, groups),
// Gemm (transA, transB), MatMul with a 2-D weight on either side. ConvTranspose and 3-D convs have
// no patch view (has_patches() is false) and their layers skip both corrections.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "onnx/graph.h"
#include "onnx/layers.h"

namespace mpq {

// The weight axis holding output channels: Conv 0, ConvTranspose 1, Gemm 0 if transB else 1,
// MatMul x@W: last, W@x: 0.
int64_t output_channel_axis(const Graph& graph, const QuantLayer& layer);
// Which node input carries the activation the layer multiplies with its weight.
int64_t activation_input(const QuantLayer& layer);
int64_t layer_groups(const Graph& graph, const QuantLayer& layer);
bool has_patches(const Graph& graph, const QuantLayer& layer);

// [groups, M, K] patches of `input` (the layer's activation input for a batch).
at::Tensor layer_patches(const Graph& graph, const QuantLayer& layer, const at::Tensor& input);
// At most max_rows of the M rows: every ceil(M / max_rows)-th (a deterministic subsample);
// max_rows <= 0 keeps all.
at::Tensor subsample_rows(const at::Tensor& patches, int64_t max_rows);

// What accumulate_patches sums.
struct PatchRequest {
  bool mean = false;       // sum of the patches
  bool square = false;     // sum of their squares (the Gram matrix's diagonal)
  int64_t gram_rows = -1;  // Gram matrix of at most this many rows per batch (subsample_rows's
                           // choice); 0: every row, -1: none
};
// Patch statistics summed over batches, float64.
struct PatchSums {
  at::Tensor sum, square_sum;  // [groups, K]
  int64_t rows = 0;            // rows behind sum and square_sum
  at::Tensor gram;             // [groups, K, K]
  at::Tensor gram_sum;         // [groups, K], over the Gram matrix's rows
  int64_t gram_rows = 0;
};
// Adds a batch's patch statistics to `sums` without forming all its patches: for a Conv the sums
// are window sums of the batch-summed input and the Gram matrix gathers only the rows it keeps, so
// memory is a few copies of the input, not of its K-times larger patch matrix. The result equals
// the same sums over layer_patches(...).to(kDouble) (up to float64 rounding; the Gram matrix of a
// batch is a float32 product).
void accumulate_patches(const Graph& graph, const QuantLayer& layer, const at::Tensor& input,
                        const PatchRequest& want, PatchSums* sums);

}  // namespace mpq
