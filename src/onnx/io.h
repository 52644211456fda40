// Import and export of ONNX files. Import accepts weights as initializers, as Constant nodes or
// in external data files, opsets 7-21 of the default domain, and sorts nodes topologically.
// Export writes a Graph back as a valid ONNX model (it passes the ONNX checker for opsets the
// installed checker knows), through a temporary file and a rename.
#pragma once

#include <string>

#include "onnx/graph.h"

namespace mpq {

struct ImportOptions {
  bool fold_constants = true;  // Constant nodes with a tensor value become initializers
};

// Example: Graph g = import_onnx("resnet20.onnx");
Graph import_onnx(const std::string& path, const ImportOptions& options = {});
// From bytes already in memory; `base_dir` resolves external data, `label` names it in errors.
Graph import_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                        const std::string& label, const ImportOptions& options = {});

struct ExportOptions {
  bool check = true;  // run onnx::checker on the result (skipped for opsets it does not know)
  // Initializers of at least this many bytes go to `path + ".data"` as external data; 0 = never.
  int64_t external_threshold = 0;
};

void export_onnx(const Graph& graph, const std::string& path, const ExportOptions& options = {});
std::string export_onnx_bytes(const Graph& graph, const ExportOptions& options = {});

// The lowest and highest default-domain opsets mpq imports.
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 21;

}  // namespace mpq
