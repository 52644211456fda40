// Helpers shared by the tests: a fresh temporary folder per test, and paths to the repo.
#pragma once

#include <string>

namespace mpq::test {

// A new empty folder under the build's test-data folder, named after the running test.
std::string temp_dir();
std::string source_path(const std::string& relative);

}  // namespace mpq::test
