// Errors: mpq::Error for bad user input (thrown by MPQ_CHECK with a message that says what, where,
// what was expected and what was found), MPQ_ASSERT for mpq's own bugs. Only main() catches.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mpq {

// An error the user can fix: a bad file, option, shape or value. what() is one line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A bug in mpq itself (an internal invariant broke).
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& message) : std::logic_error(message) {}
};

namespace internal {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
[[noreturn]] void throw_error(const std::string& message);
[[noreturn]] void throw_internal(const char* file, int line, const char* cond,
                                 const std::string& message);
}  // namespace internal

}  // namespace mpq

// Example: MPQ_CHECK(rank == 4, path, ": node '", name, "': expected a 4-D input, found ", rank,
// "-D");
#define MPQ_CHECK(cond, ...)                                                         \
  do {                                                                               \
    if (!(cond)) ::mpq::internal::throw_error(::mpq::internal::concat(__VA_ARGS__)); \
  } while (0)

#define MPQ_FAIL(...) ::mpq::internal::throw_error(::mpq::internal::concat(__VA_ARGS__))

#define MPQ_ASSERT(cond, ...)                                                      \
  do {                                                                             \
    if (!(cond))                                                                   \
      ::mpq::internal::throw_internal(__FILE__, __LINE__, #cond,                   \
                                      ::mpq::internal::concat("", ##__VA_ARGS__)); \
  } while (0)
