// The table of ops the executor runs, keyed by (op type, opset range) like ONNX Runtime's kernel
// registry. Each op family lives in exec/ops/<family>.cpp and adds its rows in one
// register_<family>_ops function; exec/ops/all_ops.cpp lists the families (explicit registration,
// nothing the linker can drop). A test walks the table.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "exec/op_context.h"

namespace mpq {

// A kernel computes a node's outputs (one tensor per output it produces) from its context.
using OpKernel = std::vector<at::Tensor> (*)(OpContext& ctx);

struct OpRow {
  std::string op;        // ONNX op type, default domain
  int64_t since = 1;     // first opset this kernel implements
  int64_t until = 1000;  // last opset (inclusive)
  OpKernel kernel = nullptr;
};

class OpRegistry {
 public:
  // Adds a row; overlapping ranges for one op are a bug.
  void add(const std::string& op, int64_t since, int64_t until, OpKernel kernel);
  // The row for `op` at `opset`, or nullptr.
  const OpRow* find(const std::string& op, int64_t opset) const;
  bool knows(const std::string& op) const;
  const std::vector<OpRow>& rows() const { return rows_; }
  // Every op type, sorted, once.
  std::vector<std::string> op_types() const;

  // The built-in table (all families), built once.
  static const OpRegistry& builtin();

 private:
  std::vector<OpRow> rows_;
};

// One function per op family (exec/ops/*.cpp).
void register_conv_ops(OpRegistry& r);
void register_linear_ops(OpRegistry& r);
void register_norm_ops(OpRegistry& r);
void register_activation_ops(OpRegistry& r);
void register_elementwise_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_shape_ops(OpRegistry& r);
void register_reduce_ops(OpRegistry& r);
void register_resize_ops(OpRegistry& r);
void register_quant_ops(OpRegistry& r);

}  // namespace mpq
