#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/openai_request.h"

namespace kite::server {
namespace {

namespace bj = boost::json;

ParseContext context() {
  ParseContext ctx;
  ctx.served_model_names = {"llama"};
  ctx.vocab_size = 1000;
  ctx.max_model_len = 2048;
  return ctx;
}

ChatCompletionRequest parse_ok(std::string_view body) {
  auto r = parse_chat_request(body, context());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : ChatCompletionRequest{};
}

ApiError parse_err(std::string_view body) {
  auto r = parse_chat_request(body, context());
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

TEST(ChatRequestTest, Minimal) {
  ChatCompletionRequest req =
      parse_ok(R"({"model": "llama", "messages": [{"role": "user", "content": "Hi"}]})");
  bj::value msgs = bj::parse(req.messages_json);
  ASSERT_EQ(msgs.as_array().size(), 1u);
  EXPECT_EQ(msgs.at(0).at("role").as_string(), "user");
  EXPECT_EQ(msgs.at(0).at("content").as_string(), "Hi");
  EXPECT_TRUE(req.template_options.add_generation_prompt);
  EXPECT_FALSE(req.add_special_tokens);
  EXPECT_EQ(req.params.max_tokens, 2048);  // as many as fit
  EXPECT_FALSE(req.params.logprobs.has_value());
}

TEST(ChatRequestTest, ContentPartsAreJoined) {
  ChatCompletionRequest req = parse_ok(R"({"messages": [
      {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "user", "content": "q", "name": "bob"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
        "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "content": "42", "tool_call_id": "1"}]})");
  bj::value msgs = bj::parse(req.messages_json);
  EXPECT_EQ(msgs.at(0).at("content").as_string(), "a\nb");
  EXPECT_EQ(msgs.at(1).at("name").as_string(), "bob");
  EXPECT_TRUE(msgs.at(2).at("content").is_null());
  EXPECT_EQ(msgs.at(2).at("tool_calls").as_array().size(), 1u);
  EXPECT_EQ(msgs.at(3).at("tool_call_id").as_string(), "1");
}

TEST(ChatRequestTest, MaxCompletionTokensWins) {
  ChatCompletionRequest req = parse_ok(
      R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5,
          "max_completion_tokens": 9})");
  EXPECT_EQ(req.params.max_tokens, 9);
}

TEST(ChatRequestTest, Logprobs) {
  ChatCompletionRequest req = parse_ok(
      R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 3})");
  EXPECT_TRUE(req.logprobs);
  EXPECT_EQ(req.params.logprobs, 3);
  EXPECT_EQ(parse_ok(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})")
                .params.logprobs,
            0);
  ApiError e = parse_err(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})");
  EXPECT_EQ(e.param, "top_logprobs");
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 3})").code,
            "invalid_type");
}

TEST(ChatRequestTest, TemplateOptions) {
  ChatCompletionRequest req = parse_ok(R"({"messages": [{"role": "user", "content": "x"}],
      "chat_template": "{{ messages[0].content }}", "chat_template_kwargs": {"enable_thinking": false},
      "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
      "tool_choice": "auto", "add_generation_prompt": false})");
  EXPECT_EQ(req.template_options.chat_template, "{{ messages[0].content }}");
  EXPECT_EQ(bj::parse(req.template_options.extra_kwargs_json).at("enable_thinking").as_bool(),
            false);
  EXPECT_EQ(bj::parse(req.template_options.tools_json).as_array().size(), 1u);
  EXPECT_FALSE(req.template_options.add_generation_prompt);
  ChatCompletionRequest cont = parse_ok(
      R"({"messages": [{"role": "assistant", "content": "Once"}], "continue_final_message": true})");
  EXPECT_TRUE(cont.continue_final_message);
  EXPECT_FALSE(cont.template_options.add_generation_prompt);
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "assistant", "content": "x"}],
      "continue_final_message": true, "add_generation_prompt": true})")
                .param,
            "continue_final_message");
}

TEST(ChatRequestTest, BadMessages) {
  struct Case {
    const char* body;
    const char* param;
    const char* code;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({})", "messages", "missing_required_parameter"},
           {R"({"messages": []})", "messages", "invalid_value"},
           {R"({"messages": "hi"})", "messages", "invalid_type"},
           {R"({"messages": ["hi"]})", "messages[0]", "invalid_type"},
           {R"({"messages": [{"content": "x"}]})", "messages[0].role",
            "missing_required_parameter"},
           {R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role",
            "invalid_value"},
           {R"({"messages": [{"role": "user"}]})", "messages[0].content",
            "missing_required_parameter"},
           {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content",
            "invalid_type"},
           {R"({"messages": [{"role": "user", "content": "x", "colour": "red"}]})",
            "messages[0].colour", "unknown_parameter"},
           {R"({"messages": [{"role": "user", "content": [{"type": "image_url",
               "image_url": {"url": "http://x"}}]}]})",
            "messages[0].content[0].type", "unsupported_value"},
           {R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
            "messages[0].content[0].text", "missing_required_parameter"},
           {R"({"messages": [{"role": "user", "content": [{"type": "blob"}]}]})",
            "messages[0].content[0].type", "invalid_value"},
           {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})",
            "tools[0].function", "missing_required_parameter"},
           {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})",
            "tool_choice", "invalid_value"},
           {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
               "function": {"name": "f"}}], "tool_choice": {"type": "function",
               "function": {"name": "g"}}})",
            "tool_choice", "invalid_value"},
           {R"({"messages": [{"role": "user", "content": "x"}], "functions": []})", "functions",
            "unsupported_value"},
           {R"({"messages": [{"role": "user", "content": "x"}], "echo": true})", "echo",
            "unknown_parameter"},
           {R"({"messages": [{"role": "user", "content": "x"}], "chat_template": ""})",
            "chat_template", "invalid_value"},
       }) {
    ApiError e = parse_err(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_EQ(e.code, c.code) << c.body;
  }
}

TEST(ChatRequestTest, AcceptedOpenAiFields) {
  parse_ok(R"({"messages": [{"role": "developer", "content": "x"}], "user": "u", "store": false,
      "metadata": {"a": "b"}, "parallel_tool_calls": true, "service_tier": "auto",
      "modalities": ["text"], "response_format": {"type": "text"}, "seed": 3})");
}

TEST(ContinueFinalMessageTest, TagAndCut) {
  auto tagged =
      tag_final_message(R"([{"role":"user","content":"a"},{"role":"assistant","content":"Once"}])");
  ASSERT_TRUE(tagged.ok());
  EXPECT_NE(tagged.value().find("OnceCONTINUE_FINAL_MESSAGE_TAG "), std::string::npos);
  auto cut = cut_at_continue_tag("<s>user: a\nassistant: OnceCONTINUE_FINAL_MESSAGE_TAG </s>\n");
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut.value(), "<s>user: a\nassistant: Once");
  // A template that trims the message: the trailing whitespace before the tag goes too.
  auto trimmed = cut_at_continue_tag("assistant: Once CONTINUE_FINAL_MESSAGE_TAG</s>");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(trimmed.value(), "assistant: Once");
  EXPECT_FALSE(cut_at_continue_tag("no tag here").ok());
  EXPECT_FALSE(tag_final_message(R"([{"role":"assistant","content":null}])").ok());
}

}  // namespace
}  // namespace kite::server
