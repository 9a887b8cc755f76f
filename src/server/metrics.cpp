#include "server/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <vector>

namespace kite::server {

namespace pm = prometheus;

namespace {

using Buckets = pm::Histogram::BucketBoundaries;

// Bucket boundaries as vLLM's, so dashboards built for it read ours alike.
const Buckets kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,  0.75,
                              1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160., 640., 2560.};
const Buckets kTpotBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                              0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const Buckets kLatencyBuckets = {0.3,  0.5,  0.8,   1.0,   1.5,   2.0,   2.5,
                                 5.0,  10.0, 15.0,  20.0,  30.0,  40.0,  50.0,
                                 60.0, 120., 240.0, 480.0, 960.0, 1920., 7680.};
const Buckets kTokenBuckets = {1,   2,    5,    10,   20,    50,    100,   200,
                               500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};

pm::Histogram& histogram(pm::Registry& reg, const std::string& name, const std::string& help,
                         const Buckets& buckets) {
  return pm::BuildHistogram().Name(name).Help(help).Register(reg).Add({}, buckets);
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

pm::MetricFamily gauge_family(const std::string& name, const std::string& help, double value) {
  pm::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = pm::MetricType::Gauge;
  pm::ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

pm::MetricFamily counter_family(const std::string& name, const std::string& help, double value) {
  pm::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = pm::MetricType::Counter;
  pm::ClientMetric m;
  m.counter.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

ServerMetrics::ServerMetrics(int64_t prefix_cache_group)
    : registry_(std::make_shared<pm::Registry>()),
      http_requests_(pm::BuildCounter()
                         .Name("kite:http_requests_total")
                         .Help("HTTP responses by route and status code")
                         .Register(*registry_)),
      request_success_(pm::BuildCounter()
                           .Name("kite:request_success_total")
                           .Help("Engine requests the server saw end, by finish reason")
                           .Register(*registry_)),
      in_flight_(pm::BuildGauge()
                     .Name("kite:api_requests_in_flight")
                     .Help("Generation requests the HTTP server is serving now")
                     .Register(*registry_)
                     .Add({})),
      connections_(pm::BuildGauge()
                       .Name("kite:http_connections_open")
                       .Help("Open HTTP connections")
                       .Register(*registry_)
                       .Add({})),
      ttft_(histogram(*registry_, "kite:time_to_first_token_seconds",
                      "Time from arrival to the first generated token", kTtftBuckets)),
      tpot_(histogram(*registry_, "kite:time_per_output_token_seconds",
                      "Mean time between generated tokens of a request (per choice)",
                      kTpotBuckets)),
      e2e_(histogram(*registry_, "kite:e2e_request_latency_seconds",
                     "Time from arrival to the last output", kLatencyBuckets)),
      queue_time_(histogram(*registry_, "kite:request_queue_time_seconds",
                            "Time from arrival to first being scheduled", kLatencyBuckets)),
      prompt_tokens_(histogram(*registry_, "kite:request_prompt_tokens",
                               "Prompt tokens per request", kTokenBuckets)),
      generation_tokens_(histogram(*registry_, "kite:request_generation_tokens",
                                   "Generated tokens per request (all choices)", kTokenBuckets)),
      prefix_cache_group_(prefix_cache_group) {}

void ServerMetrics::observe_http(std::string_view handler, int status) {
  http_requests_.Add({{"handler", std::string(handler)}, {"code", std::to_string(status)}})
      .Increment();
}

void ServerMetrics::observe_finished(const RequestMetrics& m, FinishReason reason,
                                     int num_choices) {
  const char* name = "error";
  switch (reason) {
    case FinishReason::kStop:
      name = "stop";
      break;
    case FinishReason::kLength:
      name = "length";
      break;
    case FinishReason::kAbort:
      name = "abort";
      break;
    case FinishReason::kError:
    case FinishReason::kNone:
      name = "error";
      break;
  }
  request_success_.Add({{"finished_reason", name}}).Increment();
  const Clock::time_point zero{};
  if (m.arrival_time == zero) return;
  if (m.first_token_time != zero) ttft_.Observe(seconds(m.first_token_time - m.arrival_time));
  if (m.first_scheduled_time != zero) {
    queue_time_.Observe(seconds(m.first_scheduled_time - m.arrival_time));
  }
  if (m.finished_time != zero) e2e_.Observe(seconds(m.finished_time - m.arrival_time));
  int64_t per_choice = m.num_generation_tokens / std::max(1, num_choices);
  if (per_choice > 1 && m.first_token_time != zero && m.last_token_time > m.first_token_time) {
    tpot_.Observe(seconds(m.last_token_time - m.first_token_time) /
                  static_cast<double>(per_choice - 1));
  }
  prompt_tokens_.Observe(static_cast<double>(m.num_prompt_tokens));
  generation_tokens_.Observe(static_cast<double>(m.num_generation_tokens));
}

void ServerMetrics::observe_aborted_by_client() {
  request_success_.Add({{"finished_reason", "abort"}}).Increment();
}

void ServerMetrics::add_in_flight(int delta) { in_flight_.Increment(delta); }

void ServerMetrics::add_connections(int delta) { connections_.Increment(delta); }

std::string ServerMetrics::render(const EngineStats* stats, const ModelInfo* info) const {
  std::vector<pm::MetricFamily> families = registry_->Collect();
  families.push_back(gauge_family("kite:model_loaded", "1 when the model is loaded and serving",
                                  stats ? 1.0 : 0.0));
  if (stats) {
    const EngineStats& s = *stats;
    families.push_back(gauge_family("kite:num_requests_running", "Requests in the running batch",
                                    double(s.num_running)));
    families.push_back(gauge_family("kite:num_requests_waiting", "Requests waiting to be scheduled",
                                    double(s.num_waiting)));
    families.push_back(gauge_family("kite:kv_cache_usage_perc",
                                    "Fraction of KV-cache blocks in use (0 to 1)",
                                    s.kv_cache_usage));
    families.push_back(gauge_family("kite:kv_cache_blocks_used", "KV-cache blocks in use",
                                    double(s.num_kv_blocks_used)));
    if (info) {
      families.push_back(gauge_family("kite:kv_cache_blocks_total", "KV-cache blocks in the pool",
                                      double(info->num_kv_blocks)));
    }
    int64_t queries = s.prefix_cache_queries;
    int64_t hits = s.prefix_cache_hits;
    if (prefix_cache_group_ > 0) {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      const int64_t ended = s.requests_finished_total + s.requests_aborted_total;
      if (ended - published_.requests_ended >= prefix_cache_group_) {
        published_ = {queries, hits, ended};
      }
      queries = published_.queries;
      hits = published_.hits;
    }
    families.push_back(counter_family("kite:prefix_cache_queries_total",
                                      "Prompt tokens looked up in the prefix cache",
                                      double(queries)));
    families.push_back(counter_family("kite:prefix_cache_hits_total",
                                      "Prompt tokens served from the prefix cache",
                                      double(hits)));
    double hit_rate = queries > 0 ? double(hits) / double(queries) : 0.0;
    families.push_back(gauge_family("kite:prefix_cache_hit_rate",
                                    "Prefix-cache hits over queries since start (0 to 1)",
                                    hit_rate));
    families.push_back(counter_family("kite:num_preemptions_total", "Requests preempted",
                                      double(s.num_preemptions)));
    families.push_back(counter_family("kite:prompt_tokens_total", "Prompt tokens processed",
                                      double(s.prompt_tokens_total)));
    families.push_back(counter_family("kite:generation_tokens_total", "Tokens generated",
                                      double(s.generation_tokens_total)));
    families.push_back(
        counter_family("kite:engine_steps_total", "Engine steps run", double(s.num_steps)));
    families.push_back(counter_family("kite:engine_requests_finished_total",
                                      "Requests the engine finished",
                                      double(s.requests_finished_total)));
    families.push_back(counter_family("kite:engine_requests_aborted_total",
                                      "Requests the engine aborted",
                                      double(s.requests_aborted_total)));
    // Structured outputs (grammars compiled once per distinct constraint; token bitmasks
    // computed on CPU threads while the forward runs).
    families.push_back(counter_family("kite:grammar_compiles_total",
                                      "Structured-output grammars compiled",
                                      double(s.grammar_compiles_total)));
    families.push_back(counter_family("kite:grammar_cache_hits_total",
                                      "Structured-output requests served by a cached grammar",
                                      double(s.grammar_cache_hits_total)));
    families.push_back(counter_family("kite:grammar_compile_seconds_total",
                                      "Time spent compiling grammars",
                                      s.grammar_compile_ms_total / 1e3));
    families.push_back(counter_family("kite:grammar_mask_steps_total",
                                      "Engine steps with constrained rows",
                                      double(s.grammar_mask_steps_total)));
    families.push_back(counter_family("kite:grammar_masks_total", "Token bitmasks computed",
                                      double(s.grammar_masks_total)));
    families.push_back(counter_family("kite:grammar_mask_seconds_total",
                                      "Wall time of the steps' bitmask batches",
                                      s.grammar_mask_fill_ms_total / 1e3));
    families.push_back(counter_family("kite:grammar_mask_wait_seconds_total",
                                      "Time sampling waited for bitmasks after the forward",
                                      s.grammar_mask_wait_ms_total / 1e3));
  }
  return pm::TextSerializer().Serialize(families);
}

}  // namespace kite::server
