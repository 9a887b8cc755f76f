#include "server/openai_response.h"

#include <gtest/gtest.h>

namespace kite::server {
namespace {

namespace bj = boost::json;

std::string token_text(int32_t id) {
  static const char* kWords[] = {"<s>", " Once", " upon", " a", " time", "é"};
  return kWords[id];
}

LogprobEntry entry(int32_t id, float lp, std::vector<TokenLogprob> top) {
  LogprobEntry e;
  e.token_id = id;
  e.logprob = lp;
  e.rank = 1;
  e.top = std::move(top);
  return e;
}

TEST(ChoiceAccumTest, AccumulatesAndFinishes) {
  ChoiceAccum acc;
  ChoiceDelta d1;
  d1.token_ids = {1, 2};
  d1.text = " Once upon";
  acc.add(d1);
  EXPECT_FALSE(acc.finished());
  ChoiceDelta d2;
  d2.token_ids = {3};
  d2.text = " a";
  d2.finish_reason = FinishReason::kStop;
  d2.stop_reason = std::string("\n");
  acc.add(d2);
  EXPECT_TRUE(acc.finished());
  EXPECT_EQ(acc.text, " Once upon a");
  EXPECT_EQ(acc.token_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(finish_reason_json(acc.finish_reason).as_string(), "stop");
  EXPECT_EQ(stop_reason_json(acc.stop_reason).as_string(), "\n");
  EXPECT_TRUE(stop_reason_json({}).is_null());
  EXPECT_EQ(stop_reason_json(int32_t{2}).as_int64(), 2);
  EXPECT_TRUE(finish_reason_json(FinishReason::kNone).is_null());
  EXPECT_EQ(finish_reason_json(FinishReason::kLength).as_string(), "length");
}

TEST(UsageTest, Total) {
  bj::object u = usage_json({5, 7});
  EXPECT_EQ(u.at("prompt_tokens").as_int64(), 5);
  EXPECT_EQ(u.at("completion_tokens").as_int64(), 7);
  EXPECT_EQ(u.at("total_tokens").as_int64(), 12);
}

TEST(CompletionLogprobsTest, LegacyFormat) {
  std::vector<LogprobEntry> entries = {
      entry(1, -0.5f, {{1, -0.5f}, {2, -1.5f}}),
      entry(5, -2.0f, {{3, -0.1f}}),  // sampled token outside the top list
  };
  bj::object out;
  int64_t offset = 0;
  append_completion_logprobs(out, entries, token_text, offset);
  EXPECT_EQ(out.at("tokens").as_array(), (bj::array{" Once", "é"}));
  EXPECT_EQ(out.at("token_logprobs").as_array(), (bj::array{-0.5, -2.0}));
  EXPECT_EQ(out.at("text_offset").as_array(), (bj::array{0, 5}));
  EXPECT_EQ(offset, 6);  // "é" is one code point
  const bj::object& top0 = out.at("top_logprobs").as_array()[0].as_object();
  EXPECT_EQ(top0.size(), 2u);
  EXPECT_DOUBLE_EQ(top0.at(" upon").as_double(), -1.5);
  const bj::object& top1 = out.at("top_logprobs").as_array()[1].as_object();
  EXPECT_EQ(top1.size(), 2u);  // the top one plus the sampled one
  EXPECT_DOUBLE_EQ(top1.at("é").as_double(), -2.0);
}

TEST(CompletionLogprobsTest, PromptStartHasNoLogprob) {
  std::vector<LogprobEntry> entries = {entry(0, 0.0f, {}), entry(1, -3.0f, {{1, -3.0f}})};
  bj::object out;
  int64_t offset = 0;
  append_completion_logprobs(out, entries, token_text, offset, 1);
  EXPECT_TRUE(out.at("token_logprobs").as_array()[0].is_null());
  EXPECT_TRUE(out.at("top_logprobs").as_array()[0].is_null());
  EXPECT_DOUBLE_EQ(out.at("token_logprobs").as_array()[1].as_double(), -3.0);
}

TEST(CompletionLogprobsTest, InfinityIsClamped) {
  std::vector<LogprobEntry> entries = {entry(1, -std::numeric_limits<float>::infinity(), {})};
  bj::object out;
  int64_t offset = 0;
  append_completion_logprobs(out, entries, token_text, offset);
  EXPECT_DOUBLE_EQ(out.at("token_logprobs").as_array()[0].as_double(), -9999.0);
  // The serialized body must be strict JSON (no inf / nan tokens).
  EXPECT_EQ(bj::serialize(out).find("inf"), std::string::npos);
}

TEST(ChatLogprobsTest, Format) {
  bj::array content;
  append_chat_logprobs(
      content, std::vector<LogprobEntry>{entry(5, -1.0f, {{5, -1.0f}, {1, -2.0f}})}, token_text);
  ASSERT_EQ(content.size(), 1u);
  const bj::object& e = content[0].as_object();
  EXPECT_EQ(e.at("token").as_string(), "é");
  EXPECT_DOUBLE_EQ(e.at("logprob").as_double(), -1.0);
  EXPECT_EQ(e.at("bytes").as_array(), (bj::array{0xC3, 0xA9}));
  ASSERT_EQ(e.at("top_logprobs").as_array().size(), 2u);
  EXPECT_EQ(e.at("top_logprobs").as_array()[1].at("token").as_string(), " Once");
}

TEST(IdsTest, RandomIdShape) {
  std::string a = random_id("cmpl-");
  std::string b = random_id("cmpl-");
  EXPECT_EQ(a.size(), 5u + 32u);
  EXPECT_EQ(a.rfind("cmpl-", 0), 0u);
  EXPECT_NE(a, b);
  EXPECT_GT(unix_time_now(), 1600000000);
}

TEST(Utf8Test, Length) {
  EXPECT_EQ(utf8_length(""), 0);
  EXPECT_EQ(utf8_length("abc"), 3);
  EXPECT_EQ(utf8_length("h\xC3\xA9llo \xF0\x9F\x98\x80"), 7);
}

}  // namespace
}  // namespace kite::server

namespace kite::server {
namespace {

TEST(Utf8Test, SanitizeMatchesPythonReplace) {
  // Expected strings are Python's bytes.decode("utf-8", errors="replace").encode().
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("plain"), "plain");
  EXPECT_EQ(sanitize_utf8("h\xC3\xA9"), "h\xC3\xA9");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), r);  // truncated: one replacement
  EXPECT_EQ(sanitize_utf8("a\xE2\x82"
                          "b"),
            "a" + r + "b");
  EXPECT_EQ(sanitize_utf8("\xFF\xFE"), r + r);          // never-valid bytes: one each
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), r + r);          // overlong
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), r);
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sanitize_utf8("\x80"
                          "a"),
            r + "a");
}

}  // namespace
}  // namespace kite::server
