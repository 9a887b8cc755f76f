// W3C traceparent parsing and the OTLP protobuf encoding's framing. The encoding is decoded
// with the official opentelemetry-proto classes in tests/e2e/test_observability.py.
#include <gtest/gtest.h>

#include "telemetry/otlp.h"
#include "telemetry/trace_context.h"

namespace kite::telemetry {
namespace {

TEST(TraceParent, ParsesTheW3cExample) {
  auto c = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(c);
  EXPECT_EQ(hex(c->trace_id.data(), 16), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hex(c->span_id.data(), 8), "00f067aa0ba902b7");
  EXPECT_EQ(c->flags, 1);
  EXPECT_EQ(format_traceparent(c->trace_id, c->span_id, c->flags),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  // A future version may add fields after a dash.
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz"));
}

TEST(TraceParent, RejectsWhatTheSpecSaysToIgnore) {
  for (const char* bad :
       {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // uppercase
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 + extra
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(TraceIds, RandomAndNonZero) {
  const TraceId a = random_trace_id(), b = random_trace_id();
  EXPECT_NE(a, b);
  EXPECT_NE(a, TraceId{});
  EXPECT_NE(random_span_id(), SpanId{});
}

TEST(Otlp, FramesOneResourceSpans) {
  Span s;
  s.trace_id = random_trace_id();
  s.span_id = random_span_id();
  s.name = "decode";
  s.start_unix_nano = 1;
  s.end_unix_nano = 2;
  s.attributes = {{"n", int64_t{-1}}, {"x", 0.5}, {"b", true}, {"s", std::string("v")}};
  const std::string bytes = encode_export_request({s}, "kite", {});
  ASSERT_GE(bytes.size(), 3u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x0a);  // field 1 (resource_spans), length-delimited
  EXPECT_NE(bytes.find("decode"), std::string::npos);
  EXPECT_NE(bytes.find("service.name"), std::string::npos);
}

}  // namespace
}  // namespace kite::telemetry
