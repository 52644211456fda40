// Runs another program (no shell, arguments passed as they are) and collects its output. Used
// to drive ONNX Runtime through its node binding in verification, tests and benchmarks.
#pragma once

#include <string>
#include <vector>

namespace mpq {

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Example: auto r = run_process({"node", "--version"});
ProcessResult run_process(const std::vector<std::string>& argv);

// The full path of `program` on PATH, or "".
std::string find_program(const std::string& program);

}  // namespace mpq
