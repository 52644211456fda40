#include "exec/op_registry.h"

#include <algorithm>

namespace mpq {

void OpRegistry::add(const std::string& op, int64_t since, int64_t until, OpKernel kernel) {
  MPQ_ASSERT(kernel != nullptr && since <= until, op);
  for (const auto& row : rows_)
    MPQ_ASSERT(row.op != op || until < row.since || since > row.until, "overlapping rows for ", op);
  rows_.push_back(OpRow{op, since, until, kernel});
}

const OpRow* OpRegistry::find(const std::string& op, int64_t opset) const {
  for (const auto& row : rows_)
    if (row.op == op && row.since <= opset && opset <= row.until) return &row;
  return nullptr;
}

bool OpRegistry::knows(const std::string& op) const {
  return std::any_of(rows_.begin(), rows_.end(), [&](const OpRow& r) { return r.op == op; });
}

std::vector<std::string> OpRegistry::op_types() const {
  std::vector<std::string> ops;
  for (const auto& row : rows_) ops.push_back(row.op);
  std::sort(ops.begin(), ops.end());
  ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
  return ops;
}

const OpRegistry& OpRegistry::builtin() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_conv_ops(r);
    register_linear_ops(r);
    register_norm_ops(r);
    register_activation_ops(r);
    register_elementwise_ops(r);
    register_pool_ops(r);
    register_shape_ops(r);
    register_reduce_ops(r);
    register_resize_ops(r);
    register_quant_ops(r);
    return r;
  }();
  return registry;
}

}  // namespace mpq
