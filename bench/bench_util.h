// Small helpers the benchmark programs share.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace mpq::bench {

// "a,b,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

// Walks "--name value" arguments: while (args.next()) { if (args.is("--n")) n = args.value(); }
// Unknown names: the caller prints its usage; a name without a value exits with status 2.
class ArgReader {
 public:
  ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool next() { return ++i_ < argc_; }
  bool is(const char* name) const { return name == std::string(argv_[i_]); }
  std::string value() {
    if (i_ + 1 >= argc_) {
      std::fprintf(stderr, "%s: missing value\n", argv_[i_]);
      std::exit(2);
    }
    return argv_[++i_];
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
};

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace mpq::bench
