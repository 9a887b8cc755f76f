#include "server/request_telemetry.h"

#include <fmt/format.h>

#include "core/logging.h"

namespace kite::server {
namespace {

using telemetry::Attribute;
using telemetry::Span;
using telemetry::SpanKind;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

bool is_set(Clock::time_point t) { return t != Clock::time_point{}; }

}  // namespace

ExchangeRecord::ExchangeRecord(std::string_view traceparent, std::string_view request_id)
    : request_id_(request_id), start_wall_(std::chrono::system_clock::now()), start_(Clock::now()) {
  if (auto parent = telemetry::parse_traceparent(traceparent)) {
    trace_id_ = parent->trace_id;
    parent_span_id_ = parent->span_id;
    flags_ = parent->flags;
  } else {
    trace_id_ = telemetry::random_trace_id();
  }
  span_id_ = telemetry::random_span_id();
}

void ExchangeRecord::add_engine_request(const std::string& id, const RequestMetrics& m,
                                        FinishReason reason, const Status& error) {
  engine_requests_.push_back(EngineRequest{id, m, reason, error});
}

std::string ExchangeRecord::traceparent() const {
  return telemetry::format_traceparent(trace_id_, span_id_, flags_);
}

ServerTelemetry::ServerTelemetry(const std::string& endpoint) {
  if (!endpoint.empty()) {
    exporter_ = std::make_unique<telemetry::SpanExporter>(endpoint, "kite");
    KITE_LOG_INFO("exporting OpenTelemetry traces to {}", exporter_->url());
  }
}

ServerTelemetry::~ServerTelemetry() = default;

void ServerTelemetry::finish(const ExchangeRecord& r, std::string_view method,
                             std::string_view route, int status) {
  const Clock::time_point end = Clock::now();
  // Engine times are steady_clock; spans want unix time: map through the exchange's start.
  auto unix_nano = [&](Clock::time_point t) -> uint64_t {
    const auto wall = r.start_wall_ +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(t - r.start_);
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count());
  };
  const std::string trace_id = telemetry::hex(r.trace_id_.data(), r.trace_id_.size());
  for (const auto& e : r.engine_requests_) {
    const RequestMetrics& m = e.metrics;
    const double ttft =
        is_set(m.first_token_time) ? seconds(m.arrival_time, m.first_token_time) : -1.0;
    log_event(spdlog::level::info, "request finished",
              {log_field("request_id", r.request_id_.empty() ? e.id : r.request_id_),
               log_field("engine_request_id", e.id), log_field("method", method),
               log_field("route", route), log_field("status", int64_t{status}),
               log_field("finish_reason", finish_reason_name(e.reason)),
               log_field("prompt_tokens", m.num_prompt_tokens),
               log_field("generation_tokens", m.num_generation_tokens),
               log_field("cached_tokens", m.num_cached_tokens),
               log_field("queue_s", is_set(m.first_scheduled_time)
                                        ? seconds(m.arrival_time, m.first_scheduled_time)
                                        : -1.0),
               log_field("ttft_s", ttft),
               log_field("e2e_s",
                         seconds(m.arrival_time, is_set(m.finished_time) ? m.finished_time : end)),
               log_field("trace_id", trace_id)});
  }
  if (r.engine_requests_.empty()) {
    KITE_LOG_DEBUG("{} {} -> {}", method, route, status);
  }
  // Generation requests only: probes and scrapes (/health, /metrics) would drown the traces.
  if (!exporter_ || r.engine_requests_.empty()) return;
  std::vector<Span> spans;
  Span server;
  server.trace_id = r.trace_id_;
  server.span_id = r.span_id_;
  server.parent_span_id = r.parent_span_id_;
  server.name = fmt::format("{} {}", method, route);
  server.kind = SpanKind::kServer;
  server.start_unix_nano = unix_nano(r.start_);
  server.end_unix_nano = unix_nano(end);
  server.attributes = {{"http.request.method", std::string(method)},
                       {"http.route", std::string(route)},
                       {"http.response.status_code", int64_t{status}}};
  if (!r.request_id_.empty()) server.attributes.push_back({"kite.request_id", r.request_id_});
  server.error = status >= 500;
  spans.push_back(server);
  for (const auto& e : r.engine_requests_) {
    const RequestMetrics& m = e.metrics;
    const Clock::time_point finished = is_set(m.finished_time) ? m.finished_time : end;
    Span req;
    req.trace_id = r.trace_id_;
    req.span_id = telemetry::random_span_id();
    req.parent_span_id = r.span_id_;
    req.name = "llm_request";
    req.start_unix_nano = unix_nano(m.arrival_time);
    req.end_unix_nano = unix_nano(finished);
    req.attributes = {{"gen_ai.request.id", e.id},
                      {"gen_ai.usage.prompt_tokens", m.num_prompt_tokens},
                      {"gen_ai.usage.completion_tokens", m.num_generation_tokens},
                      {"gen_ai.response.finish_reasons", std::string(finish_reason_name(e.reason))},
                      {"kite.cached_prompt_tokens", m.num_cached_tokens},
                      {"kite.preemptions", m.num_preemptions},
                      {"gen_ai.latency.e2e", seconds(m.arrival_time, finished)}};
    if (is_set(m.first_token_time)) {
      req.attributes.push_back(
          {"gen_ai.latency.time_to_first_token", seconds(m.arrival_time, m.first_token_time)});
    }
    if (!e.error.ok()) {
      req.error = true;
      req.status_message = e.error.to_string();
    }
    spans.push_back(req);
    auto phase = [&](const char* name, Clock::time_point a, Clock::time_point b) {
      if (!is_set(a) || !is_set(b) || b < a) return;
      Span s;
      s.trace_id = r.trace_id_;
      s.span_id = telemetry::random_span_id();
      s.parent_span_id = req.span_id;
      s.name = name;
      s.start_unix_nano = unix_nano(a);
      s.end_unix_nano = unix_nano(b);
      spans.push_back(std::move(s));
    };
    phase("queue", m.arrival_time, m.first_scheduled_time);
    phase("prefill", m.first_scheduled_time, m.first_token_time);
    phase("decode", m.first_token_time, is_set(m.last_token_time) ? m.last_token_time : finished);
  }
  exporter_->add(std::move(spans));
}

}  // namespace kite::server
