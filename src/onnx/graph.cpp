#include "onnx/graph.h"

#include <ATen/ATen.h>

#include <set>
#include <unordered_map>

#include "core/error.h"

namespace mpq {

int64_t Graph::opset() const {
  auto it = opsets.find("");
  if (it == opsets.end()) it = opsets.find("ai.onnx");
  return it == opsets.end() ? 0 : it->second;
}

void Graph::topological_sort() {
  // Kahn's algorithm, stable: among ready nodes keep the file's order.
  std::set<std::string> available;
  for (const auto& in : inputs) available.insert(in.name);
  for (const auto& kv : initializers) available.insert(kv.first);
  available.insert("");
  std::unordered_map<std::string, std::vector<size_t>> waiting;  // value -> nodes needing it
  std::vector<size_t> missing(nodes.size(), 0);
  std::unordered_map<std::string, size_t> produced_by;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& out : nodes[i].outputs) {
      if (out.empty()) continue;
      MPQ_CHECK(!produced_by.count(out) && !available.count(out), where(nodes[i]), ": value '", out,
                "' is produced twice");
      produced_by[out] = i;
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<std::string> needed;
    for (const auto& in : nodes[i].inputs) {
      if (available.count(in)) continue;
      MPQ_CHECK(produced_by.count(in), where(nodes[i]), ": input '", in,
                "' is not a graph input, an initializer or any node's output");
      needed.insert(in);
    }
    missing[i] = needed.size();
    for (const auto& in : needed) waiting[in].push_back(i);
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (missing[i] == 0) ready.insert(i);
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    for (const auto& out : nodes[i].outputs) {
      auto it = waiting.find(out);
      if (it == waiting.end()) continue;
      for (size_t j : it->second)
        if (--missing[j] == 0) ready.insert(j);
    }
    sorted.push_back(std::move(nodes[i]));
  }
  if (sorted.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i)
      MPQ_CHECK(missing[i] == 0, where(nodes[i]), ": the graph has a cycle through this node");
  }
  nodes = std::move(sorted);
}

int64_t Graph::producer(const std::string& value) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& out : nodes[i].outputs)
      if (out == value) return int64_t(i);
  return -1;
}

std::vector<int64_t> Graph::consumers(const std::string& value) const {
  std::vector<int64_t> result;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& in : nodes[i].inputs)
      if (in == value) {
        result.push_back(int64_t(i));
        break;
      }
  return result;
}

int64_t Graph::find_node(const std::string& node_name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == node_name) return int64_t(i);
  return -1;
}

bool Graph::is_graph_output(const std::string& value) const {
  for (const auto& out : outputs)
    if (out.name == value) return true;
  return false;
}

std::string Graph::where(const Node& node) const {
  return internal::concat(source.empty() ? "model" : source, ": node '", node.name, "' (",
                          node.op_type, ")");
}

void Graph::cast_float_weights(at::ScalarType dtype) {
  for (auto& kv : initializers)
    if (at::isFloatingType(kv.second.scalar_type())) kv.second = kv.second.to(dtype);
  for (auto& node : nodes)
    for (auto& kv : node.attrs)
      if (kv.second.type == AttrType::kTensor && at::isFloatingType(kv.second.t.scalar_type()))
        kv.second.t = kv.second.t.to(dtype);
}

}  // namespace mpq
