#include "bench/report.h"

#include <gtest/gtest.h>

#include "bench/result.h"
#include "bench/svg_chart.h"
#include "bench/sweep.h"
#include "bench_test_util.h"

namespace kite::bench {
namespace {

namespace bj = boost::json;

// `n` synthetic requests: TTFT grows with i, `tokens` output tokens one chunk each.
std::vector<RequestSample> synthetic_samples(int n, double ttft_base, double itl, int tokens) {
  std::vector<RequestSample> out;
  for (int i = 0; i < n; ++i) {
    StreamRecorder rec(0.01 * i);
    double t = 0.01 * i + ttft_base * (1 + 0.1 * i);
    for (int k = 0; k < tokens; ++k) {
      rec.on_token_chunk(t);
      t += itl;
    }
    rec.on_usage(128, tokens);
    rec.set_expected(128, tokens);
    out.push_back(rec.succeed(t - itl));
  }
  return out;
}

bj::object run_result(const std::string& label, const std::string& preset,
                      const std::string& workload, int n, double ttft, double itl) {
  bj::object r = new_result("throughput", label);
  r["engine"] = bj::object{{"name", label}, {"version", "1.0"}};
  r["model"] = bj::object{{"name", "llama-3-8b"}, {"dtype", "bfloat16"}};
  r["workload"] = bj::object{{"preset", preset}, {"name", workload}, {"num_prompts", n}};
  std::vector<RequestSample> samples = synthetic_samples(n, ttft, itl, 16);
  BenchmarkMetrics m = compute_metrics(samples, 0.01 * n + 1.0, Slo{}, default_percentiles());
  r["metrics"] = metrics_json(m);
  r["samples"] = samples_json(samples, true);
  return r;
}

bj::object sweep_result() {
  bj::object r = new_result("sweep", "kite");
  r["engine"] = bj::object{{"name", "kite"}};
  r["workload"] = bj::object{{"preset", "W2"}, {"name", "W2 TPOT-bound"}};
  bj::array points;
  double best_value = 0;
  bj::object best_metrics;
  for (double b : {1.0, 2.0, 4.0, 8.0, 16.0}) {
    bj::object m;
    const double tpot = 10 + 1.5 * b;
    m["output_throughput"] = b * 1000 / tpot;
    m["tpot_ms"] = bj::object{{"count", 10}, {"mean", tpot}};
    const bool feasible = tpot < 20;
    if (feasible) {
      best_value = b;
      best_metrics = m;
    }
    points.push_back(
        bj::object{{"value", b}, {"ran", true}, {"feasible", feasible}, {"metrics", m}});
  }
  r["metrics"] = best_metrics;
  r["sweep"] = bj::object{{"mode", "throughput"},
                          {"parameter", "max_num_seqs"},
                          {"objective", "output_throughput"},
                          {"maximize", true},
                          {"constraints", bj::array{"tpot_mean<20ms"}},
                          {"points", points},
                          {"best_value", best_value}};
  return r;
}

TEST(Report, HtmlAndMarkdownAreWellFormedWithTheExpectedCharts) {
  if (!testing::python_available()) GTEST_SKIP() << "no Python venv at " KITE_PYTHON_EXECUTABLE;
  testing::TempDir dir;
  std::vector<bj::object> results = {
      run_result("kite", "W1", "W1 (128,128)", 40, 0.05, 0.01),
      run_result("transformers", "W1", "W1 (128,128)", 40, 0.2, 0.05),
      run_result("kite", "W1", "W1 (2048,128)", 20, 0.3, 0.02),
      run_result("kite", "W4", "W4 batch 4", 4, 0.02, 0.01),
      run_result("kite", "W4", "W4 batch 8", 8, 0.02, 0.012),
      run_result("transformers", "W4", "W4 batch 4", 4, 0.1, 0.05),
      sweep_result(),
  };
  bj::object startup = new_result("startup", "kite");
  startup["workload"] = bj::object{{"preset", "W6"}, {"name", "W6 startup"}};
  startup["startup"] = bj::object{{"time_to_health_s", 1.25},
                                  {"time_to_first_token_s", 1.5},
                                  {"binary_size_bytes", 12345678},
                                  {"peak_rss_bytes", 98765432}};
  results.push_back(startup);
  std::vector<std::string> paths;
  for (size_t i = 0; i < results.size(); ++i) {
    paths.push_back(dir / ("r" + std::to_string(i) + ".json"));
    ASSERT_TRUE(write_result(results[i], paths.back()).ok());
  }
  Result<std::vector<LoadedResult>> loaded = load_results(paths);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const std::string html = render_html_report(*loaded, ReportOptions{});
  const std::string md = render_markdown_report(*loaded);
  testing::write_text(dir / "report.html", html);
  testing::write_text(dir / "table.md", md);

  const std::string kite128 = "kite · W1 (128,128)";
  bj::object expect;
  expect["charts"] = bj::object{
      {"Output throughput by workload",
       bj::object{{"y_label", "output tokens/s"}, {"series", bj::array{"kite", "transformers"}}}},
      {"Output throughput vs TPOT",
       bj::object{{"x_label", "TPOT (ms)"},
                  {"y_label", "output tokens/s"},
                  {"series", bj::array{"kite", "transformers", "kite · W2 TPOT-bound sweep"}}}},
      {"Output throughput vs TTFT", bj::object{{"x_label", "TTFT (ms)"}}},
      {"TTFT distribution (CDF)",
       bj::object{{"x_label", "TTFT (ms)"}, {"y_label", "fraction of requests"}}},
      {"ITL distribution (CDF)", bj::object{{"y_label", "fraction of token gaps"}}},
      {"Offline batch wall time (W4)", bj::object{{"x_label", "batch size (requests)"},
                                                  {"series", bj::array{"kite", "transformers"}}}},
      {"kite · W2 TPOT-bound: tpot_mean vs max_num_seqs",
       bj::object{{"x_label", "max_num_seqs"},
                  {"y_label", "tpot_mean (ms)"},
                  {"ref_lines", bj::array{"SLO tpot_mean<20ms"}},
                  {"highlights", bj::array{"best max_num_seqs=4"}}}},
      {"kite · W2 TPOT-bound: output_throughput vs max_num_seqs",
       bj::object{{"highlights", bj::array{"best max_num_seqs=4"}}}},
  };
  expect["num_charts"] = 10;  // 4 overview + 4 CDFs + 2 sweep charts
  expect["md_rows"] = bj::array{kite128, "transformers · W1 (128,128)",
                                "kite · W2 TPOT-bound (best max_num_seqs=4)", "kite · W6 startup"};
  expect["html_contains"] = bj::array{"Startup and footprint", "<tr class=\"best\">"};
  testing::write_text(dir / "expect.json", bj::serialize(expect));
  std::string cmd = testing::python_executable() + " " +
                    testing::source_path("tests/unit/bench/check_report.py") + " " +
                    (dir / "expect.json") + " " + (dir / "report.html") + " " + (dir / "table.md");
  for (const std::string& p : paths) cmd += " " + p;
  testing::CommandResult r = testing::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK"), std::string::npos) << r.output;
}

TEST(Report, StandaloneChartsAreTheReportsChartsWithUniqueFileNames) {
  testing::TempDir dir;
  std::vector<bj::object> results = {
      run_result("kite", "W1", "W1 (128,128)", 10, 0.05, 0.01),
      run_result("transformers", "W4", "W4 batch 4", 4, 0.1, 0.05), sweep_result(),
      sweep_result(),  // the same label and workload twice: the second's files are numbered
  };
  std::vector<std::string> paths;
  for (size_t i = 0; i < results.size(); ++i) {
    paths.push_back(dir / ("r" + std::to_string(i) + ".json"));
    ASSERT_TRUE(write_result(results[i], paths.back()).ok());
  }
  Result<std::vector<LoadedResult>> loaded = load_results(paths);
  ASSERT_TRUE(loaded.ok());
  const std::vector<Chart> charts = render_charts(*loaded, ReportOptions{});
  std::vector<std::string> names;
  for (const Chart& c : charts) names.push_back(c.name);
  EXPECT_EQ(
      names,
      (std::vector<std::string>{
          "throughput-by-workload", "throughput-vs-tpot", "throughput-vs-ttft", "w4-batch-time",
          "cdf-ttft", "cdf-tpot", "cdf-itl", "cdf-e2e-latency",
          "sweep-kite-w2-tpot-bound-output-throughput", "sweep-kite-w2-tpot-bound-tpot-mean",
          "sweep-kite-w2-tpot-bound-output-throughput-2", "sweep-kite-w2-tpot-bound-tpot-mean-2"}));
  const std::string html = render_html_report(*loaded, ReportOptions{});
  for (const Chart& c : charts) {
    EXPECT_EQ(c.svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << c.name;
    EXPECT_NE(html.find(c.svg), std::string::npos) << c.name << " is not the report's chart";
    EXPECT_FALSE(c.caption.empty()) << c.name;
  }
}

TEST(Report, RejectsFilesThatAreNotResults) {
  testing::TempDir dir;
  testing::write_text(dir / "x.json", "{\"hello\": 1}");
  testing::write_text(dir / "y.json", "not json");
  Result<std::vector<LoadedResult>> r = load_results({dir / "x.json"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("x.json"), std::string::npos);
  EXPECT_FALSE(load_results({dir / "y.json"}).ok());
  EXPECT_FALSE(load_results({dir / "missing.json"}).ok());
}

TEST(ResultJson, RoundTripsThroughTheFile) {
  testing::TempDir dir;
  bj::object r = run_result("kite", "W1", "W1 (128,128)", 5, 0.05, 0.01);
  r["workload"].as_object()["request_rate"] = number_or_inf(INFINITY);
  ASSERT_TRUE(write_result(r, dir / "sub/r.json").ok());
  Result<bj::object> back = read_result(dir / "sub/r.json");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(get_string(*back, "schema"), "kite-bench/1");
  EXPECT_EQ(get_string(*back, "label"), "kite");
  EXPECT_TRUE(std::isinf(*get_number(*back, "workload.request_rate")));
  EXPECT_EQ(*get_number(*back, "metrics.completed"), 5.0);
  EXPECT_DOUBLE_EQ(*lookup_metric(back->at("metrics").as_object(), "ttft_mean"),
                   *lookup_metric(r.at("metrics").as_object(), "ttft_mean"));
  EXPECT_EQ(back->at("samples").as_array().size(), 5u);
  EXPECT_EQ(get_path(*back, "nope.deeper"), nullptr);
}

TEST(SvgChart, TicksLabelsAndEscaping) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(0.3, 0.9, 3), (std::vector<double>{0.4, 0.6, 0.8}));
  EXPECT_TRUE(nice_ticks(5, 5, 4).empty());
  EXPECT_EQ(tick_label(0), "0");
  EXPECT_EQ(tick_label(2.5), "2.5");
  EXPECT_EQ(tick_label(1000), "1000");
  EXPECT_EQ(tick_label(20000), "20k");
  EXPECT_EQ(tick_label(1500000), "1.5M");
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
}

TEST(SvgChart, EmptyChartSaysNoData) {
  LineChart c;
  c.title = "empty";
  std::string svg = render_svg(c);
  EXPECT_NE(svg.find("no data"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace kite::bench

namespace kite::bench {
namespace {

// The transformers peers compute their metrics in Python (scripts/peers/bench_schema.py): for
// the same requests they must give the same numbers as kite's compute_metrics.
TEST(PeerSchema, PythonMetricsMatchKite) {
  if (!testing::python_available()) GTEST_SKIP() << "no Python venv at " KITE_PYTHON_EXECUTABLE;
  std::vector<RequestSample> samples;
  bj::array in;
  for (int i = 0; i < 25; ++i) {
    const double start = 0.0625 * i;
    std::vector<double> times;
    double t = start + 0.1 + 0.01 * (i % 7);
    const int n = 2 + i % 5;
    for (int k = 0; k < n; ++k, t += 0.02 + 0.001 * k) times.push_back(t);
    StreamRecorder rec(start);
    bj::array tt;
    for (double x : times) {
      rec.on_token_chunk(x);
      tt.emplace_back(x);
    }
    rec.on_usage(100 + i, n);
    samples.push_back(rec.succeed(times.back()));
    in.push_back(bj::object{{"start_s", start},
                            {"token_times_s", tt},
                            {"end_s", times.back()},
                            {"prompt_tokens", 100 + i},
                            {"output_tokens", n}});
  }
  const double duration = 3.0;
  testing::TempDir dir;
  testing::write_text(dir / "in.json",
                      bj::serialize(bj::object{{"duration_s", duration}, {"samples", in}}));
  testing::CommandResult r = testing::run_command(
      testing::python_executable() + " " +
      testing::source_path("tests/unit/bench/peer_schema_check.py") + " " + (dir / "in.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  bj::object py = bj::parse(r.output).as_object();
  bj::object cpp = metrics_json(compute_metrics(samples, duration, Slo{}, default_percentiles()));
  for (const char* key :
       {"completed", "total_input_tokens", "total_output_tokens", "request_throughput",
        "output_throughput", "total_token_throughput", "max_concurrency_observed", "duration_s"}) {
    EXPECT_NEAR(*get_number(py, key), *get_number(cpp, key), 1e-9) << key;
  }
  for (const char* dist : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    for (const char* stat : {"count", "mean", "std", "min", "max", "median", "p90", "p99"}) {
      const std::string k = std::string(dist) + "." + stat;
      ASSERT_TRUE(get_number(py, k).has_value()) << k;
      EXPECT_NEAR(*get_number(py, k), *get_number(cpp, k), 1e-9) << k;
    }
  }
}

}  // namespace
}  // namespace kite::bench
