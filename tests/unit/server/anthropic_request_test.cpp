#include "server/anthropic_request.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace kite::server {
namespace {

namespace bj = boost::json;

ParseContext context() {
  ParseContext ctx;
  ctx.served_model_names = {"m"};
  ctx.vocab_size = 1000;
  return ctx;
}

ChatCompletionRequest parse_ok(std::string_view body) {
  auto r = parse_messages_request(body, context());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : ChatCompletionRequest{};
}

ApiError parse_err(std::string_view body) {
  auto r = parse_messages_request(body, context());
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

TEST(AnthropicRequestTest, SystemAndTextBlocks) {
  ChatCompletionRequest req = parse_ok(R"({"model": "m", "max_tokens": 7, "system": "S",
      "stop_sequences": ["x", "yz"], "temperature": 0.5, "top_k": 3,
      "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                {"type": "text", "text": "b"}]}]})");
  EXPECT_EQ(
      bj::parse(req.messages_json),
      bj::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "a\nb"}])"));
  EXPECT_EQ(req.params.max_tokens, 7);
  EXPECT_EQ(req.params.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_DOUBLE_EQ(req.params.temperature, 0.5);
  EXPECT_EQ(req.params.top_k, 3);
  EXPECT_TRUE(req.template_options.add_generation_prompt);
  EXPECT_FALSE(req.continue_final_message);
  EXPECT_EQ(req.tool_choice.kind, ToolChoice::Kind::kNone);
}

TEST(AnthropicRequestTest, ToolUseAndToolResultBecomeToolCallsAndToolMessages) {
  ChatCompletionRequest req = parse_ok(R"({"max_tokens": 5,
      "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
      "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
      "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "text", "text": "t"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "r"}]}, {"type": "text", "text": "next"}]}]})");
  EXPECT_EQ(bj::parse(req.messages_json), bj::parse(R"([
      {"role": "user", "content": "q"},
      {"role": "assistant", "content": "t", "tool_calls": [{"id": "toolu_1", "type": "function",
          "function": {"name": "f", "arguments": {"a": 1}}}]},
      {"role": "tool", "tool_call_id": "toolu_1", "name": "f", "content": "r"},
      {"role": "user", "content": "next"}])"));
  ASSERT_EQ(req.tools.size(), 1u);
  EXPECT_EQ(req.tools[0].name, "f");
  EXPECT_EQ(req.tool_choice.kind, ToolChoice::Kind::kRequired);
  EXPECT_FALSE(req.parallel_tool_calls);
  EXPECT_EQ(bj::parse(req.template_options.tools_json), bj::parse(R"([{"type": "function",
      "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}])"));
}

TEST(AnthropicRequestTest, FinalAssistantMessageIsAPrefill) {
  ChatCompletionRequest req = parse_ok(R"({"max_tokens": 5, "messages": [
      {"role": "user", "content": "q"}, {"role": "assistant", "content": "Once"}]})");
  EXPECT_TRUE(req.continue_final_message);
  EXPECT_FALSE(req.template_options.add_generation_prompt);
}

TEST(AnthropicRequestTest, ThinkingDisabledAndOutputFormat) {
  ChatCompletionRequest req = parse_ok(R"({"max_tokens": 5, "thinking": {"type": "disabled"},
      "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
      "messages": [{"role": "user", "content": "q"}]})");
  EXPECT_TRUE(req.thinking_disabled);
  ASSERT_TRUE(req.params.structured_outputs);
  EXPECT_EQ(bj::parse(*req.params.structured_outputs->json), bj::parse(R"({"type": "object"})"));
}

TEST(AnthropicRequestTest, Errors) {
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "user", "content": "q"}]})").param, "max_tokens");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "nope"}]}]})")
                .param,
            "messages[0].content[0].tool_use_id");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]})")
                .param,
            "messages[0].content[0].type");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "mystery"}]}]})")
                .code,
            "invalid_value");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {}}]}]})")
                .code,
            "unsupported_value");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "messages": []})").param, "messages");
  EXPECT_EQ(
      parse_err(R"({"max_tokens": 1, "n": 2, "messages": [{"role": "user", "content": "q"}]})")
          .param,
      "n");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "tool", "name": "g"},
                "messages": [{"role": "user", "content": "q"}]})")
                .param,
            "tool_choice.name");
  EXPECT_EQ(parse_err(R"({"max_tokens": 1, "model": "other",
                "messages": [{"role": "user", "content": "q"}]})")
                .http_status,
            404);
}

}  // namespace
}  // namespace kite::server
