// Unit tests of the interpreter's pieces that need no oracle: value semantics, the lexer's
// whitespace rules, error positions and messages, resource guards.
#include <gtest/gtest.h>

#include "frontend/jinja/render_string.h"

namespace kite::jinja {
namespace {

std::string render(std::string_view source, std::string_view context = "") {
  Result<std::string> r = render_string(source, context);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::string();
}

TEST(JinjaTest, RendersText) { EXPECT_EQ(render("a{{ 1 + 1 }}b"), "a2b"); }

}  // namespace
}  // namespace kite::jinja
