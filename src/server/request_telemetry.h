// What kite serve records about each HTTP exchange beyond metrics: a structured log line per
// generation request (request id, route, status, tokens, latencies; --log-format json makes
// it an object) and, with --otlp-traces-endpoint, an OpenTelemetry trace:
//   "POST /v1/chat/completions" (SERVER; child of the caller's W3C traceparent, if any)
//     └ "llm_request" per engine request (gen_ai.* attributes, as vLLM's)
//         ├ "queue"    arrival -> first scheduled
//         ├ "prefill"  first scheduled -> first token
//         └ "decode"   first token -> last token
// Internal to src/server/. ExchangeRecord lives in one exchange (one strand); ServerTelemetry
// is shared and thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kite/request.h"
#include "kite/status.h"
#include "telemetry/exporter.h"
#include "telemetry/trace_context.h"

namespace kite::server {

class ExchangeRecord {
 public:
  // `traceparent`: the request's header ("" when absent); `request_id`: its X-Request-Id.
  ExchangeRecord(std::string_view traceparent, std::string_view request_id);

  // One engine request of this exchange ended (called by EngineRequests).
  void add_engine_request(const std::string& id, const RequestMetrics& m, FinishReason reason,
                          const Status& error);

  const telemetry::TraceId& trace_id() const { return trace_id_; }
  const telemetry::SpanId& span_id() const { return span_id_; }
  // The traceparent to answer with (our server span as the parent of what follows).
  std::string traceparent() const;

 private:
  friend class ServerTelemetry;
  struct EngineRequest {
    std::string id;
    RequestMetrics metrics;
    FinishReason reason = FinishReason::kNone;
    Status error;
  };
  telemetry::TraceId trace_id_{};
  telemetry::SpanId span_id_{};
  telemetry::SpanId parent_span_id_{};  // the caller's, or zero
  uint8_t flags_ = 1;
  std::string request_id_;
  std::chrono::system_clock::time_point start_wall_;
  Clock::time_point start_;
  std::vector<EngineRequest> engine_requests_;
};

class ServerTelemetry {
 public:
  // Empty endpoint: logs only.
  explicit ServerTelemetry(const std::string& otlp_traces_endpoint);
  ~ServerTelemetry();

  // The exchange ended with `status` (499: the client left first).
  void finish(const ExchangeRecord& record, std::string_view method, std::string_view route,
              int status);

 private:
  std::unique_ptr<telemetry::SpanExporter> exporter_;
};

}  // namespace kite::server
