// SpanExporter: spans queued by any thread, sent in batches by one background thread as OTLP/HTTP
// protobuf (POST <endpoint>, Content-Type: application/x-protobuf), as the OpenTelemetry SDKs'
// BatchSpanProcessor + OTLPSpanExporter do. A batch goes when 512 spans wait or 1 s after the
// first; a failed export is logged (once a minute at most) and its spans dropped, so a collector
// that is down never slows requests. The destructor sends what is queued (up to 5 s).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "telemetry/otlp.h"

namespace kite::telemetry {

class SpanExporter {
 public:
  // `endpoint`: "http://host:4318" (then /v1/traces is appended, as for
  // OTEL_EXPORTER_OTLP_ENDPOINT) or a full URL with a path (used as is).
  SpanExporter(std::string endpoint, std::string service_name);
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  void add(std::vector<Span> spans);
  const std::string& url() const { return url_; }

 private:
  void run();
  bool post(const std::string& body);

  std::string url_;
  std::string service_name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Span> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kite::telemetry
