// Op family: shape. See exec/op_registry.h for how kernels are registered.
#include <ATen/ATen.h>

#include "exec/op_registry.h"

namespace mpq {
namespace {}  // namespace

void register_shape_ops(OpRegistry& r) {}

}  // namespace mpq
