#include "core/log.h"

#include <unistd.h>

#include <cstdio>

namespace mpq {
namespace {
LogLevel g_level = LogLevel::kInfo;
}

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(LogLevel level, const std::string& line) {
  std::fprintf(stderr, "%s%s\n", level == LogLevel::kDebug ? "[debug] " : "", line.c_str());
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(log_level() >= LogLevel::kInfo && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n, const std::string& suffix) {
  done_ += n;
  suffix_ = suffix;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(200)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const int width = 30;
  double frac = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 0.0;
  int filled = int(frac * width);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(filled, '#');
  bar.resize(width, '.');
  char eta[32] = "";
  if (!final && done_ > 0 && done_ < total_) {
    std::snprintf(eta, sizeof eta, " ETA %.0fs", secs * double(total_ - done_) / double(done_));
  }
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %.1fs%s %s\033[K%s", label_.c_str(), bar.c_str(),
               (long long)done_, (long long)total_, secs, eta, suffix_.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace mpq
