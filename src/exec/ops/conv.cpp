// Op family: conv. See exec/op_registry.h for how kernels are registered.
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {}  // namespace

void register_conv_ops(OpRegistry& r) {}

}  // namespace mpq
