// File helpers: whole-file reads with clear errors, and atomic writes (a temporary file in the
// same folder, then rename) so that mpq never leaves a half-written output.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace mpq {

// Reads a whole file; the error names the path and the reason.
std::string read_file(const std::string& path);

// Reads and parses a JSON file; errors name the path ("x.json: not valid JSON: ...").
nlohmann::json load_json(const std::string& path);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes `bytes` to `path` through a temporary file and a rename.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Calls `write(tmp_path)` to produce the file, then renames tmp_path to `path`; on any exception
// the temporary file is removed and the exception passes on.
void write_atomic(const std::string& path, const std::function<void(const std::string&)>& write);

// The folder part of a path ("" -> ".").
std::string parent_dir(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// A new, empty folder under the system's temporary folder ("mpq-<tag>-XXXXXX"), removed with
// everything in it when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mpq
