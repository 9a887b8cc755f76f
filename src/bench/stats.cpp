#include "bench/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace kite::bench {

double percentile_sorted(const std::vector<double>& sorted, double p) {
  KITE_CHECK(!sorted.empty()) << "percentile of an empty sample";
  KITE_CHECK(p >= 0.0 && p <= 100.0) << "percentile out of range: " << p;
  const size_t n = sorted.size();
  const double q = p / 100.0;
  const double h = static_cast<double>(n - 1) * q;
  if (h >= static_cast<double>(n - 1)) return sorted[n - 1];
  const double lower = std::floor(h);
  const size_t i = static_cast<size_t>(lower);
  const double g = h - lower;
  const double a = sorted[i];
  const double b = sorted[i + 1];
  const double diff = b - a;
  // numpy's _lerp: the t >= 0.5 branch interpolates from the upper neighbour.
  if (g >= 0.5) return b - diff * (1.0 - g);
  return a + diff * g;
}

const double* Distribution::find_percentile(double p) const {
  if (p == 50.0 && count > 0) return &median;
  for (const PercentileValue& pv : percentiles) {
    if (pv.p == p) return &pv.value;
  }
  return nullptr;
}

Distribution summarize(std::vector<double> values, const std::vector<double>& percentiles) {
  Distribution d;
  d.count = values.size();
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  // Mean and variance by a two-pass sum (exact enough for latency samples; numpy uses
  // pairwise summation, so the last bits may differ).
  double sum = 0.0;
  for (double v : values) sum += v;
  d.mean = sum / static_cast<double>(values.size());
  double sq = 0.0;
  for (double v : values) sq += (v - d.mean) * (v - d.mean);
  d.std = std::sqrt(sq / static_cast<double>(values.size()));
  d.min = values.front();
  d.max = values.back();
  d.median = percentile_sorted(values, 50.0);
  d.percentiles.reserve(percentiles.size());
  for (double p : percentiles) d.percentiles.push_back({p, percentile_sorted(values, p)});
  return d;
}

std::string percentile_key(double p) {
  // Shortest form that round-trips the usual values: 99 -> "p99", 99.9 -> "p99.9".
  return fmt::format("p{}", p);
}

const std::vector<double>& default_percentiles() {
  static const std::vector<double> kDefault = {50.0, 90.0, 95.0, 99.0};
  return kDefault;
}

}  // namespace kite::bench
