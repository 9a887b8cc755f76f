#include "bench/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace kite::bench {
namespace {

namespace bj = boost::json;

// A run's "metrics" object with the fields the search reads.
bj::object metrics(double output_throughput, double tpot_mean_ms, double ttft_mean_ms) {
  bj::object m;
  m["output_throughput"] = output_throughput;
  m["completed"] = 100;
  bj::object tpot;
  tpot["count"] = 100;
  tpot["mean"] = tpot_mean_ms;
  tpot["p99"] = tpot_mean_ms * 1.5;
  m["tpot_ms"] = tpot;
  bj::object ttft;
  ttft["count"] = 100;
  ttft["mean"] = ttft_mean_ms;
  m["ttft_ms"] = ttft;
  return m;
}

using Surface = std::function<bj::object(double)>;

std::vector<SweepPoint> evaluate(const std::vector<double>& grid, const Surface& f) {
  std::vector<SweepPoint> points;
  for (double v : grid) points.push_back({v, true, "", f(v)});
  return points;
}

Constraint must(std::string_view text) {
  Result<Constraint> c = parse_constraint(text);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

// Scenario 1 (TPOT-bound batch sweep): TPOT grows linearly with the batch, throughput = b/TPOT.
TEST(ChooseBest, TpotBoundBatchSweepFindsTheLargestFeasibleBatch) {
  Surface f = [](double b) {
    const double tpot = 5.0 + 0.1 * b;  // ms; < 20 ms iff b < 150
    return metrics(b * 1000.0 / tpot, tpot, 50.0);
  };
  std::vector<double> grid = *parse_grid("1:512:*2");
  ASSERT_EQ(grid.size(), 10u);
  std::vector<SweepPoint> points = evaluate(grid, f);
  SweepChoice c = choose_best(points, "output_throughput", true, {must("tpot_mean<20ms")});
  ASSERT_TRUE(c.best.has_value()) << c.reason;
  EXPECT_EQ(points[*c.best].value, 128.0);
  EXPECT_TRUE(c.feasible[7]);
  EXPECT_FALSE(c.feasible[8]);  // 256
  EXPECT_TRUE(c.reason.empty());
}

TEST(ChooseBest, NonMonotoneThroughputPeaksInsideTheFeasibleRegion) {
  // Throughput falls past b = 64 (preemption), TPOT still within bounds up to 128.
  Surface f = [](double b) {
    const double tput = b <= 64 ? 100 * b : 6400 - 20 * (b - 64);
    return metrics(tput, 5.0 + 0.1 * b, 50.0);
  };
  std::vector<SweepPoint> points = evaluate(*parse_grid("1,2,4,8,16,32,64,128,256"), f);
  SweepChoice c = choose_best(points, "output_throughput", true, {must("tpot_mean < 20 ms")});
  ASSERT_TRUE(c.best.has_value());
  EXPECT_EQ(points[*c.best].value, 64.0);
}

TEST(ChooseBest, NoFeasiblePointSaysWhy) {
  Surface f = [](double b) { return metrics(b * 10, 30.0 + b, 50.0); };
  std::vector<SweepPoint> points = evaluate({1, 2, 4}, f);
  SweepChoice c = choose_best(points, "output_throughput", true, {must("tpot_mean<20ms")});
  EXPECT_FALSE(c.best.has_value());
  EXPECT_NE(c.reason.find("tpot_mean<20ms"), std::string::npos) << c.reason;
  EXPECT_EQ(c.feasible, (std::vector<bool>{false, false, false}));
}

TEST(ChooseBest, FailedRunsAreSkippedAndTiesGoToTheSmallerSetting) {
  std::vector<SweepPoint> points = evaluate({1, 2, 4}, [](double) { return metrics(500, 10, 50); });
  points[0].ran = false;
  points[0].error = "engine failed";
  SweepChoice c = choose_best(points, "output_throughput", true, {});
  ASSERT_TRUE(c.best.has_value());
  EXPECT_EQ(points[*c.best].value, 2.0);
  EXPECT_FALSE(c.feasible[0]);

  for (SweepPoint& p : points) p.ran = false;
  c = choose_best(points, "output_throughput", true, {});
  EXPECT_FALSE(c.best.has_value());
  EXPECT_EQ(c.reason, "every run failed");
}

TEST(ChooseBest, MinimizeAndMissingMetric) {
  std::vector<SweepPoint> points =
      evaluate({1, 2, 3}, [](double v) { return metrics(1000 * v, 10, 100 * (4 - v)); });
  SweepChoice c = choose_best(points, "ttft_mean", false, {must("output_throughput>=1500")});
  ASSERT_TRUE(c.best.has_value());
  EXPECT_EQ(points[*c.best].value, 3.0);
  c = choose_best(points, "goodput", true, {});
  EXPECT_FALSE(c.best.has_value());
  EXPECT_NE(c.reason.find("goodput"), std::string::npos);
}

// Scenario 2 (TTFT-bound rate sweep): TTFT explodes as the rate nears capacity (6.5 req/s);
// the grid brackets the limit and bisection narrows it to the known threshold 5.85 req/s.
TEST(NextRefinement, BisectsToTheHighestFeasibleRate) {
  Surface f = [](double rate) {
    const double ttft = rate < 6.5 ? 100.0 / (1.0 - rate / 6.5) : 1e6;  // < 1 s iff rate < 5.85
    return metrics(rate * 128, 20, ttft);
  };
  std::vector<Constraint> cs = {must("ttft_mean<1s")};
  std::vector<SweepPoint> points = evaluate({1, 2, 4, 8}, f);
  int steps = 0;
  while (auto next = next_refinement(points, cs, 0.05, false)) {
    points.push_back({*next, true, "", f(*next)});
    ASSERT_LT(++steps, 20);
  }
  SweepChoice c = choose_best(points, "request_throughput", true, cs);
  // request_throughput is not in these metrics: use the rate-proportional output throughput.
  c = choose_best(points, "output_throughput", true, cs);
  ASSERT_TRUE(c.best.has_value());
  const double best = points[*c.best].value;
  EXPECT_LT(best, 5.85);
  EXPECT_GT(best, 5.85 - 0.05);
}

TEST(NextRefinement, IntegerSettingsAndNoBracket) {
  Surface f = [](double b) { return metrics(b, 5.0 + b, 1); };  // feasible iff b < 15
  std::vector<Constraint> cs = {must("tpot_mean<20ms")};
  std::vector<SweepPoint> points = evaluate({8, 16}, f);
  std::vector<double> tried;
  while (auto next = next_refinement(points, cs, 1, true)) {
    EXPECT_EQ(*next, std::floor(*next));
    tried.push_back(*next);
    points.push_back({*next, true, "", f(*next)});
  }
  EXPECT_EQ(tried, (std::vector<double>{12, 14, 15}));
  // Everything feasible: nothing to refine.
  EXPECT_FALSE(next_refinement(evaluate({1, 2}, f), cs, 1, true).has_value());
  // Nothing feasible: nothing to refine.
  EXPECT_FALSE(next_refinement(evaluate({20, 30}, f), cs, 1, true).has_value());
}

TEST(ParseConstraint, FormsAndUnits) {
  Constraint c = must("tpot_mean<20ms");
  EXPECT_EQ(c.metric, "tpot_mean");
  EXPECT_EQ(c.op, CompareOp::kLess);
  EXPECT_EQ(c.value, 20.0);
  c = must("ttft_p99 <= 1s");
  EXPECT_EQ(c.op, CompareOp::kLessEqual);
  EXPECT_EQ(c.value, 1000.0);
  c = must("output_throughput>=1000");
  EXPECT_EQ(c.op, CompareOp::kGreaterEqual);
  EXPECT_EQ(c.value, 1000.0);
  c = must("e2e_median>2.5");
  EXPECT_EQ(c.value, 2.5);  // bare latency numbers are ms
  EXPECT_TRUE(c.holds(3));
  EXPECT_FALSE(c.holds(2.5));
  EXPECT_FALSE(parse_constraint("tpot_mean").ok());
  EXPECT_FALSE(parse_constraint("<20ms").ok());
  EXPECT_FALSE(parse_constraint("tpot_mean<").ok());
  EXPECT_FALSE(parse_constraint("tpot_mean<fast").ok());
  EXPECT_FALSE(parse_constraint("output_throughput>lots").ok());
  EXPECT_FALSE(parse_constraint("tpot_mean<20parsecs").ok());
}

TEST(ParseGrid, ListsAndRanges) {
  EXPECT_EQ(*parse_grid("1,2,4"), (std::vector<double>{1, 2, 4}));
  EXPECT_EQ(*parse_grid("4, 2, 4, 1"), (std::vector<double>{4, 2, 1}));
  EXPECT_EQ(*parse_grid("1:512:*2"), (std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}));
  EXPECT_EQ(*parse_grid("1:5:+2"), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(parse_grid("0.5:1.0:+0.1")->size(), 6u);
  std::vector<double> with_inf = *parse_grid("1,2,inf", true);
  EXPECT_TRUE(std::isinf(with_inf.back()));
  EXPECT_FALSE(parse_grid("1,2,inf").ok());
  EXPECT_FALSE(parse_grid("").ok());
  EXPECT_FALSE(parse_grid("1,,2").ok());
  EXPECT_FALSE(parse_grid("0,1").ok());
  EXPECT_FALSE(parse_grid("1:8:*1").ok());
  EXPECT_FALSE(parse_grid("8:1:*2").ok());
  EXPECT_FALSE(parse_grid("1:8").ok());
  EXPECT_FALSE(parse_grid("1:8:/2").ok());
}

TEST(LookupMetric, FlatAndLatencyNames) {
  bj::object m = metrics(1234.5, 18.0, 250.0);
  EXPECT_EQ(*lookup_metric(m, "output_throughput"), 1234.5);
  EXPECT_EQ(*lookup_metric(m, "completed"), 100.0);
  EXPECT_EQ(*lookup_metric(m, "tpot_mean"), 18.0);
  EXPECT_EQ(*lookup_metric(m, "tpot_p99"), 27.0);
  EXPECT_FALSE(lookup_metric(m, "tpot_p90").has_value());
  EXPECT_FALSE(lookup_metric(m, "itl_mean").has_value());
  EXPECT_FALSE(lookup_metric(m, "nonsense").has_value());
  m["tpot_ms"].as_object()["count"] = 0;  // no sample: no value
  EXPECT_FALSE(lookup_metric(m, "tpot_mean").has_value());
  EXPECT_TRUE(is_latency_metric("e2e_p99.9"));
  EXPECT_FALSE(is_latency_metric("output_throughput"));
  EXPECT_FALSE(is_latency_metric("ttft_p101"));
}

}  // namespace
}  // namespace kite::bench
