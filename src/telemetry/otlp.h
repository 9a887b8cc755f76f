// Spans and their OTLP encoding: an ExportTraceServiceRequest in protobuf binary, what an
// OTLP/HTTP receiver takes at POST /v1/traces (Content-Type: application/x-protobuf).
// Field numbers from opentelemetry-proto (opentelemetry/proto/trace/v1/trace.proto).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "telemetry/trace_context.h"

namespace kite::telemetry {

struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zero: a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  bool error = false;  // Status ERROR (else UNSET)
  std::string status_message;
};

// One ResourceSpans (resource attributes: service.name and the given ones) with one ScopeSpans
// ("kite", version) holding `spans`.
std::string encode_export_request(const std::vector<Span>& spans, const std::string& service_name,
                                  const std::vector<Attribute>& resource_attributes);

}  // namespace kite::telemetry
