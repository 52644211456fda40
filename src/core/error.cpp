#include "core/error.h"

namespace mpq::internal {

void throw_error(const std::string& message) {
  // Errors are shown as one line: fold any newline a nested message brought in.
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  throw Error(line);
}

void throw_internal(const char* file, int line, const char* cond, const std::string& message) {
  throw InternalError(concat("internal error (a bug in mpq) at ", file, ":", line, ": ", cond,
                             message.empty() ? "" : ": ", message));
}

}  // namespace mpq::internal
