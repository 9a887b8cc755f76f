// Prometheus metrics of `kite serve` (text exposition format via prometheus-cpp). Names are
// prefixed `kite:` (as vLLM's `vllm:`); docs/serving.md lists them.
//
// Two sources: server-side events recorded here as they happen (HTTP requests by status,
// finished requests, latency histograms from each request's RequestMetrics), and the engine's
// counters (EngineStats), read at scrape time.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "kite/engine.h"
#include "kite/request.h"

namespace kite::server {

class ServerMetrics {
 public:
  // prefix_cache_group > 0 (--metrics-aggregate-only): the prefix-cache counters are published
  // only in aggregates of at least that many engine requests (see render()); 0: live.
  explicit ServerMetrics(int64_t prefix_cache_group = 0);

  // One HTTP response: `handler` is a route name from a fixed set ("/v1/completions", ...,
  // "other"), never the raw path, so label values stay bounded.
  void observe_http(std::string_view handler, int status);
  // One engine request ended (seen by the server): latencies from its metrics; `num_choices`
  // splits generated tokens per choice for the time per output token.
  void observe_finished(const RequestMetrics& m, FinishReason reason, int num_choices);
  // An engine request the server aborted before its final output (client disconnect).
  void observe_aborted_by_client();
  // Generation requests the HTTP side is serving right now.
  void add_in_flight(int delta);
  // HTTP connections open right now.
  void add_connections(int delta);

  // The text exposition: server metrics, then the engine's (when `stats` is set). With a
  // prefix-cache group, kite:prefix_cache_{queries,hits}_total and the hit rate stay at the
  // snapshot taken when at least `group` engine requests had ended since the previous one, so a
  // scrape before and after one request cannot show that request's own hits.
  std::string render(const EngineStats* stats, const ModelInfo* info) const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Family<prometheus::Counter>& request_success_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& connections_;
  prometheus::Histogram& ttft_;
  prometheus::Histogram& tpot_;
  prometheus::Histogram& e2e_;
  prometheus::Histogram& queue_time_;
  prometheus::Histogram& prompt_tokens_;
  prometheus::Histogram& generation_tokens_;

  struct PrefixCacheSnapshot {
    int64_t queries = 0;
    int64_t hits = 0;
    int64_t requests_ended = 0;  // engine requests finished + aborted when it was taken
  };
  const int64_t prefix_cache_group_;
  mutable std::mutex snapshot_mu_;
  mutable PrefixCacheSnapshot published_;
};

}  // namespace kite::server
