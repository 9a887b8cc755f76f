// ReasoningParser: <think>…</think> split into reasoning and content, whole and streamed one
// byte at a time (the tags split across pieces), unclosed thinking, no thinking.
#include "frontend/reasoning_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace kite {
namespace {

void check(const std::string& text, const std::string& reasoning, const std::string& content) {
  SCOPED_TRACE(text);
  ReasoningParser::Delta whole = ReasoningParser::split(text);
  EXPECT_EQ(whole.reasoning, reasoning);
  EXPECT_EQ(whole.content, content);
  ReasoningParser p;
  std::string r, c;
  for (char ch : text) {
    ReasoningParser::Delta d = p.feed(std::string(1, ch));
    r += d.reasoning;
    c += d.content;
  }
  ReasoningParser::Delta d = p.finish();
  EXPECT_EQ(r + d.reasoning, reasoning);
  EXPECT_EQ(c + d.content, content);
}

TEST(ReasoningParser, Splits) {
  check("<think>\nLet me see.\n</think>\n\nThe answer is 4.", "\nLet me see.\n",
        "\n\nThe answer is 4.");
  check("Thinking without the opening tag</think>answer", "Thinking without the opening tag",
        "answer");
  check("<think>cut by max_tokens", "cut by max_tokens", "");
  check("<think></think>{\"a\": 1}", "", "{\"a\": 1}");
  check("a < b </thi", "a < b </thi", "");  // an unfinished tag at the end is thinking text
  check("x</think>y</think>z", "x", "y</think>z");
  EXPECT_TRUE(ReasoningParser::is_known("qwen3"));
  EXPECT_TRUE(ReasoningParser::is_known("deepseek_r1"));
  EXPECT_FALSE(ReasoningParser::is_known("granite"));
}

}  // namespace
}  // namespace kite
