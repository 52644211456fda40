// Helpers for the data module's tests: a fresh temporary folder per test, writers for tiny IDX
// files (raw or gzipped), and a check that a call throws a one-line mpq::Error naming a path.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/error_of.h"

namespace mpq::testing {

// MPQ_TEST_TMP/data-<suite>-<test>-<pid>, emptied.
inline std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = std::string(MPQ_TEST_TMP) + "/data-" + info->test_suite_name() + "-" +
                    info->name() + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// An IDX file's bytes: magic 00 00 `type` rank, big-endian dimensions, then `data` (already big
// endian).
inline std::string idx_bytes(unsigned char type, const std::vector<uint32_t>& dims,
                             const std::string& data) {
  std::string s = {'\0', '\0', char(type), char(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) s += char((d >> shift) & 0xff);
  }
  return s + data;
}

// Big-endian bytes of `values` as T.
template <typename T>
std::string big_endian(const std::vector<T>& values) {
  std::string s;
  for (T v : values) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (size_t i = sizeof(T); i-- > 0;) s += char(b[i]);
  }
  return s;
}

#define EXPECT_MPQ_ERROR(statement, text)                              \
  do {                                                                 \
    std::string msg_ = ::mpq::testing::error_of([&] { statement; });   \
    EXPECT_NE(msg_.find(text), std::string::npos)                      \
        << "message: " << msg_ << "\nexpected to contain: " << (text); \
  } while (0)

}  // namespace mpq::testing
