// Helpers shared by the oracle-driven parity tests.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "kite/status.h"

namespace kite::jinja::testing {

// The instant the oracles pin datetime.now() to (tests/unit/jinja/oracle_common.py).
inline constexpr const char* kFixedDateString = "2024-07-26T10:30:00";

// The oracle's JSON output, or null when it is missing (the test then fails, naming the file).
inline boost::json::value load_oracle_output(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(ss.str(), ec);
  return ec ? boost::json::value(nullptr) : v;
}

inline std::string sanitize_test_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(ok ? c : '_');
  }
  return out;
}

// Checks kite's result against one oracle entry: the same output byte for byte, or an error in
// both, of the same category (syntax / raised / runtime).
inline void expect_same_outcome(const boost::json::object& expected, const Result<std::string>& got,
                                const std::string& what) {
  if (expected.at("ok").as_bool()) {
    const std::string want(expected.at("output").as_string());
    ASSERT_TRUE(got.ok()) << "jinja2 rendered it, kite failed: " << got.status().to_string() << "\n"
                          << what;
    EXPECT_EQ(*got, want) << what;
    return;
  }
  const std::string category(expected.at("category").as_string());
  const std::string error(expected.at("error").as_string());
  ASSERT_FALSE(got.ok()) << "jinja2 failed with " << error << "\nkite rendered: " << *got << "\n"
                         << what;
  const std::string message = got.status().message();
  if (category == "syntax") {
    EXPECT_NE(message.find("syntax error"), std::string::npos)
        << "jinja2: " << error << "\nkite: " << message;
  } else if (category == "raised") {
    EXPECT_NE(message.find("raised an exception"), std::string::npos)
        << "jinja2: " << error << "\nkite: " << message;
    const std::string raised = error.substr(error.find(": ") + 2);
    EXPECT_NE(message.find(raised), std::string::npos) << "kite: " << message;
  } else {
    EXPECT_EQ(message.find("syntax error"), std::string::npos)
        << "jinja2: " << error << "\nkite: " << message;
    EXPECT_EQ(message.find("raised an exception"), std::string::npos)
        << "jinja2: " << error << "\nkite: " << message;
  }
}

}  // namespace kite::jinja::testing
