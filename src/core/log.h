// Logging to stderr with levels, and a progress bar for long work. Results go to stdout or files;
// everything here goes to stderr so it never mixes with them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace mpq {

enum class LogLevel { kQuiet = 0, kInfo = 1, kDebug = 2 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& line);

template <typename... Args>
void log_info(const Args&... args) {
  if (log_level() >= LogLevel::kInfo) log_line(LogLevel::kInfo, internal::concat(args...));
}
template <typename... Args>
void log_debug(const Args&... args) {
  if (log_level() >= LogLevel::kDebug) log_line(LogLevel::kDebug, internal::concat(args...));
}

// A one-line progress bar on stderr, redrawn at most a few times a second; silent when stderr is
// not a terminal or the log level is quiet. Example: Progress p("eval", n); p.advance(batch);
class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void advance(int64_t n = 1, const std::string& suffix = "");
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string suffix_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mpq
