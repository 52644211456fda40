// Graph pass: folds an inference-mode BatchNormalization into the Conv or ConvTranspose that
// feeds it (the conv's output read by nothing else, all BN parameters constant):
//   s = gamma / sqrt(var + eps);  W' = W * s (per output channel);  b' = (b - mean) * s + beta.
// The Conv keeps its name and takes over the BN's output name, so consumers and graph outputs are
// unchanged. Quantizers then see the weights that are actually deployed (methods.md, shared
// notation: BN is folded before weights are quantized). Cost O(weights).
#pragma once

#include "onnx/graph.h"

namespace mpq {

// Returns the number of BatchNormalization nodes folded. Example: fold_batchnorm(&g);
int fold_batchnorm(Graph* graph);

}  // namespace mpq
