#include "core/fs.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace mpq {

std::string read_file(const std::string& path) {
  MPQ_CHECK(!path.empty(), "empty file name");
  std::error_code ec;
  MPQ_CHECK(std::filesystem::exists(path, ec), path, ": file not found");
  MPQ_CHECK(!std::filesystem::is_directory(path, ec), path, ": expected a file, found a folder");
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

nlohmann::json load_json(const std::string& path) {
  std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MPQ_FAIL(path, ": not valid JSON: ", e.what());
  }
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::string parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

void write_atomic(const std::string& path, const std::function<void(const std::string&)>& write) {
  std::string dir = parent_dir(path);
  MPQ_CHECK(is_directory(dir), path, ": output folder '", dir, "' does not exist");
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    MPQ_FAIL(path, ": cannot write (", ec.message(), ")");
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    MPQ_CHECK(out.good(), path, ": cannot open for writing (", std::strerror(errno), ")");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    MPQ_CHECK(out.good(), path, ": write failed (disk full?)");
  });
}

TempDir::TempDir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("mpq-" + tag + "-XXXXXX")).string();
  MPQ_CHECK(mkdtemp(tmpl.data()) != nullptr,
            "cannot create a temporary folder: ", std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace mpq
