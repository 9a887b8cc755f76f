#include "server/api_error.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace kite::server {
namespace {

namespace bj = boost::json;

TEST(ApiErrorTest, BodyHasOpenAiShape) {
  bj::value v = bj::parse(error_body(invalid_value("temperature", "bad")));
  const bj::object& e = v.at("error").as_object();
  EXPECT_EQ(e.at("message").as_string(), "bad");
  EXPECT_EQ(e.at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(e.at("param").as_string(), "temperature");
  EXPECT_EQ(e.at("code").as_string(), "invalid_value");
  EXPECT_EQ(e.size(), 4u);
}

TEST(ApiErrorTest, EmptyParamAndCodeAreNull) {
  ApiError err{500, "boom", "server_error", "", ""};
  bj::value v = bj::parse(error_body(err));
  EXPECT_TRUE(v.at("error").at("param").is_null());
  EXPECT_TRUE(v.at("error").at("code").is_null());
}

TEST(ApiErrorTest, StatusMapping) {
  EXPECT_EQ(api_error_from_status(invalid_argument("x"), "prompt").http_status, 400);
  ApiError too_long = api_error_from_status(out_of_range("too long"), "prompt");
  EXPECT_EQ(too_long.http_status, 400);
  EXPECT_EQ(too_long.code, "context_length_exceeded");
  EXPECT_EQ(too_long.param, "prompt");
  EXPECT_EQ(api_error_from_status(unavailable("full"), "").http_status, 503);
  EXPECT_EQ(api_error_from_status(resource_exhausted("full"), "").http_status, 503);
  EXPECT_EQ(api_error_from_status(not_found("x"), "").http_status, 404);
  EXPECT_EQ(api_error_from_status(internal_error("x"), "").http_status, 500);
  EXPECT_EQ(model_not_found("gpt-4").http_status, 404);
  EXPECT_EQ(model_not_found("gpt-4").code, "model_not_found");
  EXPECT_EQ(body_too_large(10).http_status, 413);
  EXPECT_EQ(method_not_allowed("GET", "/v1/completions").http_status, 405);
  EXPECT_EQ(unauthorized().http_status, 401);
}

TEST(ApiErrorTest, AnthropicShape) {
  boost::json::value v = boost::json::parse(anthropic_error_body(invalid_value("x", "bad x")));
  EXPECT_EQ(
      v,
      boost::json::parse(
          R"({"type": "error", "error": {"type": "invalid_request_error", "message": "bad x"}})"));
  EXPECT_EQ(anthropic_error_type(401), "authentication_error");
  EXPECT_EQ(anthropic_error_type(404), "not_found_error");
  EXPECT_EQ(anthropic_error_type(413), "request_too_large");
  EXPECT_EQ(anthropic_error_type(503), "overloaded_error");
  EXPECT_EQ(anthropic_error_type(500), "api_error");
}

}  // namespace
}  // namespace kite::server
