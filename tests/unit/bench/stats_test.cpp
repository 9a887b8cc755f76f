#include "bench/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "bench/arrivals.h"
#include "bench_test_util.h"

namespace kite::bench {
namespace {

TEST(Percentile, HandComputedLinearInterpolation) {
  const std::vector<double> x = {1, 2, 3, 4};
  EXPECT_EQ(percentile_sorted(x, 0), 1.0);
  EXPECT_EQ(percentile_sorted(x, 100), 4.0);
  EXPECT_EQ(percentile_sorted(x, 50), 2.5);   // h = 1.5
  EXPECT_EQ(percentile_sorted(x, 25), 1.75);  // h = 0.75
  // h = 2.7: the upper-neighbour form 4 - 0.3 * 1 (numpy's _lerp for g >= 0.5).
  EXPECT_EQ(percentile_sorted(x, 90), 4.0 - (1.0 - (2.7 - 2.0)));
  EXPECT_NEAR(percentile_sorted(x, 99), 3.97, 1e-12);
}

TEST(Percentile, SingleValueAndTies) {
  EXPECT_EQ(percentile_sorted({7.5}, 0), 7.5);
  EXPECT_EQ(percentile_sorted({7.5}, 99), 7.5);
  EXPECT_EQ(percentile_sorted({2, 2, 2, 9}, 50), 2.0);
}

TEST(Summarize, KnownSample) {
  Distribution d = summarize({4, 1, 3, 2}, {90, 99});
  EXPECT_EQ(d.count, 4u);
  EXPECT_EQ(d.mean, 2.5);
  EXPECT_EQ(d.min, 1.0);
  EXPECT_EQ(d.max, 4.0);
  EXPECT_EQ(d.median, 2.5);
  EXPECT_DOUBLE_EQ(d.std, std::sqrt(1.25));  // population std
  ASSERT_EQ(d.percentiles.size(), 2u);
  EXPECT_EQ(d.percentiles[0].p, 90.0);
  ASSERT_NE(d.find_percentile(99), nullptr);
  EXPECT_NEAR(*d.find_percentile(99), 3.97, 1e-12);
  EXPECT_EQ(d.find_percentile(95), nullptr);
  EXPECT_EQ(*d.find_percentile(50), 2.5);
}

TEST(Summarize, EmptySampleIsAllZero) {
  Distribution d = summarize({}, {99});
  EXPECT_EQ(d.count, 0u);
  EXPECT_EQ(d.mean, 0.0);
  EXPECT_TRUE(d.percentiles.empty());
}

TEST(PercentileKey, ShortForms) {
  EXPECT_EQ(percentile_key(99), "p99");
  EXPECT_EQ(percentile_key(99.9), "p99.9");
  EXPECT_EQ(percentile_key(50), "p50");
  EXPECT_EQ(percentile_key(0), "p0");
}

// Every percentile bit for bit equal to numpy.percentile's default; mean and std to 1e-12.
TEST(Summarize, MatchesNumpy) {
  if (!testing::python_available()) GTEST_SKIP() << "no Python venv at " KITE_PYTHON_EXECUTABLE;
  const std::vector<double> pcts = {0, 1, 5, 10, 25, 33.3, 50, 66.6, 75, 90, 95, 99, 99.9, 100};
  Rng rng(1234);
  std::vector<std::vector<double>> samples;
  for (size_t n : {1u, 2u, 3u, 7u, 10u, 101u, 1000u, 4096u}) {
    std::vector<double> s;
    for (size_t i = 0; i < n; ++i) s.push_back(rng.exponential(0.05) + 3.0);
    samples.push_back(s);
  }
  samples.push_back({5, 5, 5, 1, 1, 9, 9, 9, 9, 2});  // ties
  std::ostringstream in;
  in << "PCTS";
  for (double p : pcts) in << ' ' << p;
  in << '\n';
  for (const auto& s : samples) {
    for (double v : s) in << testing::hex_double(v) << ' ';
    in << '\n';
  }
  testing::TempDir dir;
  testing::write_text(dir / "in.txt", in.str());
  testing::CommandResult r = testing::run_command(
      testing::python_executable() + " " + testing::source_path("tests/unit/bench/numpy_stats.py") +
      " " + (dir / "in.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream out(r.output);
  for (const auto& s : samples) {
    std::string line;
    ASSERT_TRUE(std::getline(out, line)) << r.output;
    std::istringstream fields(line);
    std::string f;
    std::vector<double> want;
    while (fields >> f) want.push_back(testing::parse_hex_double(f));
    ASSERT_EQ(want.size(), pcts.size() + 2);
    Distribution d = summarize(s, pcts);
    EXPECT_NEAR(d.mean, want[0], 1e-12 * std::abs(want[0])) << "n=" << s.size();
    EXPECT_NEAR(d.std, want[1], 1e-12 * std::abs(want[0])) << "n=" << s.size();
    for (size_t i = 0; i < pcts.size(); ++i) {
      EXPECT_EQ(d.percentiles[i].value, want[i + 2]) << "n=" << s.size() << " p=" << pcts[i];
    }
  }
}

}  // namespace
}  // namespace kite::bench
