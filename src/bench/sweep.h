// Parameter sweeps and the SLO-constrained search over their results:
//   --maximize output_throughput --subject-to tpot_mean<20ms
// Metric names are those of the result JSON's "metrics" object, flattened: throughputs and
// counts by their own key ("output_throughput", "request_throughput", "goodput", ...), latency
// statistics as <metric>_<stat> in milliseconds ("ttft_mean", "tpot_p99", "e2e_median",
// "itl_max"; stat: mean, median, std, min, max, p<N>).
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

enum class CompareOp { kLess, kLessEqual, kGreater, kGreaterEqual };

struct Constraint {
  std::string metric;  // flattened metric name
  CompareOp op = CompareOp::kLess;
  double value = 0.0;  // in the metric's unit (ms for latency metrics)
  std::string text;    // as written, for reports

  bool holds(double metric_value) const;
};

// Parses "tpot_mean<20ms", "ttft_p99 <= 1s", "output_throughput>=1000". Latency metrics take a
// duration (us, ms, s, m; bare numbers are ms); other metrics a plain number.
Result<Constraint> parse_constraint(std::string_view text);

// Whether `name` is a latency metric (<ttft|tpot|itl|e2e>_<stat>), measured in ms.
bool is_latency_metric(std::string_view name);

// Looks up a flattened metric name in a result's "metrics" object; nullopt when absent.
std::optional<double> lookup_metric(const boost::json::object& metrics, std::string_view name);

// Parses a grid: "1,2,4,8", or "START:STOP:*F" (geometric, e.g. "1:512:*2") or "START:STOP:+S"
// (arithmetic). Values must be finite and > 0 ("inf" is allowed for request rates when
// `allow_inf`); the result keeps the written order, without duplicates.
Result<std::vector<double>> parse_grid(std::string_view text, bool allow_inf = false);

// One evaluated point of a sweep.
struct SweepPoint {
  double value = 0.0;  // the swept setting
  bool ran = false;    // false: the run failed outright (see error)
  std::string error;
  boost::json::object metrics;  // the run's "metrics" object
};

struct SweepChoice {
  std::optional<size_t> best;  // index into the points, or nullopt if none is feasible
  std::vector<bool> feasible;  // per point: ran and every constraint holds
  std::string reason;          // why there is no best point (empty when there is)
};

// Picks the feasible point with the best objective (ties: the smaller setting). A constraint
// on a metric a point lacks makes the point infeasible.
SweepChoice choose_best(const std::vector<SweepPoint>& points, std::string_view objective,
                        bool maximize, const std::vector<Constraint>& constraints);

// Bisection refinement between the largest feasible setting and the smallest infeasible one
// above it (a response assumed monotone in the setting, as TPOT in batch size and TTFT in
// request rate are). Returns the next value to try, or nullopt when there is no such bracket,
// the bracket is narrower than `min_step`, or the midpoint was already tried.
std::optional<double> next_refinement(const std::vector<SweepPoint>& points,
                                      const std::vector<Constraint>& constraints, double min_step,
                                      bool integer);

}  // namespace kite::bench
