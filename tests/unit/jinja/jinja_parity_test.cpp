// Interpreter parity: every case of interpreter_cases.txt renders exactly as jinja2 renders it
// in transformers' environment (expected results written at test time by jinja_oracle.py, the
// CTest fixture `jinja.oracle`), or fails in both with the same kind of error.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/jinja/render_string.h"
#include "parity_util.h"

namespace kite::jinja {
namespace {

std::vector<std::string> case_names() {
  std::ifstream in(std::string(KITE_SOURCE_DIR) + "/tests/unit/jinja/interpreter_cases.txt");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("=== ", 0) == 0) names.push_back(line.substr(4));
  }
  return names;
}

const boost::json::object* find_case(const std::string& name) {
  static const boost::json::value expected = testing::load_oracle_output(KITE_JINJA_ORACLE_OUT);
  if (!expected.is_object()) return nullptr;
  for (const auto& c : expected.at("cases").as_array()) {
    if (c.at("name").as_string() == name) return &c.as_object();
  }
  return nullptr;
}

class JinjaParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JinjaParityTest, MatchesJinja2) {
  const boost::json::object* c = find_case(GetParam());
  ASSERT_NE(c, nullptr) << "no oracle result for case '" << GetParam() << "' in "
                        << KITE_JINJA_ORACLE_OUT
                        << " (run through ctest, whose fixture jinja.oracle writes it)";
  const std::string source(c->at("template").as_string());
  const std::string context = boost::json::serialize(c->at("context"));
  const Result<std::string> got =
      render_string(source, context, ChatTemplateLimits{}, testing::kFixedDateString);
  testing::expect_same_outcome(*c, got, "template:\n" + source);
}

INSTANTIATE_TEST_SUITE_P(Cases, JinjaParityTest, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return testing::sanitize_test_name(p.param);
                         });

}  // namespace
}  // namespace kite::jinja
