#include "server/responses_request.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/response_store.h"

namespace kite::server {
namespace {

namespace bj = boost::json;

ParseContext context() {
  ParseContext ctx;
  ctx.served_model_names = {"m"};
  ctx.vocab_size = 1000;
  ctx.max_model_len = 2048;
  return ctx;
}

ApiResult<ResponsesRequest> parse(std::string_view body, ResponseStore* store = nullptr) {
  PreviousResponseLookup lookup;
  if (store) lookup = [store](const std::string& id) { return store->get(id); };
  return parse_responses_request(body, context(), lookup);
}

TEST(ResponsesRequestTest, StringInputAndInstructions) {
  auto r = parse(R"({"input": "hi", "instructions": "S", "max_output_tokens": 9,
                     "temperature": 0.5})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ResponsesRequest& req = r.value();
  EXPECT_EQ(
      bj::parse(req.chat.messages_json),
      bj::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}])"));
  EXPECT_EQ(bj::parse(req.conversation_json), bj::parse(R"([{"role": "user", "content": "hi"}])"));
  EXPECT_EQ(req.chat.params.max_tokens, 9);
  EXPECT_EQ(req.max_output_tokens, 9);
  EXPECT_DOUBLE_EQ(req.chat.params.temperature, 0.5);
  EXPECT_TRUE(req.store);
}

TEST(ResponsesRequestTest, FunctionCallItemsBecomeToolCallsAndToolMessages) {
  auto r = parse(R"({"input": [
      {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
      {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\": 1}"},
      {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "r1"}],
      "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
      "tool_choice": {"type": "function", "name": "f"},
      "text": {"format": {"type": "json_object"}}})");
  ASSERT_FALSE(r.ok());  // a named tool_choice cannot be combined with text.format
  r = parse(R"({"input": [
      {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
      {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\": 1}"},
      {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "r1"}],
      "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
      "tool_choice": "required"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(bj::parse(r.value().chat.messages_json), bj::parse(R"([
      {"role": "user", "content": "q"},
      {"role": "assistant", "content": "", "tool_calls": [
          {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}},
          {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "f", "content": "r1"}])"));
  EXPECT_EQ(r.value().chat.tool_choice.kind, ToolChoice::Kind::kRequired);
}

TEST(ResponsesRequestTest, PreviousResponseFromTheStore) {
  ResponseStore store;
  store.put("resp_1", R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
      "tool_calls": [{"id": "call_9", "type": "function",
                      "function": {"name": "f", "arguments": "{}"}}]}])");
  auto r = parse(R"({"previous_response_id": "resp_1", "instructions": "S", "input": [
      {"type": "function_call_output", "call_id": "call_9", "output": "ok"}]})",
                 &store);
  ASSERT_TRUE(r.ok()) << r.error().message;
  bj::array msgs = bj::parse(r.value().chat.messages_json).as_array();
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[0].at("role").as_string(), "system");
  EXPECT_EQ(msgs[3].at("tool_call_id").as_string(), "call_9");
  auto missing = parse(R"({"previous_response_id": "resp_2", "input": "x"})", &store);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().http_status, 404);
  EXPECT_EQ(missing.error().param, "previous_response_id");
}

TEST(ResponsesRequestTest, Errors) {
  auto err = [](std::string_view body) {
    auto r = parse(body);
    EXPECT_FALSE(r.ok()) << body;
    return r.ok() ? ApiError{} : r.error();
  };
  EXPECT_EQ(err(R"({})").param, "input");
  EXPECT_EQ(
      err(R"({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]})").param,
      "input[0].call_id");
  EXPECT_EQ(err(R"({"input": [{"type": "nope"}]})").code, "invalid_value");
  EXPECT_EQ(err(R"({"input": [{"type": "item_reference", "id": "x"}]})").code, "unsupported_value");
  EXPECT_EQ(err(R"({"input": "x", "tools": [{"type": "web_search"}]})").param, "tools[0].type");
  EXPECT_EQ(err(R"({"input": "x", "background": true})").param, "background");
  EXPECT_EQ(err(R"({"input": "x", "n": 2})").param, "n");
}

TEST(ResponseStoreTest, BoundedByEntriesAndBytesLeastRecentlyUsedFirst) {
  ResponseStore store(2, 100);
  store.put("a", "[1]");
  store.put("b", "[2]");
  ASSERT_TRUE(store.get("a"));  // a is now the most recent
  store.put("c", "[3]");
  EXPECT_FALSE(store.get("b"));
  EXPECT_EQ(store.get("a"), "[1]");
  EXPECT_EQ(store.get("c"), "[3]");
  store.put("big", std::string(101, 'x'));  // over max_bytes: not kept
  EXPECT_FALSE(store.get("big"));
  store.put("d", std::string(98, 'x'));  // evicts until the bytes fit
  EXPECT_EQ(store.size(), 1u);
}

}  // namespace
}  // namespace kite::server
