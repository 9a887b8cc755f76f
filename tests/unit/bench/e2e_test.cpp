// `kite bench` against kite itself on the CPU with the shipped TinyStories-656K model:
// in-process throughput (and a sweep) through the Engine API, and the HTTP load generator
// against `kite serve`, whose usage counts must match what was asked for; and W6's startup
// measurement of `kite serve`.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "bench/result.h"
#include "bench/server_process.h"
#include "bench_test_util.h"

namespace kite::bench {
namespace {

namespace bj = boost::json;

std::string kite() { return std::string(KITE_BINARY_DIR) + "/bin/kite"; }
std::string model() { return testing::source_path("tests/data/models/tinystories-656k"); }

testing::CommandResult kite_bench(const std::string& args) {
  return testing::run_command("KITE_NO_PROGRESS=1 " + kite() + " bench " + args);
}

TEST(BenchE2e, ThroughputInProcessOnTinyStories) {
  testing::TempDir dir;
  testing::CommandResult r =
      kite_bench("throughput " + model() +
                 " --num-prompts 12 --random-input-len 24 --random-output-len 10 --ignore-eos"
                 " --max-num-seqs 4 --threads 2 --no-progress --output-json " +
                 (dir / "t.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<bj::object> res = read_result(dir / "t.json");
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(get_string(*res, "kind"), "throughput");
  EXPECT_EQ(get_string(*res, "engine.backend"), "cpu");
  EXPECT_EQ(*get_number(*res, "model.hidden_size"), 128.0);
  EXPECT_EQ(*get_number(*res, "model.vocab_size"), 2048.0);
  EXPECT_EQ(*get_number(*res, "metrics.completed"), 12.0);
  EXPECT_EQ(*get_number(*res, "metrics.failed"), 0.0);
  EXPECT_EQ(*get_number(*res, "metrics.total_input_tokens"), 12.0 * 24);
  EXPECT_EQ(*get_number(*res, "metrics.total_output_tokens"), 12.0 * 10);
  EXPECT_EQ(*get_number(*res, "token_check.output_mismatches"), 0.0);
  EXPECT_EQ(*get_number(*res, "token_check.prompt_mismatches"), 0.0);
  EXPECT_LE(*get_number(*res, "metrics.max_concurrency_observed"), 12.0);
  EXPECT_EQ(*get_number(*res, "metrics.tpot_ms.count"), 12.0);
  EXPECT_EQ(*get_number(*res, "config.max_num_seqs"), 4.0);
  EXPECT_EQ(res->at("samples").as_array().size(), 12u);

  // A max-num-seqs sweep over the same workload finds a best point.
  r = kite_bench("sweep throughput " + model() +
                 " --max-num-seqs 1,4 --num-prompts 6 --random-input-len 16"
                 " --random-output-len 6 --ignore-eos --threads 2 --no-progress"
                 " --subject-to 'tpot_mean<60s' --output-json " +
                 (dir / "s.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<bj::object> sw = read_result(dir / "s.json");
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(sw->at("sweep").at("points").as_array().size(), 2u);
  EXPECT_TRUE(get_number(*sw, "sweep.best_value").has_value());
}

TEST(BenchE2e, ShareGptLengthsFromTheModelsTokenizer) {
  testing::TempDir dir;
  testing::write_text(dir / "sg.json",
                      R"([{"conversations": [{"from": "human", "value": "Once upon a time there )"
                      R"(was a little girl named Lily."}, {"from": "gpt", "value": "She liked )"
                      R"(to play in the park with her big red ball every day."}]}])");
  testing::CommandResult r = kite_bench(
      "throughput " + model() + " --dataset-name sharegpt --dataset-path " + (dir / "sg.json") +
      " --num-prompts 1 --ignore-eos --threads 2 --no-progress --output-json " + (dir / "t.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<bj::object> res = read_result(dir / "t.json");
  ASSERT_TRUE(res.ok());
  // The output length is the reply's token count, and the engine produced exactly that many.
  const bj::object& s = res->at("samples").as_array()[0].as_object();
  EXPECT_GE(*get_number(s, "output_tokens"), 4.0);
  EXPECT_EQ(*get_number(*res, "token_check.output_mismatches"), 0.0);
  EXPECT_EQ(*get_number(*res, "token_check.prompt_mismatches"), 0.0);
}

class KiteServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<int> port = pick_free_port();
    ASSERT_TRUE(port.ok());
    port_ = *port;
    Result<std::unique_ptr<ServerProcess>> p = ServerProcess::spawn(
        {kite(), "serve", model(), "--host", "127.0.0.1", "--port", std::to_string(port_),
         "--served-model-name", "tiny", "--threads", "2"},
        dir_ / "server.log");
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    server_ = std::move(*p);
    Result<double> ready = server_->wait_healthy({"127.0.0.1", std::to_string(port_), ""},
                                                 "/health", std::chrono::seconds(120));
    ASSERT_TRUE(ready.ok()) << ready.status().to_string();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  testing::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(KiteServeTest, TokenCountsMatchTheServersUsage) {
  testing::CommandResult r =
      kite_bench("serve --base-url " + url() + " --model tiny --model-path " + model() +
                 " --num-prompts 20 --random-input-len 24 --random-output-len 12 --ignore-eos"
                 " --request-rate 50 --seed 1 --request-timeout 60 --no-progress --save-detailed"
                 " --output-json " +
                 (dir_ / "s.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output << server_->log_tail();
  Result<bj::object> res = read_result(dir_ / "s.json");
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(*get_number(*res, "metrics.completed"), 20.0)
      << bj::serialize(res->at("failures")) << server_->log_tail();
  EXPECT_EQ(*get_number(*res, "metrics.failed"), 0.0);
  EXPECT_EQ(*get_number(*res, "token_check.usage_missing"), 0.0);
  EXPECT_EQ(*get_number(*res, "token_check.prompt_mismatches"), 0.0);
  EXPECT_EQ(*get_number(*res, "token_check.output_mismatches"), 0.0);
  EXPECT_EQ(*get_number(*res, "metrics.total_input_tokens"), 20.0 * 24);
  EXPECT_EQ(*get_number(*res, "metrics.total_output_tokens"), 20.0 * 12);
  for (const bj::value& s : res->at("samples").as_array()) {
    EXPECT_EQ(*get_number(s.as_object(), "prompt_tokens"), 24.0);
    EXPECT_EQ(*get_number(s.as_object(), "output_tokens"), 12.0);
    EXPECT_GE(*get_number(s.as_object(), "chunks"), 1.0);
  }
  // With a concurrency cap instead of a rate.
  r = kite_bench("serve --base-url " + url() + " --model tiny --model-path " + model() +
                 " --num-prompts 8 --random-input-len 8 --random-output-len 5 --ignore-eos"
                 " --max-concurrency 2 --request-timeout 60 --no-progress --output-json " +
                 (dir_ / "c.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  res = read_result(dir_ / "c.json");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(*get_number(*res, "metrics.completed"), 8.0)
      << bj::serialize(res->at("failures")) << server_->log_tail();
  EXPECT_LE(*get_number(*res, "metrics.max_concurrency_observed"), 2.0);
  EXPECT_EQ(*get_number(*res, "token_check.output_mismatches"), 0.0);
}

TEST(BenchE2e, StartupOfKiteServe) {
  testing::TempDir dir;
  testing::CommandResult r =
      kite_bench("startup " + model() + " --timeout 120 --server-log " + (dir / "server.log") +
                 " --output-json " + (dir / "w6.json") + " -- --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output << testing::read_text(dir / "server.log");
  Result<bj::object> res = read_result(dir / "w6.json");
  ASSERT_TRUE(res.ok());
  EXPECT_GT(*get_number(*res, "startup.time_to_health_s"), 0.0);
  EXPECT_GE(*get_number(*res, "startup.time_to_first_token_s"),
            *get_number(*res, "startup.time_to_health_s"));
  EXPECT_GT(*get_number(*res, "startup.binary_size_bytes"), 1e5);
  EXPECT_GT(*get_number(*res, "startup.peak_rss_bytes"), 1e6);
}

// A repeatable option right before "--" (as scripts/gpu-bench.sh writes W6) must neither eat
// nor reject the kite serve flags after it.
TEST(BenchE2e, StartupWithANoteBeforeTheServeFlags) {
  testing::TempDir dir;
  testing::CommandResult r = kite_bench(
      "startup " + model() + " --timeout 120 --server-log " + (dir / "server.log") +
      " --output-json " + (dir / "w6.json") +
      " --note first --note 'weights: shipped' -- --threads 2 --max-model-len 256");
  ASSERT_EQ(r.exit_code, 0) << r.output << testing::read_text(dir / "server.log");
  Result<bj::object> res = read_result(dir / "w6.json");
  ASSERT_TRUE(res.ok());
  const std::string json = bj::serialize(*res);
  EXPECT_NE(json.find("weights: shipped"), std::string::npos) << json;
  EXPECT_NE(json.find("first"), std::string::npos) << json;
  EXPECT_NE(testing::read_text(dir / "server.log").find("max_model_len 256"), std::string::npos)
      << testing::read_text(dir / "server.log");
}

}  // namespace
}  // namespace kite::bench
