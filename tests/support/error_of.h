// The message of the mpq::Error a statement throws, for tests of bad input. Header-only and free
// of libtorch, so the search tests (which do not link libtorch) use it too.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"

namespace mpq::testing {

// The message of the mpq::Error that `f` throws; a test failure if it throws nothing, throws
// something else, or the message is not one line.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mpq::Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mpq::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected mpq::Error, nothing was thrown";
  return "";
}

}  // namespace mpq::testing
