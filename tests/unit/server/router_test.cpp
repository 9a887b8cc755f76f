#include "server/router.h"

#include <gtest/gtest.h>

namespace kite::server {
namespace {

TEST(RouterTest, KnownRoutes) {
  EXPECT_EQ(match_route("GET", "/").route, Route::kChatPage);
  EXPECT_EQ(match_route("GET", "/health").route, Route::kHealth);
  EXPECT_EQ(match_route("GET", "/metrics").route, Route::kMetrics);
  EXPECT_EQ(match_route("GET", "/version").route, Route::kVersion);
  EXPECT_EQ(match_route("GET", "/v1/models").route, Route::kModels);
  EXPECT_EQ(match_route("POST", "/v1/completions").route, Route::kCompletions);
  EXPECT_EQ(match_route("POST", "/v1/chat/completions").route, Route::kChatCompletions);
  EXPECT_EQ(match_route("POST", "/v1/messages").route, Route::kMessages);
  EXPECT_EQ(match_route("POST", "/v1/responses").route, Route::kResponses);
  EXPECT_EQ(match_route("POST", "/v1/embeddings").route, Route::kEmbeddings);
  EXPECT_EQ(match_route("GET", "/v1/messages").status, 405);
  EXPECT_EQ(match_route("POST", "/tokenize").route, Route::kTokenize);
  EXPECT_EQ(match_route("POST", "/detokenize").route, Route::kDetokenize);
}

TEST(RouterTest, QueryStringIgnored) {
  RouteMatch m = match_route("GET", "/health?verbose=1");
  EXPECT_EQ(m.route, Route::kHealth);
  EXPECT_EQ(m.path, "/health");
}

TEST(RouterTest, ModelById) {
  RouteMatch m = match_route("GET", "/v1/models/my%2Fmodel");
  EXPECT_EQ(m.route, Route::kModel);
  EXPECT_EQ(m.model_id, "my/model");
  EXPECT_EQ(m.label, "/v1/models/{id}");
  EXPECT_EQ(match_route("GET", "/v1/models/bad%zz").model_id, "bad%zz");
}

TEST(RouterTest, UnknownPathIs404) {
  RouteMatch m = match_route("GET", "/v2/completions");
  EXPECT_EQ(m.route, Route::kNone);
  EXPECT_EQ(m.status, 404);
  EXPECT_EQ(m.label, "other");
}

TEST(RouterTest, WrongMethodIs405) {
  RouteMatch m = match_route("GET", "/v1/completions");
  EXPECT_EQ(m.route, Route::kNone);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "POST, OPTIONS");
  EXPECT_EQ(match_route("POST", "/health").status, 405);
  EXPECT_EQ(match_route("DELETE", "/v1/models").status, 405);
}

TEST(RouterTest, HeadAndOptions) {
  RouteMatch head = match_route("HEAD", "/health");
  EXPECT_EQ(head.route, Route::kHealth);
  EXPECT_TRUE(head.head);
  EXPECT_EQ(match_route("HEAD", "/v1/completions").status, 405);
  EXPECT_EQ(match_route("OPTIONS", "/v1/chat/completions").route, Route::kPreflight);
  EXPECT_EQ(match_route("OPTIONS", "/nope").status, 404);
}

}  // namespace
}  // namespace kite::server
