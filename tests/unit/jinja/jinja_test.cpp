// Unit tests of the interpreter that need no oracle: error positions and messages, resource
// guards on hostile templates, and pieces (value repr, lexer rules) checked directly. Rendering
// semantics are covered against jinja2 itself by jinja_parity_test.
#include <gtest/gtest.h>

#include <string>

#include "frontend/jinja/render_string.h"
#include "frontend/jinja/unicode.h"
#include "frontend/jinja/value.h"

namespace kite::jinja {
namespace {

std::string render(std::string_view source, std::string_view context = "") {
  Result<std::string> r = render_string(source, context);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::string();
}

Status render_error(std::string_view source, std::string_view context = "",
                    const ChatTemplateLimits& limits = {}) {
  Result<std::string> r = render_string(source, context, limits);
  EXPECT_FALSE(r.ok()) << "rendered: " << (r.ok() ? *r : "");
  return r.status();
}

TEST(JinjaTest, RendersText) { EXPECT_EQ(render("a{{ 1 + 1 }}b"), "a2b"); }

TEST(JinjaTest, SyntaxErrorsNameLineAndColumn) {
  const Status s = render_error("line one\n  {% if %}x{% endif %}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "chat template syntax error at line 2, column 9: Expected an expression, got 'end "
            "of statement block'");
  const Status unclosed = render_error("{% for x in y %}\n{{ x }}");
  EXPECT_NE(unclosed.message().find("Unexpected end of template. Jinja was looking for the "
                                    "following tags: 'endfor' or 'else'. The innermost block "
                                    "that needs to be closed is 'for'."),
            std::string::npos)
      << unclosed.message();
  // Columns count code points, not bytes.
  EXPECT_NE(render_error("{{ 'é' + }}").message().find("line 1, column 10"), std::string::npos);
}

TEST(JinjaTest, RuntimeErrorsPointAtTheFailingOperation) {
  const Status s =
      render_error("ok\n{{ messages[0].content.foo.bar }}", R"({"messages": [{"content": "x"}]})");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "chat template error at line 2, column 27: 'str object' has no attribute 'foo'");
}

TEST(JinjaTest, RaiseExceptionKeepsTheMessage) {
  const Status s = render_error("{{ raise_exception('Only user and assistant roles!') }}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "chat template raised an exception at line 1, column 4: Only user and assistant "
            "roles!");
}

TEST(JinjaTest, UnsupportedFeaturesAreUnimplemented) {
  EXPECT_EQ(render_error("{% include 'other.jinja' %}").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(render_error("{% extends 'base' %}").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(render_error("{{ 'a b'|wordwrap(1) }}").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(render_error("{{ 'x'.encode('utf-8') }}").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(render_error("{{ 2 ** 64 }}").code(), StatusCode::kUnimplemented);  // no bigints
  EXPECT_EQ(render_error("{{ 99999999999999999999 }}").code(), StatusCode::kUnimplemented);
}

TEST(JinjaTest, InvalidUtf8IsRejected) {
  EXPECT_EQ(render_error("{{ 'a\xff' }}").message(), "chat template is not valid UTF-8");
  EXPECT_EQ(render_error("{{ '\\ud800' }}").code(), StatusCode::kInvalidArgument);
}

TEST(JinjaTest, RunawayLoopsStop) {
  ChatTemplateLimits limits;
  limits.max_steps = 100000;
  const Status s = render_error(
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "",
      limits);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("work limit"), std::string::npos) << s.message();
}

TEST(JinjaTest, OutputSizeIsBounded) {
  ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  EXPECT_EQ(render_error("{{ 'x' * 2000000 }}", "", limits).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(
      render_error("{% for i in range(3000) %}{{ 'y' * 1000 }}{% endfor %}", "", limits).code(),
      StatusCode::kOutOfRange);
  // Doubling a namespace list would need exponential memory.
  EXPECT_EQ(render_error("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}"
                         "{% set ns.l = ns.l + ns.l %}{% endfor %}",
                         "", limits)
                .code(),
            StatusCode::kOutOfRange);
  // Repetition counts are checked before allocating.
  EXPECT_EQ(render_error("{{ 'ab' * 9223372036854775807 }}").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(render_error("{{ 'x'.center(9223372036854775807) }}").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(render_error("{{ '%999999999999d' % 1 }}").code(), StatusCode::kOutOfRange);
}

TEST(JinjaTest, RepeatingAnEmptySequenceIsImmediate) {
  // The size guard passes 0 bytes; the loop of 2^63 empty appends must not run.
  EXPECT_EQ(render("[{{ '' * 9223372036854775807 }}]"), "[]");
  EXPECT_EQ(render("{{ ([] * 9223372036854775807) | length }}"), "0");
}

TEST(JinjaTest, WidthsAreOverflowChecked) {
  // 2^62 code points of 4 bytes each wraps to 0 bytes in 64 bits.
  EXPECT_EQ(render_error("{{ 'x'.center(4611686018427387904) }}").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(render_error("{{ 'x'.ljust(4611686018427387905) }}").code(), StatusCode::kOutOfRange);
}

TEST(JinjaTest, StringScansCountAgainstTheWorkLimit) {
  ChatTemplateLimits limits;
  limits.max_steps = 200000;
  // Building the 1 MB string costs ~65k steps; each scan of it must cost as much again.
  const std::string big = "{% set s = 'a' * 1000000 %}{% for i in range(1000) %}";
  for (const char* body :
       {"{{ 'b' in s }}", "{{ s.count('b') }}", "{{ s.find('ab') }}",
        "{{ s | replace('b', 'c') | length }}", "{{ s == s }}", "{{ s is in 'abc' }}"}) {
    const Status st = render_error(big + body + "{% endfor %}", "", limits);
    EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << body;
    EXPECT_NE(st.message().find("work limit"), std::string::npos) << body << ": " << st.message();
  }
  // A template's ordinary scans stay far below the default limit.
  EXPECT_EQ(render("{% set s = 'a' * 100000 %}{{ s.count('a') }} {{ 'b' in s }}"), "100000 False");
}

TEST(JinjaTest, RecursionIsBounded) {
  const Status s = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("recursion is too deep"), std::string::npos) << s.message();
}

TEST(JinjaTest, DeepNestingIsRejectedNotCrashed) {
  std::string parens(5000, '(');
  EXPECT_EQ(render_error("{{ " + parens + "1" + std::string(5000, ')') + " }}").code(),
            StatusCode::kInvalidArgument);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_EQ(render_error(chain + " }}").code(), StatusCode::kInvalidArgument);
  std::string ifs;
  for (int i = 0; i < 2000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(render_error(ifs).code(), StatusCode::kInvalidArgument);
  std::string nots = "{{ " + [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "not ";
    return s;
  }() + "1 }}";
  EXPECT_EQ(render_error(nots).code(), StatusCode::kInvalidArgument);
  // Values nested by a loop are bounded too.
  EXPECT_EQ(render_error("{% set ns = namespace(v=1) %}{% for i in range(2000) %}"
                         "{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}")
                .code(),
            StatusCode::kOutOfRange);
}

TEST(JinjaTest, SelfReferencingNamespaceDoesNotLeakOrLoop) {
  // A namespace holding itself: repr stops at the nesting limit instead of recursing forever;
  // the cycle is broken when the render ends (LeakSanitizer checks this in the fuzz build).
  const Status s = render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}");
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(render("{% macro m() %}x{% endmacro %}{% set ns = namespace(f=m) %}{{ ns.f() }}"), "x");
}

TEST(JinjaTest, NewlinesAreNormalized) {
  EXPECT_EQ(render("a\r\nb\rc\n"), "a\nb\nc");
  EXPECT_EQ(render("{% if true %}\r\nx{% endif %}"), "x");
}

TEST(JinjaTest, StrftimeUsesTheInjectedDate) {
  Result<std::string> r = render_string("{{ strftime_now('%d %b %Y %H:%M') }}", "", {},
                                        std::string("2025-02-28T23:59"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "28 Feb 2025 23:59");
  for (const char* bad : {"2025-02-30", "2025-13-01", "yesterday", "2025-01-01T25:00", ""}) {
    Result<std::string> e = render_string("x", "", {}, std::string(bad));
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(render_string("{{ strftime_now('%Y') }}", "").ok());  // local time
}

TEST(JinjaTest, FloatReprMatchesPython) {
  EXPECT_EQ(format_float_repr(1.0), "1.0");
  EXPECT_EQ(format_float_repr(0.1), "0.1");
  EXPECT_EQ(format_float_repr(1e16), "1e+16");
  EXPECT_EQ(format_float_repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(format_float_repr(1e-5), "1e-05");
  EXPECT_EQ(format_float_repr(-2.5e-300), "-2.5e-300");
  EXPECT_EQ(format_float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
}

TEST(JinjaTest, UnicodeHelpers) {
  EXPECT_TRUE(unicode::is_valid_utf8("héllo 😀"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xc0\x80"));          // overlong
  EXPECT_FALSE(unicode::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(unicode::is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(unicode::length("héllo 😀"), 7u);
  EXPECT_EQ(unicode::py_repr("it's"), "\"it's\"");
  EXPECT_EQ(unicode::py_repr("a\u200bb"), "'a\\u200bb'");
  const std::vector<std::string> lines = unicode::py_splitlines(
      "a\r\nb\x0b"
      "c\u2028d",
      true);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "a\r\n");
}

}  // namespace
}  // namespace kite::jinja
