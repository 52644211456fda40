// Running the mpq binary from the CLI tests, the check every bad-input case shares, and a small
// model file.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/process.h"
#include "onnx/io.h"
#include "pipeline/zoo.h"

namespace mpq::test {

// Runs build/src/mpq with one thread.
inline ProcessResult mpq(std::vector<std::string> args) {
  args.insert(args.begin(), std::string(MPQ_BINARY_DIR) + "/src/mpq");
  args.insert(args.begin() + 1, "--threads=1");
  return run_process(args);
}

// Fails unless the command failed with exactly one line that contains every needle.
inline void expect_one_line_error(const ProcessResult& r, std::vector<std::string> needles) {
  EXPECT_NE(r.exit_code, 0) << r.output;
  std::string out = r.output;
  ASSERT_FALSE(out.empty());
  if (out.back() == '\n') out.pop_back();
  EXPECT_EQ(out.find('\n'), std::string::npos) << "more than one line:\n" << r.output;
  EXPECT_EQ(out.rfind("mpq: error: ", 0), 0u) << out;
  for (const auto& n : needles) EXPECT_NE(out.find(n), std::string::npos) << n << " in: " << out;
}

// A small untrained resnet20 (width 0.25, one block per stage) written to dir/resnet.onnx.
inline std::string small_resnet_file(const std::string& dir) {
  ZooOptions o;
  o.width_mult = 0.25;
  o.depth = 1;
  std::string path = dir + "/resnet.onnx";
  export_onnx(build_zoo_model("resnet20", o), path);
  return path;
}

}  // namespace mpq::test
