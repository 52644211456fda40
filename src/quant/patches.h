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

}  // namespace mpq
