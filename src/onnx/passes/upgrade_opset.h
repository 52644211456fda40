// Graph pass: raises a model's default-domain opset (issue 19: a QDQ export needs opset 13 for
// per-channel QuantizeLinear/DequantizeLinear, and real models come at opsets 7-12). Every node
// whose operator changed between the model's opset and the target is rewritten by one row of a
// table, one row per (op, version of the change), the way ONNX's operator changelog lists them:
//   - changes that leave float models as they are (new types, negative axes, new attributes whose
//     default is the old behaviour) need no rewrite;
//   - attributes that became inputs become constant inputs (Clip 11, Pad 11, Slice 10, Upsample
//     9, Dropout 12, ReduceSum / Split / Squeeze / Unsqueeze 13);
//   - changed meaning is rewritten to the same computation: Softmax, LogSoftmax and Hardmax 13
//     (before 13 they coerce the input to 2-D at `axis`: Flatten, the op on the last axis, Reshape
//     back), BatchNormalization 9 (spatial dropped; 0 cannot be expressed), Resize 11 (opset 10's
//     asymmetric coordinates and floor rounding made explicit), Upsample 10 (deprecated: Resize).
// The ONNX schema registry (libonnx) says at which versions an op changed; a change without a row
// stops the upgrade, naming the node, its op and the versions. Only up to the registry's newest
// opset (17 with Debian's libonnx 1.12). Cost O(nodes).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "onnx/graph.h"

namespace mpq {

struct UpgradeRule {
  const char* op;
  int64_t version;     // the opset whose schema changed the op
  const char* change;  // what changed
  // Rewrites node `index` of `graph` into the new schema; may add initializers and append nodes
  // (the pass sorts the graph afterwards). nullptr: nothing to rewrite for float models.
  void (*rewrite)(Graph* graph, size_t index);
};

inline constexpr size_t kNumUpgradeRules = 134;
const std::array<UpgradeRule, kNumUpgradeRules>& upgrade_rules();

// The newest opset the upgrade knows (the schema registry's).
int64_t newest_known_opset();

// The opsets in (from, to] at which the registry's schema of `op` changed (the op existing before).
std::vector<int64_t> schema_changes(const std::string& op, int64_t from, int64_t to);

// "" when every node of `graph` can be raised to `target`, else why not (the first node that
// cannot: its name, op, opsets and the change). Cheap: for the checks before any work.
std::string upgrade_problem(const Graph& graph, int64_t target);

// Raises the default domain to `target` (no-op when the graph is there already); throws mpq::Error
// with upgrade_problem's message when a node cannot be upgraded.
// Example: upgrade_opset(&g, 13);
void upgrade_opset(Graph* graph, int64_t target);

}  // namespace mpq
