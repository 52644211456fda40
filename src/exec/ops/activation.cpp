// Op family: activations (elementwise non-linearities and softmax-style normalisations).
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {

std::vector<at::Tensor> relu(OpContext& ctx) { return {at::relu(ctx.input(0))}; }

}  // namespace

void register_activation_ops(OpRegistry& r) { r.add("Relu", 1, 1000, relu); }

}  // namespace mpq
