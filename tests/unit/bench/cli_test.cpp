// The `kite bench` command line: flag errors, a serve run against a scripted server (the result
// file and its numbers), a sweep over it, and `kite bench plot` on the results.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "bench/result.h"
#include "bench/sweep.h"
#include "bench_test_util.h"
#include "fake_openai_server.h"

namespace kite::bench {
namespace {

namespace bj = boost::json;

std::string kite() { return std::string(KITE_BINARY_DIR) + "/bin/kite"; }

testing::CommandResult kite_bench(const std::string& args) {
  return testing::run_command("KITE_NO_PROGRESS=1 " + kite() + " bench " + args);
}

TEST(BenchCli, UsageErrorsNameTheProblem) {
  testing::CommandResult r = kite_bench("serve --random-vocab-size 100 --no-progress");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--model"), std::string::npos) << r.output;

  r = kite_bench("serve --model m --base-url https://example.com --random-vocab-size 10");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("https"), std::string::npos) << r.output;

  r = kite_bench("serve --model m --request-rate fast");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--request-rate"), std::string::npos) << r.output;

  r = kite_bench("serve --model m --slo latency=3ms");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("latency"), std::string::npos) << r.output;

  r = kite_bench("sweep serve --model m --request-rate 1,2 --subject-to 'tpot_mean<<5'");
  EXPECT_NE(r.exit_code, 0);
  r = kite_bench("sweep serve --model m --request-rate 0,1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("grid"), std::string::npos) << r.output;

  r = kite_bench("throughput some/model --workload W2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("kite bench sweep"), std::string::npos) << r.output;

  r = kite_bench("plot /nonexistent/result.json --out /dev/null");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("/nonexistent/result.json"), std::string::npos) << r.output;

  r = kite_bench("serve --model m --workload W9");
  EXPECT_NE(r.exit_code, 0);  // rejected by the flag parser
}

TEST(BenchCli, ServeSweepAndPlotAgainstAScriptedServer) {
  if (!testing::python_available()) GTEST_SKIP() << "no Python venv at " KITE_PYTHON_EXECUTABLE;
  testing::FakeOpenAiServer server;
  testing::TempDir dir;
  const std::string common = "--base-url " + server.base_url() +
                             " --model fake --random-vocab-size 500 --random-input-len 16"
                             " --random-output-len 5 --ignore-eos --no-progress --result-dir " +
                             dir.path();
  testing::CommandResult r = kite_bench("serve " + common +
                                        " --num-prompts 12 --request-rate 200 --seed 4"
                                        " --max-concurrency 3 --label fake --slo ttft=10s"
                                        " --engine-name scripted --save-detailed");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Successful requests:                     12"), std::string::npos)
      << r.output;
  Result<bj::object> res = read_result(dir / "fake-serve.json");
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(get_string(*res, "kind"), "serve");
  EXPECT_EQ(get_string(*res, "engine.name"), "scripted");
  EXPECT_EQ(*get_number(*res, "metrics.completed"), 12.0);
  EXPECT_EQ(*get_number(*res, "metrics.total_input_tokens"), 12.0 * 16);
  EXPECT_EQ(*get_number(*res, "metrics.total_output_tokens"), 12.0 * 5);
  EXPECT_EQ(*get_number(*res, "metrics.goodput"), *get_number(*res, "metrics.request_throughput"));
  EXPECT_LE(*get_number(*res, "metrics.max_concurrency_observed"), 3.0);
  EXPECT_EQ(*get_number(*res, "token_check.output_mismatches"), 0.0);
  EXPECT_EQ(*get_number(*res, "workload.request_rate"), 200.0);
  EXPECT_EQ(*get_number(*res, "workload.input_len"), 16.0);
  const bj::array& samples = res->at("samples").as_array();
  ASSERT_EQ(samples.size(), 12u);
  EXPECT_EQ(samples[0].at("itl_ms").as_array().size(), 4u);  // --save-detailed

  r = kite_bench("sweep serve " + common +
                 " --num-prompts 6 --request-rate 50,100,inf --label fake"
                 " --maximize request_throughput --subject-to 'ttft_mean<60s'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Result<bj::object> sw = read_result(dir / "fake-sweep-request_rate.json");
  ASSERT_TRUE(sw.ok()) << sw.status().to_string();
  const bj::array& points = sw->at("sweep").at("points").as_array();
  ASSERT_EQ(points.size(), 3u);
  for (const bj::value& p : points) {
    EXPECT_TRUE(p.at("feasible").as_bool());
    EXPECT_EQ(*get_number(p.as_object(), "metrics.completed"), 6.0);
  }
  ASSERT_TRUE(get_number(*sw, "sweep.best_value").has_value());
  EXPECT_EQ(*lookup_metric(sw->at("metrics").as_object(), "completed"), 6.0);

  // An unreachable constraint: no best point, and the reason names it.
  r = kite_bench("sweep serve " + common +
                 " --num-prompts 4 --request-rate 50,100 --label never --output-json " +
                 (dir / "never.json") + " --subject-to 'ttft_mean<1us'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("No feasible request_rate"), std::string::npos) << r.output;
  Result<bj::object> never = read_result(dir / "never.json");
  ASSERT_TRUE(never.ok());
  EXPECT_TRUE(never->at("sweep").at("best_value").is_null());
  EXPECT_NE(get_string(*never, "sweep.reason").find("ttft_mean<1us"), std::string::npos);
  // Stopped at the first infeasible point.
  EXPECT_EQ(never->at("sweep").at("points").as_array().size(), 1u);

  r = kite_bench("plot " + dir.path() + " --out " + (dir / "report.html") + " --markdown " +
                 (dir / "table.md") + " --title 'CLI test'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  bj::object expect{
      {"charts", bj::object{{"Output throughput vs TTFT",
                             bj::object{{"series", bj::array{"fake", "fake · random (16,5) sweep",
                                                             "never · random (16,5) sweep"}}}},
                            {"ITL distribution (CDF)",
                             bj::object{{"series", bj::array{"fake · random (16,5)"}}}},
                            {"fake · random (16,5): ttft_mean vs request_rate",
                             bj::object{{"ref_lines", bj::array{"SLO ttft_mean<60s"}}}}}},
      {"md_rows", bj::array{"fake · random (16,5)", "scripted"}},
      {"html_contains", bj::array{"CLI test", "No feasible point"}}};
  testing::write_text(dir / "expect.json", bj::serialize(expect));
  r = testing::run_command(testing::python_executable() + " " +
                           testing::source_path("tests/unit/bench/check_report.py") + " " +
                           (dir / "expect.json") + " " + (dir / "report.html") + " " +
                           (dir / "table.md") + " " + (dir / "fake-serve.json"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace kite::bench
