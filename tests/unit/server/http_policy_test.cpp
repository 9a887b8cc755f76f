#include "server/http_policy.h"

#include <gtest/gtest.h>

namespace kite::server {
namespace {

TEST(AuthTest, PathsUnderV1NeedAuth) {
  EXPECT_TRUE(path_requires_auth("/v1/completions"));
  EXPECT_TRUE(path_requires_auth("/v1/models"));
  EXPECT_TRUE(path_requires_auth("/v1"));
  EXPECT_FALSE(path_requires_auth("/v10"));
  EXPECT_FALSE(path_requires_auth("/health"));
  EXPECT_FALSE(path_requires_auth("/metrics"));
  EXPECT_TRUE(path_requires_auth("/tokenize"));
  EXPECT_TRUE(path_requires_auth("/detokenize"));
  EXPECT_FALSE(path_requires_auth("/tokenizer"));
  EXPECT_FALSE(path_requires_auth("/"));
}

TEST(AuthTest, Bearer) {
  EXPECT_TRUE(bearer_matches("Bearer sk-123", "sk-123"));
  EXPECT_TRUE(bearer_matches("bearer sk-123", "sk-123"));
  EXPECT_TRUE(bearer_matches("Bearer  sk-123 ", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer sk-12", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer sk-1234", "sk-123"));
  EXPECT_FALSE(bearer_matches("Basic sk-123", "sk-123"));
  EXPECT_FALSE(bearer_matches("sk-123", "sk-123"));
  EXPECT_FALSE(bearer_matches("", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

TEST(AuthTest, BearerOrXApiKey) {
  EXPECT_TRUE(api_key_matches("Bearer k1", "", "k1"));
  EXPECT_TRUE(api_key_matches("", "k1", "k1"));
  EXPECT_TRUE(api_key_matches("", " k1 ", "k1"));
  EXPECT_TRUE(api_key_matches("Bearer wrong", "k1", "k1"));
  EXPECT_FALSE(api_key_matches("", "", "k1"));
  EXPECT_FALSE(api_key_matches("", "k2", "k1"));
  EXPECT_FALSE(api_key_matches("k1", "", "k1"));  // a bare key in Authorization is no Bearer
  EXPECT_FALSE(api_key_matches("", "", ""));
}

TEST(CorsTest, Origins) {
  CorsPolicy none;
  EXPECT_EQ(none.allow_origin("http://a.example"), "");
  CorsPolicy any{{"*"}, false};
  EXPECT_EQ(any.allow_origin("http://a.example"), "*");
  EXPECT_EQ(any.allow_origin(""), "");
  CorsPolicy creds{{"*"}, true};
  EXPECT_EQ(creds.allow_origin("http://a.example"), "http://a.example");
  CorsPolicy list{{"http://a.example", "http://b.example"}, false};
  EXPECT_EQ(list.allow_origin("http://b.example"), "http://b.example");
  EXPECT_EQ(list.allow_origin("http://c.example"), "");
}

TEST(HttpPolicy, FramingFollowsRfc9112) {
  EXPECT_EQ(framing_error_status("", false, true), 0);
  EXPECT_EQ(framing_error_status("", false, false), 0);
  EXPECT_EQ(framing_error_status("chunked", true, false), 0);
  EXPECT_EQ(framing_error_status(" Chunked ", true, false), 0);
  EXPECT_EQ(framing_error_status("chunked", true, true), 400);             // both: smuggling
  EXPECT_EQ(framing_error_status("chunked, identity", true, false), 400);  // chunked not last
  EXPECT_EQ(framing_error_status("chunked, chunked", true, false), 400);
  EXPECT_EQ(framing_error_status("", true, false), 400);
  EXPECT_EQ(framing_error_status("gzip", true, false), 501);
  EXPECT_EQ(framing_error_status("gzip, chunked", true, false), 501);
  EXPECT_EQ(framing_error_status("identity", true, false), 501);
}

}  // namespace
}  // namespace kite::server
