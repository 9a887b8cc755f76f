// Request arrival times for load generation: a Poisson process (exponential gaps), a gamma
// renewal process for burstier or smoother traffic, or everything at t = 0.
//
// With rate r (requests/s) and burstiness b (gamma shape), gaps are Gamma(shape = b,
// scale = 1 / (r * b)): mean 1/r for every b, variance 1 / (r^2 b). b = 1 is Poisson; b < 1
// is burstier (clumps and long pauses), b > 1 is more regular. The same (rate, burstiness,
// seed) always gives the same times, on every platform: the generator is std::mt19937_64
// (fully specified by the standard) with our own transforms, not the standard library's
// implementation-defined distributions.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

// Uniform doubles in [0, 1) and the derived draws, reproducible across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  double uniform();                             // [0, 1), 53 random bits
  double exponential(double rate);              // mean 1 / rate
  double normal();                              // standard normal (Marsaglia polar method)
  double gamma(double shape, double scale);     // Marsaglia-Tsang; shape > 0
  int64_t uniform_int(int64_t lo, int64_t hi);  // inclusive bounds, lo <= hi

 private:
  uint64_t state_[312];
  int index_ = 312;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
  void twist();
};

struct ArrivalConfig {
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at 0
  double burstiness = 1.0;                                        // gamma shape; 1 = Poisson
  uint64_t seed = 0;
};

// Checks rate > 0 (inf allowed) and burstiness > 0, naming the flag.
Status validate(const ArrivalConfig& config);

// Send times (s, from the benchmark start) of `n` requests: the first at 0, each next one a
// gap later. REQUIRES: validate(config).ok().
std::vector<double> arrival_times(int64_t n, const ArrivalConfig& config);

}  // namespace kite::bench
