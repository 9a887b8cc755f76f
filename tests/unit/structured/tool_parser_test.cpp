// ToolCallParser (src/frontend/tool_parser.h) per format, whole and streamed in every split of
// the text (one byte at a time, and at random boundaries): the calls' names and arguments, the
// content around them, streamed deltas that carry id + name once and argument fragments whose
// concatenation is the arguments JSON, and outputs that only look like calls.
#include "frontend/tool_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace kite {
namespace {

struct Expected {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

// Streams `text` in pieces of the given sizes and folds the deltas back together.
ToolCallParser::Result stream(ToolCallFormat f, const std::string& text,
                              const std::vector<size_t>& cuts) {
  ToolCallParser p(f);
  ToolCallParser::Result r;
  std::vector<int> names_per_index;
  auto fold = [&](ToolCallParser::Delta d) {
    r.content += d.content;
    for (const ToolCallDelta& c : d.calls) {
      if (c.first) {
        EXPECT_EQ(c.index, static_cast<int>(r.calls.size()));
        EXPECT_FALSE(c.id.empty());
        EXPECT_TRUE(c.arguments.empty());
        r.calls.push_back({c.id, c.name, ""});
      } else {
        EXPECT_TRUE(c.name.empty() && c.id.empty());  // name and id only once
        ASSERT_LT(c.index, static_cast<int>(r.calls.size()));
        r.calls[static_cast<size_t>(c.index)].arguments += c.arguments;
      }
    }
  };
  size_t at = 0;
  for (size_t n : cuts) {
    if (at >= text.size()) break;
    fold(p.feed(std::string_view(text).substr(at, n)));
    at += n;
  }
  if (at < text.size()) fold(p.feed(std::string_view(text).substr(at)));
  fold(p.finish());
  return r;
}

void check(ToolCallFormat f, const std::string& text, const Expected& want) {
  SCOPED_TRACE(text);
  std::vector<ToolCallParser::Result> results = {
      ToolCallParser::parse(f, text), stream(f, text, std::vector<size_t>(text.size(), 1))};
  std::mt19937 rng(static_cast<uint32_t>(text.size()));
  for (int k = 0; k < 5; ++k) {
    std::vector<size_t> cuts;
    for (size_t i = 0; i < text.size(); ++i) cuts.push_back(1 + rng() % 7);
    results.push_back(stream(f, text, cuts));
  }
  for (const ToolCallParser::Result& r : results) {
    EXPECT_EQ(r.content, want.content);
    ASSERT_EQ(r.calls.size(), want.calls.size());
    for (size_t i = 0; i < want.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, want.calls[i].first);
      EXPECT_EQ(r.calls[i].arguments, want.calls[i].second);
      EXPECT_EQ(r.calls[i].id.rfind("call_", 0), 0u);
    }
  }
}

TEST(ToolParser, Hermes) {
  const auto f = ToolCallFormat::kHermes;
  check(
      f,
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
      {"", {{"get_weather", "{\"city\": \"Oslo\"}"}}});
  check(f,
        "Let me check.<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": \"}\"}]}}\n"
        "</tool_call>\n<tool_call>\n{\"arguments\": {}, \"name\": \"b\"}\n</tool_call>",
        {"Let me check.", {{"a", "{\"x\": [1, {\"y\": \"}\"}]}"}, {"b", "{}"}}});
  check(f, "No tools needed, <tool_ here.", {"No tools needed, <tool_ here.", {}});
  // A tool section without a parsable call is content.
  check(f, "<tool_call>\nnot json\n</tool_call>", {"<tool_call>\nnot json\n</tool_call>", {}});
}

TEST(ToolParser, Llama3Json) {
  const auto f = ToolCallFormat::kLlama3Json;
  check(f, "{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}",
        {"", {{"add", "{\"a\": 1, \"b\": 2}"}}});
  check(f,
        "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": "
        "{\"s\": \"a;b\"}}",
        {"", {{"f", "{}"}, {"g", "{\"s\": \"a;b\"}"}}});
  check(f, "Hello {\"name\": \"f\"}", {"Hello {\"name\": \"f\"}", {}});  // not at the start
  // Arguments as a JSON-encoded string.
  check(f, "{\"name\": \"f\", \"parameters\": \"{\\\"k\\\": 1}\"}", {"", {{"f", "{\"k\": 1}"}}});
}

TEST(ToolParser, MistralAndJsonArray) {
  check(ToolCallFormat::kMistral,
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"q\": \"x\"}}, {\"name\": \"b\", "
        "\"arguments\": {}}]",
        {"", {{"a", "{\"q\": \"x\"}"}, {"b", "{}"}}});
  check(ToolCallFormat::kMistral, "Sure [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {}}]",
        {"Sure ", {{"a", "{}"}}});
  check(ToolCallFormat::kJsonArray, "[{\"name\": \"f\", \"parameters\": {\"n\": 3}}]",
        {"", {{"f", "{\"n\": 3}"}}});
  check(ToolCallFormat::kJsonArray, "plain text", {"plain text", {}});
}

TEST(ToolParser, TruncatedCallKeepsWhatItHas) {
  // Cut by max_tokens inside the arguments: the call is reported with the partial arguments.
  auto r = ToolCallParser::parse(ToolCallFormat::kHermes,
                                 "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": ");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "f");
  EXPECT_EQ(r.calls[0].arguments, "{\"a\": ");
}

TEST(ToolParser, FormatText) {
  EXPECT_EQ(tool_call_format_from_name("hermes"), ToolCallFormat::kHermes);
  EXPECT_EQ(tool_call_format_from_name("llama3_json"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(tool_call_format_from_name("mistral"), ToolCallFormat::kMistral);
  EXPECT_FALSE(tool_call_format_from_name("pythonic"));
  // What the grammar writes, the parser reads.
  for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral,
                 ToolCallFormat::kJsonArray}) {
    const ToolCallText t = tool_call_text(f);
    const std::string call1 = t.call_open + "\"f\"" + t.args_key + "{\"a\": 1}" + t.call_close;
    const std::string call2 = t.call_open + "\"g\"" + t.args_key + "{}" + t.call_close;
    check(f, t.prefix + call1 + t.separator + call2 + t.suffix,
          {"", {{"f", "{\"a\": 1}"}, {"g", "{}"}}});
  }
}

}  // namespace
}  // namespace kite
