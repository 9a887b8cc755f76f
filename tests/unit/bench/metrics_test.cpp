#include "bench/metrics.h"

#include <gtest/gtest.h>

namespace kite::bench {
namespace {

// Times are binary fractions, so every expected value below is exact.
RequestSample stream(double start, std::vector<double> chunks, double end, int64_t prompt,
                     int64_t output) {
  StreamRecorder rec(start);
  for (double t : chunks) rec.on_token_chunk(t);
  rec.on_usage(prompt, output);
  rec.set_expected(prompt, output);
  return rec.succeed(end);
}

TEST(StreamRecorder, TtftItlE2eFromChunkArrivals) {
  RequestSample s = stream(1.0, {1.125, 1.25, 1.3125, 1.5}, 1.5, 10, 4);
  EXPECT_TRUE(s.success);
  EXPECT_EQ(s.start_s, 1.0);
  EXPECT_EQ(s.ttft_s, 0.125);
  EXPECT_EQ(s.e2e_s, 0.5);
  EXPECT_EQ(s.itl_s, (std::vector<double>{0.125, 0.0625, 0.1875}));
  EXPECT_EQ(s.num_chunks, 4);
  EXPECT_EQ(s.tpot_s(), (0.5 - 0.125) / 3);
}

TEST(StreamRecorder, NoUsageFallsBackToChunkCount) {
  StreamRecorder rec(0.0);
  rec.on_token_chunk(0.25);
  rec.on_token_chunk(0.5);
  RequestSample s = rec.succeed(0.75);
  EXPECT_FALSE(s.usage_reported);
  EXPECT_EQ(s.output_tokens, 2);
}

TEST(StreamRecorder, FailureKeepsReasonAndTime) {
  StreamRecorder rec(2.0);
  RequestSample s = rec.fail(2.5, FailureKind::kHttpStatus, "HTTP 503: overloaded", 503);
  EXPECT_FALSE(s.success);
  EXPECT_EQ(s.e2e_s, 0.5);
  EXPECT_EQ(failure_key(s), "http_503");
}

class ComputeMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A: ttft 125 ms, 4 tokens in 4 chunks, e2e 500 ms.
    samples_.push_back(stream(0.0, {0.125, 0.25, 0.3125, 0.5}, 0.5, 10, 4));
    // B: ttft 250 ms, 3 tokens in 2 chunks (one chunk carried two tokens), e2e 750 ms.
    samples_.push_back(stream(0.25, {0.5, 1.0}, 1.0, 20, 3));
    // C: ttft 500 ms, one token: no TPOT; the server counted 6 prompt tokens, 5 were sent.
    RequestSample c = stream(0.5, {1.0}, 1.0, 6, 1);
    c.expected_prompt_tokens = 5;
    samples_.push_back(c);
    // Failures: an HTTP 503 and a timeout.
    samples_.push_back(StreamRecorder(0.5).fail(0.5, FailureKind::kHttpStatus, "HTTP 503", 503));
    samples_.push_back(StreamRecorder(0.75).fail(2.0, FailureKind::kTimeout, "no answer"));
  }
  std::vector<RequestSample> samples_;
};

TEST_F(ComputeMetricsTest, CountsThroughputAndDistributions) {
  BenchmarkMetrics m = compute_metrics(samples_, 2.0, Slo{}, {50, 90, 99});
  EXPECT_EQ(m.num_requests, 5);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.total_input_tokens, 36);
  EXPECT_EQ(m.total_output_tokens, 8);
  EXPECT_EQ(m.request_throughput, 1.5);
  EXPECT_EQ(m.input_throughput, 18.0);
  EXPECT_EQ(m.output_throughput, 4.0);
  EXPECT_EQ(m.total_token_throughput, 22.0);

  EXPECT_EQ(m.ttft_ms.count, 3u);
  EXPECT_DOUBLE_EQ(m.ttft_ms.mean, (125.0 + 250.0 + 500.0) / 3);
  EXPECT_EQ(m.ttft_ms.median, 250.0);
  EXPECT_EQ(m.ttft_ms.min, 125.0);
  EXPECT_EQ(m.ttft_ms.max, 500.0);
  // p90 of {125, 250, 500}: h = 1.8 -> 500 - 0.2 * 250 = 450.
  EXPECT_DOUBLE_EQ(*m.ttft_ms.find_percentile(90), 450.0);

  // TPOT: A (500 - 125) / 3 = 125 ms, B (750 - 250) / 2 = 250 ms; C has one token.
  EXPECT_EQ(m.tpot_ms.count, 2u);
  EXPECT_EQ(m.tpot_ms.mean, 187.5);
  EXPECT_EQ(m.tpot_ms.median, 187.5);

  // ITL: A's three gaps and B's one.
  EXPECT_EQ(m.itl_ms.count, 4u);
  EXPECT_EQ(m.itl_ms.min, 62.5);
  EXPECT_EQ(m.itl_ms.max, 500.0);
  EXPECT_EQ(m.itl_ms.median, (125.0 + 187.5) / 2);

  EXPECT_EQ(m.e2e_ms.count, 3u);
  EXPECT_EQ(m.e2e_ms.median, 500.0);

  EXPECT_EQ(m.failures.size(), 2u);
  EXPECT_EQ(m.failures.at("http_503"), 1);
  EXPECT_EQ(m.failures.at("timeout"), 1);
  EXPECT_EQ(m.failure_examples.size(), 2u);

  EXPECT_EQ(m.prompt_token_mismatches, 1);
  EXPECT_EQ(m.output_token_mismatches, 0);
  EXPECT_EQ(m.usage_missing, 0);
  EXPECT_FALSE(m.goodput.has_value());
  // In flight at once: at t = 0.5 A ends as C and the 503 begin; B (0.25..1.0), C (0.5..1.0),
  // the 503 (0.5..0.5) and the timeout (0.75..2.0) -> B, C and the timeout overlap at 0.75.
  EXPECT_EQ(m.max_concurrency_observed, 3);
}

TEST_F(ComputeMetricsTest, GoodputCountsRequestsMeetingEveryBound) {
  Slo slo;
  slo.ttft_ms = 250;  // A and B (<=), not C
  BenchmarkMetrics m = compute_metrics(samples_, 2.0, slo, {99});
  EXPECT_EQ(m.good_requests, 2);
  ASSERT_TRUE(m.goodput.has_value());
  EXPECT_EQ(*m.goodput, 1.0);

  slo.tpot_ms = 200;  // B's TPOT is 250 ms
  m = compute_metrics(samples_, 2.0, slo, {99});
  EXPECT_EQ(m.good_requests, 1);
  slo = Slo{};
  slo.e2e_ms = 600;  // A and C (500 ms), not B (750 ms)
  m = compute_metrics(samples_, 2.0, slo, {99});
  EXPECT_EQ(m.good_requests, 2);
}

TEST(Slo, Parses) {
  Result<Slo> slo = parse_slo("ttft=500ms, tpot=0.05s,e2e=10");
  ASSERT_TRUE(slo.ok()) << slo.status().to_string();
  EXPECT_EQ(*slo->ttft_ms, 500.0);
  EXPECT_EQ(*slo->tpot_ms, 50.0);
  EXPECT_EQ(*slo->e2e_ms, 10.0);  // bare numbers are ms
  EXPECT_EQ(*parse_slo("ttft:1s")->ttft_ms, 1000.0);
}

TEST(Slo, RejectsBadInput) {
  EXPECT_FALSE(parse_slo("").ok());
  EXPECT_FALSE(parse_slo("ttft").ok());
  EXPECT_FALSE(parse_slo("latency=5ms").ok());
  EXPECT_FALSE(parse_slo("ttft=fast").ok());
  EXPECT_FALSE(parse_slo("ttft=-5ms").ok());
  EXPECT_FALSE(parse_slo("ttft=5hours").ok());
  EXPECT_NE(parse_slo("latency=5ms").status().message().find("latency"), std::string::npos);
}

TEST(Duration, Units) {
  EXPECT_EQ(*parse_duration_ms("20ms"), 20.0);
  EXPECT_EQ(*parse_duration_ms("1s"), 1000.0);
  EXPECT_EQ(*parse_duration_ms("250us"), 0.25);
  EXPECT_EQ(*parse_duration_ms("2m"), 120000.0);
  EXPECT_EQ(*parse_duration_ms(" 1.5 s "), 1500.0);
  EXPECT_EQ(*parse_duration_ms("3", 1000.0), 3000.0);
  EXPECT_FALSE(parse_duration_ms("ms").ok());
  EXPECT_FALSE(parse_duration_ms("1e400s").ok());
}

}  // namespace
}  // namespace kite::bench
