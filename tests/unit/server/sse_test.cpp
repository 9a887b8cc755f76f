#include "server/sse.h"

#include <gtest/gtest.h>

namespace kite::server {
namespace {

TEST(SseTest, OneLine) { EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n"); }

TEST(SseTest, NewlinesBecomeFields) {
  EXPECT_EQ(sse_event("a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(sse_event("a\r\nb\rc"), "data: a\ndata: b\ndata: c\n\n");
  EXPECT_EQ(sse_event(""), "data: \n\n");
}

TEST(SseTest, Done) { EXPECT_EQ(kSseDone, "data: [DONE]\n\n"); }

}  // namespace
}  // namespace kite::server
