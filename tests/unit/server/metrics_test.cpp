#include "server/metrics.h"

#include <gtest/gtest.h>

namespace kite::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(ServerMetricsTest, HttpCountersByStatus) {
  ServerMetrics m;
  m.observe_http("/v1/completions", 200);
  m.observe_http("/v1/completions", 200);
  m.observe_http("/v1/completions", 400);
  std::string text = m.render(nullptr, nullptr);
  EXPECT_TRUE(
      has_line(text, "kite:http_requests_total{code=\"200\",handler=\"/v1/completions\"} 2"))
      << text;
  EXPECT_TRUE(
      has_line(text, "kite:http_requests_total{code=\"400\",handler=\"/v1/completions\"} 1"));
  EXPECT_TRUE(has_line(text, "kite:model_loaded 0"));
  EXPECT_EQ(text.find("kite:num_requests_running"), std::string::npos);
}

TEST(ServerMetricsTest, EngineStats) {
  ServerMetrics m;
  EngineStats s;
  s.num_running = 3;
  s.num_waiting = 2;
  s.kv_cache_usage = 0.25;
  s.num_kv_blocks_used = 10;
  s.prefix_cache_queries = 100;
  s.prefix_cache_hits = 40;
  s.prompt_tokens_total = 1234;
  s.generation_tokens_total = 567;
  s.num_preemptions = 1;
  ModelInfo info;
  info.num_kv_blocks = 40;
  std::string text = m.render(&s, &info);
  EXPECT_TRUE(has_line(text, "kite:model_loaded 1"));
  EXPECT_TRUE(has_line(text, "kite:num_requests_running 3")) << text;
  EXPECT_TRUE(has_line(text, "kite:num_requests_waiting 2"));
  EXPECT_TRUE(has_line(text, "kite:kv_cache_usage_perc 0.25"));
  EXPECT_TRUE(has_line(text, "kite:kv_cache_blocks_used 10"));
  EXPECT_TRUE(has_line(text, "kite:kv_cache_blocks_total 40"));
  EXPECT_TRUE(has_line(text, "kite:prefix_cache_hit_rate 0.4"));
  EXPECT_TRUE(has_line(text, "kite:prompt_tokens_total 1234"));
  EXPECT_TRUE(has_line(text, "kite:generation_tokens_total 567"));
  EXPECT_TRUE(has_line(text, "kite:num_preemptions_total 1"));
  EXPECT_NE(text.find("# TYPE kite:prompt_tokens_total counter"), std::string::npos);
}

TEST(ServerMetricsTest, LatencyHistograms) {
  ServerMetrics m;
  RequestMetrics r;
  r.arrival_time = Clock::time_point(std::chrono::seconds(100));
  r.first_scheduled_time = r.arrival_time + std::chrono::milliseconds(10);
  r.first_token_time = r.arrival_time + std::chrono::milliseconds(50);
  r.last_token_time = r.first_token_time + std::chrono::milliseconds(90);
  r.finished_time = r.last_token_time;
  r.num_prompt_tokens = 7;
  r.num_generation_tokens = 10;
  m.observe_finished(r, FinishReason::kLength, 1);
  m.observe_aborted_by_client();
  std::string text = m.render(nullptr, nullptr);
  EXPECT_TRUE(has_line(text, "kite:time_to_first_token_seconds_count 1")) << text;
  EXPECT_TRUE(has_line(text, "kite:time_to_first_token_seconds_sum 0.05"));
  EXPECT_TRUE(has_line(text, "kite:time_per_output_token_seconds_sum 0.01"));
  EXPECT_TRUE(has_line(text, "kite:request_queue_time_seconds_sum 0.01"));
  EXPECT_TRUE(has_line(text, "kite:e2e_request_latency_seconds_sum 0.14"));
  EXPECT_TRUE(has_line(text, "kite:request_prompt_tokens_sum 7"));
  EXPECT_TRUE(has_line(text, "kite:request_success_total{finished_reason=\"length\"} 1"));
  EXPECT_TRUE(has_line(text, "kite:request_success_total{finished_reason=\"abort\"} 1"));
}

TEST(ServerMetricsTest, GaugesGoUpAndDown) {
  ServerMetrics m;
  m.add_in_flight(1);
  m.add_in_flight(1);
  m.add_in_flight(-1);
  m.add_connections(1);
  std::string text = m.render(nullptr, nullptr);
  EXPECT_TRUE(has_line(text, "kite:api_requests_in_flight 1")) << text;
  EXPECT_TRUE(has_line(text, "kite:http_connections_open 1"));
}

}  // namespace
}  // namespace kite::server
