#include "support/test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace mpq::test {

std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Outside a test (a suite's SetUpTestSuite) the folder is per process: ctest runs each test
  // of a suite in its own process, in parallel, and they must not share (and wipe) one folder.
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name()
                          : "global-" + std::to_string(::getpid());
  // The same test registered again under a limited oneDNN ISA (tests/CMakeLists.txt, "avx2.*")
  // may run at the same time: its folder is its own.
  if (const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA")) name += std::string(".") + isa;
  for (char& c : name)
    if (c == '/') c = '_';
  std::filesystem::path dir = std::filesystem::path(MPQ_TEST_TMP) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string source_path(const std::string& relative) {
  return (std::filesystem::path(MPQ_SOURCE_DIR) / relative).string();
}

}  // namespace mpq::test
