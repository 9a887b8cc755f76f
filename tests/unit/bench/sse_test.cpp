#include <gtest/gtest.h>

#include <fstream>

#include <boost/json.hpp>

#include "bench/http_client.h"
#include "bench/openai_stream.h"
#include "bench/sse_parser.h"

namespace kite::bench {
namespace {

std::vector<std::string> feed_all(SseParser& p, const std::vector<std::string>& pieces) {
  std::vector<std::string> events;
  for (const std::string& piece : pieces) {
    p.feed(piece, [&](std::string_view d) { events.emplace_back(d); });
  }
  return events;
}

TEST(SseParser, EventsAcrossArbitraryPieces) {
  const std::string stream =
      "data: {\"a\":1}\n\n: keep-alive comment\n\nevent: x\ndata: line1\ndata:line2\n\n"
      "data: [DONE]\n\n";
  // Every split point gives the same events.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    auto events = feed_all(p, {stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "line1\nline2", "[DONE]"}))
        << "cut " << cut;
    EXPECT_FALSE(p.has_pending());
  }
}

TEST(SseParser, CrLfAndCrLineEndingsEvenWhenSplit) {
  SseParser p;
  auto events = feed_all(p, {"data: a\r", "\n\r", "\ndata: b\r\r", "data: c\n", "\n"});
  EXPECT_EQ(events, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SseParser, PendingWhenTheStreamStopsMidEvent) {
  SseParser p;
  auto events = feed_all(p, {"data: whole\n\ndata: half"});
  EXPECT_EQ(events.size(), 1u);
  EXPECT_TRUE(p.has_pending());
  EXPECT_EQ(p.num_events(), 1u);
}

TEST(SseParser, EventsWithoutDataAreNotReported) {
  SseParser p;
  auto events = feed_all(p, {"event: ping\n\nid: 3\n\n:comment\n\ndata\n\n"});
  // "data" with no colon is a data field with an empty value.
  EXPECT_EQ(events, (std::vector<std::string>{""}));
}

TEST(StreamChunk, CompletionsTextUsageAndDone) {
  StreamChunk c = *parse_stream_chunk(
      R"({"id":"x","choices":[{"index":0,"text":"Hi","finish_reason":null}],"usage":null})",
      ApiKind::kCompletions);
  EXPECT_TRUE(c.has_content);
  EXPECT_FALSE(c.has_usage);
  c = *parse_stream_chunk(R"({"choices":[{"text":"","finish_reason":"length"}]})",
                          ApiKind::kCompletions);
  EXPECT_FALSE(c.has_content);
  EXPECT_EQ(c.finish_reason, "length");
  c = *parse_stream_chunk(R"({"choices":[{"text":"","token_ids":[5]}]})", ApiKind::kCompletions);
  EXPECT_TRUE(c.has_content);
  c = *parse_stream_chunk(
      R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})",
      ApiKind::kCompletions);
  EXPECT_TRUE(c.has_usage);
  EXPECT_EQ(c.prompt_tokens, 12);
  EXPECT_EQ(c.completion_tokens, 34);
  EXPECT_FALSE(c.has_content);
  EXPECT_TRUE(parse_stream_chunk("[DONE]", ApiKind::kCompletions)->done);
  EXPECT_TRUE(parse_stream_chunk("[DONE] ", ApiKind::kCompletions)->done);
}

TEST(StreamChunk, ChatDeltas) {
  auto chat = [](const char* s) { return *parse_stream_chunk(s, ApiKind::kChatCompletions); };
  EXPECT_FALSE(chat(R"({"choices":[{"delta":{"role":"assistant"}}]})").has_content);
  EXPECT_FALSE(chat(R"({"choices":[{"delta":{"content":""}}]})").has_content);
  EXPECT_TRUE(chat(R"({"choices":[{"delta":{"content":"x"}}]})").has_content);
  EXPECT_TRUE(chat(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})").has_content);
  EXPECT_TRUE(chat(R"({"choices":[{"delta":{"tool_calls":[{"id":"1"}]}}]})").has_content);
  // A completions-style "text" is not chat content.
  EXPECT_FALSE(chat(R"({"choices":[{"text":"x"}]})").has_content);
}

TEST(StreamChunk, ErrorsAndMalformed) {
  StreamChunk c = *parse_stream_chunk(
      R"({"error":{"message":"out of KV cache","type":"server_error","code":503}})",
      ApiKind::kCompletions);
  ASSERT_TRUE(c.error.has_value());
  EXPECT_EQ(*c.error, "out of KV cache");
  EXPECT_EQ(*parse_stream_chunk(R"({"error":"boom"})", ApiKind::kCompletions)->error, "boom");
  EXPECT_FALSE(parse_stream_chunk("{not json", ApiKind::kCompletions).ok());
  EXPECT_FALSE(parse_stream_chunk("[1,2]", ApiKind::kCompletions).ok());
}

TEST(RequestBody, CompletionsWithTokenIds) {
  RequestOptions o;
  o.model = "m";
  PromptSpec p{std::vector<int32_t>{1, 2, 3}, 3, 16};
  std::string body = *build_request_body(o, p);
  boost::json::object b = boost::json::parse(body).as_object();
  EXPECT_EQ(b.at("model"), "m");
  EXPECT_EQ(b.at("prompt"), (boost::json::array{1, 2, 3}));
  EXPECT_EQ(b.at("max_tokens"), 16);
  EXPECT_EQ(b.at("temperature").to_number<double>(), 0.0);
  EXPECT_EQ(b.at("stream"), true);
  EXPECT_EQ(b.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(b.size(), 6u);
  EXPECT_EQ(body.find("ignore_eos"), std::string::npos);  // only when asked for
  o.ignore_eos = true;
  o.top_k = 5;
  o.temperature.reset();
  o.extra_body_json = R"({"min_tokens": 16, "stream": true})";
  body = *build_request_body(o, p);
  EXPECT_NE(body.find(R"("ignore_eos":true)"), std::string::npos);
  EXPECT_NE(body.find(R"("top_k":5)"), std::string::npos);
  EXPECT_NE(body.find(R"("min_tokens":16)"), std::string::npos);
  EXPECT_EQ(body.find("temperature"), std::string::npos);
}

TEST(RequestBody, ResponseFormatsCycleByRequestIndex) {
  const std::string path = ::testing::TempDir() + "/formats.json";
  {
    std::ofstream f(path);
    // A bare schema (wrapped as json_schema) and a response_format object as given.
    f << R"([{"type": "object", "properties": {"a": {"type": "integer"}}},
             {"type": "json_object"}])";
  }
  auto formats = read_response_formats(path);
  ASSERT_TRUE(formats.ok()) << formats.status().to_string();
  ASSERT_EQ(formats->size(), 2u);
  RequestOptions o;
  o.model = "m";
  o.response_formats = *formats;
  PromptSpec p{std::vector<int32_t>{1}, 1, 4};
  for (size_t i : {0, 1, 2, 3}) {
    boost::json::object b = boost::json::parse(*build_request_body(o, p, i)).as_object();
    const boost::json::object& rf = b.at("response_format").as_object();
    if (i % 2 == 0) {
      EXPECT_EQ(rf.at("type"), "json_schema");
      EXPECT_EQ(rf.at("json_schema").at("name"), "schema_0");
      EXPECT_EQ(rf.at("json_schema").at("schema").at("type"), "object");
    } else {
      EXPECT_EQ(rf.at("type"), "json_object");
    }
  }
  {
    std::ofstream f(path);
    f << "{\"type\": \"json_object\"}\n\n[1]\n";  // JSONL with a non-object line
  }
  EXPECT_FALSE(read_response_formats(path).ok());
  EXPECT_FALSE(read_response_formats(path + ".missing").ok());
}

TEST(RequestBody, ChatNeedsText) {
  RequestOptions o;
  o.model = "m";
  o.api = ApiKind::kChatCompletions;
  std::string body = *build_request_body(o, PromptSpec{std::string("Hello \"you\""), -1, 8});
  EXPECT_NE(body.find(R"("messages":[{"role":"user","content":"Hello \"you\""}])"),
            std::string::npos);
  EXPECT_FALSE(build_request_body(o, PromptSpec{std::vector<int32_t>{1}, 1, 8}).ok());
  o.extra_body_json = "[1]";
  EXPECT_FALSE(validate(o).ok());
  o.extra_body_json = "{bad";
  EXPECT_FALSE(validate(o).ok());
  o.extra_body_json = "";
  o.model = "";
  EXPECT_NE(validate(o).message().find("--model"), std::string::npos);
}

TEST(HttpUrl, Parses) {
  HttpUrl u = *parse_http_url("http://127.0.0.1:8000");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, "8000");
  EXPECT_EQ(u.path_prefix, "");
  EXPECT_EQ(join_target(u, "/v1/completions"), "/v1/completions");
  u = *parse_http_url("http://example.com/v1/");
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.path_prefix, "/v1");
  EXPECT_EQ(join_target(u, "/v1/completions"), "/v1/completions");
  u = *parse_http_url("http://h:1/proxy");
  EXPECT_EQ(join_target(u, "v1/completions"), "/proxy/v1/completions");
  u = *parse_http_url("http://[::1]:9000/x");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "9000");
  EXPECT_EQ(parse_http_url("https://api.example.com").status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(parse_http_url("ftp://x").ok());
  EXPECT_FALSE(parse_http_url("http://").ok());
  EXPECT_FALSE(parse_http_url("http://h:0").ok());
  EXPECT_FALSE(parse_http_url("http://h:99999").ok());
  EXPECT_FALSE(parse_http_url("http://h:port").ok());
}

}  // namespace
}  // namespace kite::bench
