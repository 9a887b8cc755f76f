// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header
// "00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>", and random ids.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kite::telemetry {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};   // the caller's span: the parent of ours
  uint8_t flags = 1;  // bit 0: sampled
};

// nullopt for a malformed header, version ff, or all-zero ids (the spec says: ignore it).
std::optional<TraceContext> parse_traceparent(std::string_view header);
std::string format_traceparent(const TraceId& trace, const SpanId& span, uint8_t flags);

TraceId random_trace_id();
SpanId random_span_id();
std::string hex(const uint8_t* data, size_t size);

}  // namespace kite::telemetry
