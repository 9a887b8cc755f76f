// Statistical tests: the empirical distribution of seeded samples matches the distribution that
// sampling_batch.h defines for temperature, top-k, top-p and min-p, on a fixed logit vector.
//
// Each case draws N = 60,000 tokens (one row per draw: the same seed, steps 0..N-1), checks that
// tokens the definition excludes never appear, and runs Pearson's chi-square over the kept
// tokens against the expected probabilities (computed here in double, independently of the
// sampler). The threshold is the chi-square critical value at p = 1e-6 (Wilson-Hilferty): the
// seeds are fixed, so the test is deterministic, and a correct sampler would fail for fewer
// than one seed in a million. Each case also checks power: the same counts must reject the
// unprocessed softmax distribution, so the test can tell the processing apart from none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/thread_pool.h"
#include "sampling/cpu_sampler.h"
#include "sampling/sampling_batch_builder.h"

namespace kite {
namespace {

const std::vector<float> kLogits = {2.0f, 1.5f, 1.2f,  1.0f,  0.8f,  0.5f,
                                    0.3f, 0.0f, -0.5f, -1.0f, -2.0f, -3.0f};
constexpr int kDraws = 60000;

// Upper 1e-6 quantile of chi-square with df degrees of freedom (Wilson-Hilferty).
double chi2_critical(int df) {
  const double z = 4.753424;  // standard normal upper 1e-6 quantile
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

std::vector<double> softmax(const std::vector<double>& x, const std::vector<bool>& keep) {
  double m = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < x.size(); ++i) {
    if (keep[i]) m = std::max(m, x[i]);
  }
  std::vector<double> p(x.size(), 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (keep[i]) sum += (p[i] = std::exp(x[i] - m));
  }
  for (double& v : p) v /= sum;
  return p;
}

// The definition, step by step, in double.
std::vector<double> expected_distribution(double temperature, int top_k, double top_p,
                                          double min_p) {
  const size_t v = kLogits.size();
  std::vector<double> x(v);
  for (size_t i = 0; i < v; ++i) x[i] = kLogits[i] / temperature;
  std::vector<bool> keep(v, true);
  if (top_k > 0) {
    std::vector<double> sorted = x;
    std::sort(sorted.rbegin(), sorted.rend());
    for (size_t i = 0; i < v; ++i) keep[i] = x[i] >= sorted[static_cast<size_t>(top_k - 1)];
  }
  if (top_p < 1.0) {
    const std::vector<double> p = softmax(x, keep);
    std::vector<size_t> order(v);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    double cum = 0.0;
    bool reached = false;
    for (size_t i : order) {
      if (!keep[i]) continue;
      if (reached) {
        keep[i] = false;
        continue;
      }
      cum += p[i];
      reached = cum >= top_p;
    }
  }
  if (min_p > 0.0) {
    double m = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < v; ++i) {
      if (keep[i]) m = std::max(m, x[i]);
    }
    for (size_t i = 0; i < v; ++i) keep[i] = keep[i] && std::exp(x[i] - m) >= min_p;
  }
  return softmax(x, keep);
}

std::vector<int64_t> draw(const SamplingParams& params, uint64_t seed) {
  const int64_t vocab = static_cast<int64_t>(kLogits.size());
  SamplingBatchBuilder builder;
  builder.reset();
  for (uint32_t step = 0; step < kDraws; ++step) {
    EXPECT_TRUE(builder.add_row({&params, seed, step, {}, {}, {}}).ok());
  }
  std::vector<float> logits;
  logits.reserve(static_cast<size_t>(kDraws * vocab));
  for (int i = 0; i < kDraws; ++i) logits.insert(logits.end(), kLogits.begin(), kLogits.end());
  ThreadPool pool(2);
  SamplerOutput out;
  EXPECT_TRUE(cpu_sample(logits.data(), vocab, builder.finish(), &out, &pool).ok());
  std::vector<int64_t> counts(kLogits.size(), 0);
  for (int32_t t : out.token_ids) ++counts[static_cast<size_t>(t)];
  return counts;
}

// Pearson's statistic over cells with positive expectation; +inf if a zero-probability cell
// was drawn.
double chi2(const std::vector<int64_t>& counts, const std::vector<double>& p, int* df) {
  double s = 0.0;
  int cells = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      if (counts[i] > 0) return std::numeric_limits<double>::infinity();
      continue;
    }
    const double e = p[i] * kDraws;
    s += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  *df = cells - 1;
  return s;
}

void check_case(double temperature, int top_k, double top_p, double min_p, uint64_t seed) {
  SamplingParams params;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  params.min_p = min_p;
  const std::vector<int64_t> counts = draw(params, seed);
  const std::vector<double> p = expected_distribution(temperature, top_k, top_p, min_p);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "excluded token " << i << " was sampled";
    }
  }
  int df = 0;
  const double stat = chi2(counts, p, &df);
  ASSERT_GE(df, 1);
  EXPECT_LT(stat, chi2_critical(df)) << "df " << df;
  // Power: the counts must reject the plain softmax of the raw logits.
  int df0 = 0;
  const double stat0 = chi2(counts, expected_distribution(1.0, 0, 1.0, 0.0), &df0);
  EXPECT_GT(stat0, chi2_critical(df0));
}

TEST(SamplerDistribution, PlainSoftmax) {
  SamplingParams params;  // temperature 1, nothing else: must match the softmax itself
  const std::vector<int64_t> counts = draw(params, 2024);
  int df = 0;
  const double stat = chi2(counts, expected_distribution(1.0, 0, 1.0, 0.0), &df);
  EXPECT_LT(stat, chi2_critical(df));
  EXPECT_EQ(df, static_cast<int>(kLogits.size()) - 1);
}

TEST(SamplerDistribution, Temperature) {
  check_case(0.7, 0, 1.0, 0.0, 1);
  check_case(2.0, 0, 1.0, 0.0, 2);
}

TEST(SamplerDistribution, TopK) { check_case(1.0, 4, 1.0, 0.0, 3); }

TEST(SamplerDistribution, TopP) {
  check_case(1.0, 0, 0.8, 0.0, 4);
  check_case(1.0, 0, 0.3, 0.0, 5);
}

TEST(SamplerDistribution, MinP) { check_case(1.0, 0, 1.0, 0.2, 6); }

TEST(SamplerDistribution, AllTogether) { check_case(1.5, 8, 0.9, 0.1, 7); }

}  // namespace
}  // namespace kite
