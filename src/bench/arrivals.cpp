#include "bench/arrivals.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace kite::bench {

// MT19937-64 as specified by the C++ standard ([rand.predef]: mt19937_64), written out so the
// draws we derive from it are ours and identical everywhere.
namespace {
constexpr int kN = 312;
constexpr int kM = 156;
constexpr uint64_t kMatrixA = 0xB5026F5AA96619E9ULL;
constexpr uint64_t kUpperMask = 0xFFFFFFFF80000000ULL;
constexpr uint64_t kLowerMask = 0x7FFFFFFFULL;
}  // namespace

Rng::Rng(uint64_t seed) {
  state_[0] = seed;
  for (int i = 1; i < kN; ++i) {
    state_[i] =
        6364136223846793005ULL * (state_[i - 1] ^ (state_[i - 1] >> 62)) + static_cast<uint64_t>(i);
  }
  index_ = kN;
}

void Rng::twist() {
  for (int i = 0; i < kN; ++i) {
    uint64_t x = (state_[i] & kUpperMask) | (state_[(i + 1) % kN] & kLowerMask);
    uint64_t xa = x >> 1;
    if (x & 1ULL) xa ^= kMatrixA;
    state_[i] = state_[(i + kM) % kN] ^ xa;
  }
  index_ = 0;
}

uint64_t Rng::next_u64() {
  if (index_ >= kN) twist();
  uint64_t x = state_[index_++];
  x ^= (x >> 29) & 0x5555555555555555ULL;
  x ^= (x << 17) & 0x71D67FFFEDA60000ULL;
  x ^= (x << 37) & 0xFFF7EEE000000000ULL;
  x ^= x >> 43;
  return x;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::exponential(double rate) {
  // 1 - U is in (0, 1], so the log is finite.
  return -std::log(1.0 - uniform()) / rate;
}

double Rng::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  spare_normal_ = v * f;
  has_spare_normal_ = true;
  return u * f;
}

double Rng::gamma(double shape, double scale) {
  KITE_CHECK(shape > 0 && scale > 0) << "gamma(" << shape << ", " << scale << ")";
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang 2000, section 6).
    const double u = 1.0 - uniform();  // (0, 1]
    return gamma(shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - uniform();  // (0, 1]
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  KITE_CHECK(lo <= hi) << lo << " > " << hi;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<int64_t>(next_u64());  // the full 64-bit range
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return lo + static_cast<int64_t>(x % span);
}

Status validate(const ArrivalConfig& config) {
  if (!(config.request_rate > 0)) {
    return invalid_argument(
        fmt::format("--request-rate must be > 0 (or inf), got {}", config.request_rate));
  }
  if (!(config.burstiness > 0) || std::isinf(config.burstiness)) {
    return invalid_argument(
        fmt::format("--burstiness must be a positive number, got {}", config.burstiness));
  }
  return ok_status();
}

std::vector<double> arrival_times(int64_t n, const ArrivalConfig& config) {
  KITE_CHECK(validate(config).ok());
  std::vector<double> times(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(config.request_rate)) return times;
  Rng rng(config.seed);
  const double scale = 1.0 / (config.request_rate * config.burstiness);
  double t = 0.0;
  const bool poisson = config.burstiness == 1.0;
  for (size_t i = 1; i < times.size(); ++i) {
    t += poisson ? rng.exponential(config.request_rate) : rng.gamma(config.burstiness, scale);
    times[i] = t;
  }
  return times;
}

}  // namespace kite::bench
