#include "bench/arrivals.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace kite::bench {
namespace {

TEST(Rng, IsTheStandardMt19937_64) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64.
  Rng rng(5489);
  uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = rng.next_u64();
  EXPECT_EQ(x, 9981545732273789042ULL);
  for (uint64_t seed : {0ULL, 1ULL, 42ULL, 0xdeadbeefULL}) {
    Rng ours(seed);
    std::mt19937_64 theirs(seed);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(ours.next_u64(), theirs()) << seed << " " << i;
  }
}

TEST(Rng, UniformIntStaysInBoundsAndHitsBoth) {
  Rng rng(3);
  bool lo = false, hi = false;
  for (int i = 0; i < 10000; ++i) {
    int64_t v = rng.uniform_int(-2, 5);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 5);
    lo |= v == -2;
    hi |= v == 5;
  }
  EXPECT_TRUE(lo && hi);
  EXPECT_EQ(rng.uniform_int(9, 9), 9);
}

// Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above):
// the CDF of Gamma(shape a, scale 1) at x.
double gamma_p(double a, double x) {
  if (x <= 0) return 0.0;
  const double log_prefix = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 1000 && std::abs(term) > 1e-16 * std::abs(sum); ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return sum * std::exp(log_prefix);
  }
  // Lentz's method for the continued fraction of Q(a, x).
  double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return 1.0 - std::exp(log_prefix) * h;
}

TEST(GammaCdf, MatchesClosedForms) {
  for (double x : {0.1, 0.5, 1.0, 2.0, 5.0, 20.0}) {
    EXPECT_NEAR(gamma_p(1, x), 1 - std::exp(-x), 1e-13) << x;
    EXPECT_NEAR(gamma_p(2, x), 1 - std::exp(-x) * (1 + x), 1e-13) << x;
    EXPECT_NEAR(gamma_p(0.5, x), std::erf(std::sqrt(x)), 1e-13) << x;
  }
}

// Kolmogorov-Smirnov statistic of a sample against a CDF.
template <typename Cdf>
double ks_statistic(std::vector<double> x, Cdf cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(x[i]);
    d = std::max({d, (i + 1) / n - f, f - i / n});
  }
  return d;
}

std::vector<double> gaps(const std::vector<double>& times) {
  std::vector<double> g;
  for (size_t i = 1; i < times.size(); ++i) g.push_back(times[i] - times[i - 1]);
  return g;
}

double mean(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v;
  return s / x.size();
}

double variance(const std::vector<double>& x) {
  const double m = mean(x);
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return s / (x.size() - 1);
}

// Thresholds. The seeds are fixed, so these tests are deterministic; the bounds are chosen so
// that a correct generator would fail them for only a tiny fraction of seeds, while the
// mistakes they guard against (rate off by 5%, wrong shape, scale not divided by b) exceed
// them many times over:
//  - moments within 5 standard errors of the estimator (two-sided p ~ 6e-7),
//  - the KS statistic below its alpha = 0.001 critical value 1.949 / sqrt(n).
constexpr int64_t kN = 50001;  // 50000 gaps

TEST(Arrivals, PoissonGapsAreExponentialWithTheRate) {
  const double rate = 4.0;
  std::vector<double> t = arrival_times(kN, {.request_rate = rate, .burstiness = 1.0, .seed = 7});
  ASSERT_EQ(t.size(), static_cast<size_t>(kN));
  EXPECT_EQ(t[0], 0.0);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  std::vector<double> g = gaps(t);
  const double n = static_cast<double>(g.size());
  // Exp(r): mean 1/r, sd 1/r; the sample variance has sd sqrt(8/n)/r^2 (4th central moment 9/r^4).
  EXPECT_NEAR(mean(g), 1 / rate, 5 * (1 / rate) / std::sqrt(n));
  EXPECT_NEAR(variance(g), 1 / (rate * rate), 5 * std::sqrt(8 / n) / (rate * rate));
  const double d = ks_statistic(g, [&](double x) { return 1 - std::exp(-rate * x); });
  EXPECT_LT(d, 1.949 / std::sqrt(n));
  // A 5% faster process is rejected by the same test: the check has teeth.
  const double d_wrong = ks_statistic(g, [&](double x) { return 1 - std::exp(-1.05 * rate * x); });
  EXPECT_GT(d_wrong, 1.949 / std::sqrt(n));

  // Counts per unit window are Poisson: index of dispersion var/mean ~ 1, sd ~ sqrt(2/(m-1)).
  const int64_t windows = static_cast<int64_t>(t.back());
  std::vector<double> counts(static_cast<size_t>(windows), 0.0);
  for (double x : t) {
    if (x < windows) counts[static_cast<size_t>(x)] += 1;
  }
  EXPECT_NEAR(mean(counts), rate, 5 * std::sqrt(rate / windows));
  EXPECT_NEAR(variance(counts) / mean(counts), 1.0, 5 * std::sqrt(2.0 / (windows - 1)));
}

TEST(Arrivals, GammaBurstinessKeepsTheRateAndSetsTheVariance) {
  const double rate = 10.0;
  for (double b : {0.25, 4.0}) {
    std::vector<double> g =
        gaps(arrival_times(kN, {.request_rate = rate, .burstiness = b, .seed = 11}));
    const double n = static_cast<double>(g.size());
    const double theta = 1 / (rate * b);  // scale
    const double sd = std::sqrt(b) * theta;
    EXPECT_NEAR(mean(g), 1 / rate, 5 * sd / std::sqrt(n)) << "b=" << b;
    // Gamma(k, theta): variance k theta^2; Var(s^2) ~ (mu4 - sigma^4)/n = (2k^2 + 6k) theta^4 / n.
    EXPECT_NEAR(variance(g), b * theta * theta,
                5 * std::sqrt((2 * b * b + 6 * b) / n) * theta * theta)
        << "b=" << b;
    const double d = ks_statistic(g, [&](double x) { return gamma_p(b, x / theta); });
    EXPECT_LT(d, 1.949 / std::sqrt(n)) << "b=" << b;
  }
}

TEST(Arrivals, SeedReproducibleAndInfiniteRateIsAllAtZero) {
  ArrivalConfig c{.request_rate = 2.0, .burstiness = 0.5, .seed = 99};
  EXPECT_EQ(arrival_times(100, c), arrival_times(100, c));
  ArrivalConfig other = c;
  other.seed = 100;
  EXPECT_NE(arrival_times(100, c), arrival_times(100, other));
  std::vector<double> inf = arrival_times(5, ArrivalConfig{});
  EXPECT_EQ(inf, std::vector<double>(5, 0.0));
  EXPECT_TRUE(arrival_times(0, c).empty());
}

TEST(Arrivals, ValidateNamesTheFlag) {
  EXPECT_TRUE(validate(ArrivalConfig{}).ok());
  Status s = validate({.request_rate = 0});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--request-rate"), std::string::npos);
  EXPECT_FALSE(validate({.request_rate = -1}).ok());
  EXPECT_FALSE(validate({.request_rate = std::nan("")}).ok());
  s = validate({.request_rate = 1, .burstiness = 0});
  EXPECT_NE(s.message().find("--burstiness"), std::string::npos);
}

}  // namespace
}  // namespace kite::bench
