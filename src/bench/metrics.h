// Aggregate metrics of a benchmark run from its per-request samples: throughput, latency
// distributions (TTFT, TPOT, ITL, E2E, in milliseconds), goodput under SLOs, failure counts and
// the token-count check.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/request_sample.h"
#include "bench/stats.h"
#include "kite/status.h"

namespace kite::bench {

// Service-level objectives: a completed request is "good" when every set bound holds (<=).
struct Slo {
  std::optional<double> ttft_ms;
  std::optional<double> tpot_ms;
  std::optional<double> e2e_ms;
  bool empty() const { return !ttft_ms && !tpot_ms && !e2e_ms; }
};

// Parses "ttft=500ms,tpot=50ms,e2e=10s". Units: us, ms, s, m (a bare number is ms, as in
// vLLM's --goodput). Unknown keys, bad numbers and negative values are kInvalidArgument.
Result<Slo> parse_slo(std::string_view text);

// Parses a duration with an optional unit ("20ms", "1s", "1.5", "250us", "2m") into ms; a
// bare number is `bare_unit_ms` ms.
Result<double> parse_duration_ms(std::string_view text, double bare_unit_ms = 1.0);

struct BenchmarkMetrics {
  double duration_s = 0.0;  // benchmark start to the end of the last request
  int64_t num_requests = 0;
  int64_t completed = 0;
  int64_t failed = 0;
  // Token totals over completed requests (the server's usage counts when it reported them).
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0.0;      // completed requests / s
  double input_throughput = 0.0;        // input tok/s
  double output_throughput = 0.0;       // output tok/s
  double total_token_throughput = 0.0;  // (input + output) tok/s
  Distribution ttft_ms;
  Distribution tpot_ms;  // requests with >= 2 output tokens
  Distribution itl_ms;   // every gap of every completed request
  Distribution e2e_ms;
  int64_t max_concurrency_observed = 0;  // most requests in flight at once
  // Goodput (set when an SLO was given): good requests / duration.
  std::optional<double> goodput;
  int64_t good_requests = 0;
  // failure_kind_name (HTTP status failures as "http_<code>") -> count.
  std::map<std::string, int64_t> failures;
  std::vector<std::string> failure_examples;  // the first few distinct error messages
  // Token-count check: completed requests whose counts differ from what was asked.
  int64_t prompt_token_mismatches = 0;
  int64_t output_token_mismatches = 0;
  int64_t usage_missing = 0;  // completed requests the server sent no usage for
};

// `duration_s` is the wall time of the run. `percentiles` (0..100) are reported for every
// latency distribution.
BenchmarkMetrics compute_metrics(const std::vector<RequestSample>& samples, double duration_s,
                                 const Slo& slo, const std::vector<double>& percentiles);

// Whether a completed request meets the SLO (every set bound, <=).
bool meets_slo(const RequestSample& s, const Slo& slo);

// The key a failure is counted under: "http_503", "timeout", "connect", ...
std::string failure_key(const RequestSample& s);

}  // namespace kite::bench
