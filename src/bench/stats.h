// Summary statistics of a sample (latencies, throughputs): mean, std, min, max and percentiles.
//
// Percentile definition (one, used everywhere in kite bench): numpy's default, method="linear"
// (Hyndman & Fan type 7). For the sorted sample x[0..n-1] and p in [0, 100]:
//   h = (n - 1) * (p / 100),  i = floor(h),  g = h - i
//   P = x[n-1]                          when h >= n - 1
//   P = x[i] + g * (x[i+1] - x[i])      when g < 0.5
//   P = x[i+1] - (1 - g) * (x[i+1] - x[i])  when g >= 0.5   (numpy's _lerp, bit for bit)
// Standard deviation is the population one (numpy's default ddof=0).
#pragma once

#include <string>
#include <vector>

namespace kite::bench {

// The percentile `p` (0..100) of an ascending-sorted, non-empty sample (see above).
double percentile_sorted(const std::vector<double>& sorted, double p);

struct PercentileValue {
  double p = 0.0;  // 0..100
  double value = 0.0;
};

struct Distribution {
  size_t count = 0;  // 0: every other field is 0
  double mean = 0.0;
  double std = 0.0;  // population standard deviation
  double min = 0.0;
  double max = 0.0;
  double median = 0.0;
  std::vector<PercentileValue> percentiles;  // in the order asked for

  // The value of percentile p if it was computed (p50 always is: the median).
  const double* find_percentile(double p) const;
};

// Summarises `values` (any order). `percentiles` are in [0, 100]; duplicates are kept.
Distribution summarize(std::vector<double> values, const std::vector<double>& percentiles);

// "p99", "p99.9", "p50": the key a percentile is stored under in result JSON.
std::string percentile_key(double p);

// The default percentiles reported: 50, 90, 95, 99.
const std::vector<double>& default_percentiles();

}  // namespace kite::bench
