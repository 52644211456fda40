// Op family: elementwise. See exec/op_registry.h for how kernels are registered.
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {}  // namespace

void register_elementwise_ops(OpRegistry& r) {}

}  // namespace mpq
