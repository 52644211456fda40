#include "support/test_util.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace mpq::test {

std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
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
