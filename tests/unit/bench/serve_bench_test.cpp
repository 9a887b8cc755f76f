// The load generator against a scripted streaming server (fake_openai_server.h). No timing is
// asserted beyond causal bounds (a request is not sent before its arrival time; the first token
// cannot arrive before the server's 20 ms "prefill").
#include "bench/serve_bench.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "bench/metrics.h"
#include "fake_openai_server.h"

namespace kite::bench {
namespace {

std::vector<PromptSpec> token_prompts(int n, int64_t out_len) {
  std::vector<PromptSpec> v;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> ids(static_cast<size_t>(5 + i % 3), 42);
    v.push_back({ids, static_cast<int64_t>(ids.size()), out_len});
  }
  return v;
}

ServeOptions options(const testing::FakeOpenAiServer& server) {
  ServeOptions o;
  o.base_url = server.base_url();
  o.request.model = "fake";
  o.request.ignore_eos = true;
  o.progress = false;
  o.request_timeout_s = 30;
  return o;
}

TEST(ServeBench, StreamsEveryRequestAndMatchesUsage) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.max_concurrency = 4;
  o.api_key = "secret";
  std::vector<PromptSpec> prompts = token_prompts(24, 6);
  Result<ServeRun> run = run_serve_benchmark(o, prompts);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  ASSERT_EQ(run->samples.size(), 24u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const RequestSample& s = run->samples[i];
    ASSERT_TRUE(s.success) << i << ": " << s.error;
    EXPECT_TRUE(s.usage_reported);
    EXPECT_EQ(s.prompt_tokens, prompts[i].prompt_len);
    EXPECT_EQ(s.output_tokens, 6);
    EXPECT_EQ(s.num_chunks, 6);
    EXPECT_EQ(s.itl_s.size(), 5u);
    EXPECT_GE(s.ttft_s, 0.020);  // the server waits 20 ms before its first chunk
    EXPECT_GE(s.e2e_s, s.ttft_s);
  }
  BenchmarkMetrics m = compute_metrics(run->samples, run->duration_s, Slo{}, {50, 99});
  EXPECT_EQ(m.completed, 24);
  EXPECT_EQ(m.prompt_token_mismatches, 0);
  EXPECT_EQ(m.output_token_mismatches, 0);
  EXPECT_EQ(m.total_output_tokens, 24 * 6);
  EXPECT_LE(m.max_concurrency_observed, 4);
  // Keep-alive: never more connections than requests in flight at once.
  EXPECT_LE(run->connections_opened, 4);
  EXPECT_LE(server.connections(), 4);
  // 24 measured requests + the initial test request; each carried the key and the options.
  std::vector<std::string> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 25u);
  for (const std::string& a : server.auth_headers()) EXPECT_EQ(a, "Bearer secret");
  boost::json::object b = boost::json::parse(bodies[1]).as_object();
  EXPECT_EQ(b.at("ignore_eos"), true);
  EXPECT_EQ(b.at("stream"), true);
  EXPECT_EQ(b.at("max_tokens"), 6);
  EXPECT_EQ(b.at("model"), "fake");
}

TEST(ServeBench, OmitsIgnoreEosUnlessAskedAndCountsChunksNotTokens) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.request.ignore_eos = false;
  o.initial_test = false;
  std::vector<PromptSpec> prompts = {{std::string("multi_token"), -1, 8}};
  Result<ServeRun> run = run_serve_benchmark(o, prompts);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  const RequestSample& s = run->samples[0];
  ASSERT_TRUE(s.success) << s.error;
  EXPECT_EQ(s.output_tokens, 8);  // from usage
  EXPECT_EQ(s.num_chunks, 4);     // two tokens per chunk
  EXPECT_EQ(s.itl_s.size(), 3u);
  EXPECT_EQ(s.expected_output_tokens, -1);  // EOS not ignored: no length to check
  EXPECT_EQ(server.bodies()[0].find("ignore_eos"), std::string::npos);
}

TEST(ServeBench, ClassifiesFailures) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.request_timeout_s = 1.0;
  std::vector<std::string> scenarios = {"ok",   "503",       "stream_error", "no_done",
                                        "slow", "close",     "bad_usage",    "malformed",
                                        "crlf", "empty_text"};
  std::vector<PromptSpec> prompts;
  for (const std::string& s : scenarios) prompts.push_back({s, -1, 4});
  Result<ServeRun> run = run_serve_benchmark(o, prompts);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  auto sample = [&](const std::string& name) {
    return run->samples[static_cast<size_t>(std::find(scenarios.begin(), scenarios.end(), name) -
                                            scenarios.begin())];
  };
  EXPECT_TRUE(sample("ok").success);
  EXPECT_EQ(sample("503").failure, FailureKind::kHttpStatus);
  EXPECT_EQ(sample("503").http_status, 503);
  EXPECT_NE(sample("503").error.find("server overloaded"), std::string::npos);
  EXPECT_EQ(sample("stream_error").failure, FailureKind::kStreamError);
  EXPECT_EQ(sample("stream_error").error, "engine died");
  EXPECT_EQ(sample("no_done").failure, FailureKind::kProtocol);
  EXPECT_EQ(sample("slow").failure, FailureKind::kTimeout);
  EXPECT_EQ(sample("close").failure, FailureKind::kConnect);
  EXPECT_TRUE(sample("bad_usage").success);
  EXPECT_EQ(sample("bad_usage").output_tokens, 3);
  EXPECT_EQ(sample("malformed").failure, FailureKind::kProtocol);
  EXPECT_TRUE(sample("crlf").success) << sample("crlf").error;
  EXPECT_EQ(sample("crlf").num_chunks, 4);
  // Usage says 4 tokens, yet no chunk carried any: no TTFT to measure, so not a success.
  EXPECT_EQ(sample("empty_text").failure, FailureKind::kProtocol);
  EXPECT_NE(sample("empty_text").error.find("no chunk carried output"), std::string::npos);

  BenchmarkMetrics m = compute_metrics(run->samples, run->duration_s, Slo{}, {99});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 7);
  EXPECT_EQ(m.failures.at("http_503"), 1);
  EXPECT_EQ(m.failures.at("timeout"), 1);
  EXPECT_EQ(m.failures.at("connect"), 1);
  EXPECT_EQ(m.failures.at("protocol"), 3);
  EXPECT_EQ(m.failures.at("stream_error"), 1);
  // Text prompts have no known length; the output count must equal max_tokens (EOS ignored).
  EXPECT_EQ(m.output_token_mismatches, 1);
  EXPECT_EQ(m.prompt_token_mismatches, 0);
}

TEST(ServeBench, ArrivalsAreRespectedAndConcurrencyIsCapped) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.arrivals = {.request_rate = 100.0, .burstiness = 1.0, .seed = 3};
  o.max_concurrency = 2;
  std::vector<PromptSpec> prompts = token_prompts(12, 3);
  Result<ServeRun> run = run_serve_benchmark(o, prompts);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  std::vector<double> arrivals = arrival_times(12, o.arrivals);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(run->samples[i].success);
    EXPECT_GE(run->samples[i].start_s, arrivals[i]);  // never sent before its arrival time
  }
  BenchmarkMetrics m = compute_metrics(run->samples, run->duration_s, Slo{}, {99});
  EXPECT_LE(m.max_concurrency_observed, 2);
}

TEST(ServeBench, ChatEndpoint) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.endpoint = "/v1/chat/completions";
  o.request.api = ApiKind::kChatCompletions;
  Result<ServeRun> run = run_serve_benchmark(o, {{std::string("ok"), -1, 5}});
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  // The role-only first delta carries no content: 5 content chunks, not 6.
  EXPECT_EQ(run->samples[0].num_chunks, 5);
  EXPECT_EQ(run->samples[0].output_tokens, 5);
  // Token-id prompts cannot go to the chat endpoint.
  EXPECT_FALSE(run_serve_benchmark(o, token_prompts(1, 4)).ok());
}

TEST(ServeBench, RunLevelErrors) {
  testing::FakeOpenAiServer server;
  ServeOptions o = options(server);
  o.endpoint = "/v1/nope";
  Result<ServeRun> run = run_serve_benchmark(o, token_prompts(2, 2));
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("initial test request"), std::string::npos);
  EXPECT_NE(run.status().message().find("404"), std::string::npos);

  // Nothing listens on the port: the initial request fails to connect; without it, every
  // request is a connect failure.
  int dead_port;
  {
    testing::FakeOpenAiServer gone;
    dead_port = gone.port();
  }
  o = options(server);
  o.base_url = fmt::format("http://127.0.0.1:{}", dead_port);
  EXPECT_FALSE(run_serve_benchmark(o, token_prompts(2, 2)).ok());
  o.initial_test = false;
  run = run_serve_benchmark(o, token_prompts(3, 2));
  ASSERT_TRUE(run.ok());
  for (const RequestSample& s : run->samples) EXPECT_EQ(s.failure, FailureKind::kConnect);

  o.base_url = "https://example.com";
  EXPECT_EQ(run_serve_benchmark(o, token_prompts(1, 1)).status().code(),
            StatusCode::kUnimplemented);
  o = options(server);
  o.arrivals.request_rate = 0;
  EXPECT_FALSE(run_serve_benchmark(o, token_prompts(1, 1)).ok());
  o = options(server);
  EXPECT_FALSE(run_serve_benchmark(o, {}).ok());
}

}  // namespace
}  // namespace kite::bench
