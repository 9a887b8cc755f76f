#include "bench/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "bench/metrics.h"

namespace kite::bench {

namespace bj = boost::json;

namespace {

constexpr std::string_view kLatencyMetrics[] = {"ttft", "tpot", "itl", "e2e"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> as_number(const bj::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

bool valid_stat(std::string_view stat) {
  if (stat == "mean" || stat == "median" || stat == "std" || stat == "min" || stat == "max") {
    return true;
  }
  if (stat.size() < 2 || stat[0] != 'p') return false;
  double p = 0;
  auto [ptr, ec] = std::from_chars(stat.data() + 1, stat.data() + stat.size(), p);
  return ec == std::errc() && ptr == stat.data() + stat.size() && p >= 0 && p <= 100;
}

// "ttft_p99" -> ("ttft", "p99"); nullopt when not a latency metric name.
std::optional<std::pair<std::string_view, std::string_view>> split_latency(std::string_view name) {
  size_t us = name.find('_');
  if (us == std::string_view::npos) return std::nullopt;
  std::string_view metric = name.substr(0, us);
  std::string_view stat = name.substr(us + 1);
  if (std::find(std::begin(kLatencyMetrics), std::end(kLatencyMetrics), metric) ==
      std::end(kLatencyMetrics)) {
    return std::nullopt;
  }
  if (!valid_stat(stat)) return std::nullopt;
  return std::make_pair(metric, stat);
}

Result<double> parse_number(std::string_view text, std::string_view what) {
  std::string_view t = trim(text);
  double v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
    if (t == "inf" || t == "Inf" || t == "INF") return std::numeric_limits<double>::infinity();
    return invalid_argument(fmt::format("{}: '{}' is not a number", what, text));
  }
  return v;
}

}  // namespace

bool Constraint::holds(double v) const {
  switch (op) {
    case CompareOp::kLess:
      return v < value;
    case CompareOp::kLessEqual:
      return v <= value;
    case CompareOp::kGreater:
      return v > value;
    case CompareOp::kGreaterEqual:
      return v >= value;
  }
  return false;
}

bool is_latency_metric(std::string_view name) { return split_latency(name).has_value(); }

std::optional<double> lookup_metric(const bj::object& metrics, std::string_view name) {
  if (auto it = metrics.find(name); it != metrics.end()) return as_number(it->value());
  auto parts = split_latency(name);
  if (!parts) return std::nullopt;
  auto it = metrics.find(fmt::format("{}_ms", parts->first));
  if (it == metrics.end() || !it->value().is_object()) return std::nullopt;
  const bj::object& dist = it->value().get_object();
  auto count = dist.find("count");
  if (count != dist.end() && as_number(count->value()).value_or(0) == 0) return std::nullopt;
  auto stat = dist.find(parts->second);
  if (stat == dist.end()) return std::nullopt;
  return as_number(stat->value());
}

Result<Constraint> parse_constraint(std::string_view text) {
  std::string_view t = trim(text);
  size_t op_pos = t.find_first_of("<>");
  if (op_pos == std::string_view::npos || op_pos == 0) {
    return invalid_argument(fmt::format(
        "constraint '{}' is not METRIC<VALUE or METRIC>VALUE (e.g. tpot_mean<20ms)", text));
  }
  Constraint c;
  c.text = std::string(t);
  c.metric = std::string(trim(t.substr(0, op_pos)));
  const bool less = t[op_pos] == '<';
  const bool or_equal = op_pos + 1 < t.size() && t[op_pos + 1] == '=';
  c.op = less ? (or_equal ? CompareOp::kLessEqual : CompareOp::kLess)
              : (or_equal ? CompareOp::kGreaterEqual : CompareOp::kGreater);
  std::string_view value = trim(t.substr(op_pos + (or_equal ? 2 : 1)));
  if (value.empty()) return invalid_argument(fmt::format("constraint '{}' has no value", text));
  if (is_latency_metric(c.metric)) {
    Result<double> ms = parse_duration_ms(value);
    if (!ms.ok()) return ms.status().with_context(fmt::format("constraint '{}'", text));
    c.value = *ms;
  } else {
    if (c.metric.find_first_of(" \t<>=") != std::string::npos || c.metric.empty()) {
      return invalid_argument(fmt::format("constraint '{}': bad metric name", text));
    }
    KITE_ASSIGN_OR_RETURN(c.value, parse_number(value, fmt::format("constraint '{}'", text)));
  }
  return c;
}

Result<std::vector<double>> parse_grid(std::string_view text, bool allow_inf) {
  std::vector<double> out;
  auto add = [&](double v) -> Status {
    if (std::isnan(v) || v <= 0 || (std::isinf(v) && !allow_inf)) {
      return invalid_argument(fmt::format("grid '{}': values must be > 0{}, got {}", text,
                                          allow_inf ? " (or inf)" : "", v));
    }
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return ok_status();
  };
  std::string_view t = trim(text);
  if (t.empty()) return invalid_argument("empty grid");
  if (t.find(':') != std::string_view::npos) {
    size_t a = t.find(':');
    size_t b = t.find(':', a + 1);
    if (b == std::string_view::npos || b + 1 >= t.size()) {
      return invalid_argument(fmt::format(
          "grid '{}' is not START:STOP:*FACTOR or START:STOP:+STEP (e.g. 1:512:*2)", text));
    }
    KITE_ASSIGN_OR_RETURN(double start, parse_number(t.substr(0, a), "grid start"));
    KITE_ASSIGN_OR_RETURN(double stop, parse_number(t.substr(a + 1, b - a - 1), "grid stop"));
    const char kind = t[b + 1];
    KITE_ASSIGN_OR_RETURN(double step, parse_number(t.substr(b + 2), "grid step"));
    if (kind != '*' && kind != '+') {
      return invalid_argument(fmt::format("grid '{}': step must start with * or +", text));
    }
    if (!std::isfinite(start) || !std::isfinite(stop) || start <= 0 || stop < start) {
      return invalid_argument(fmt::format("grid '{}': need 0 < START <= STOP", text));
    }
    if ((kind == '*' && !(step > 1.0)) || (kind == '+' && !(step > 0.0)) || !std::isfinite(step)) {
      return invalid_argument(
          fmt::format("grid '{}': the factor must be > 1 and the step > 0", text));
    }
    // Tolerance so that 0.1-steps reach STOP despite rounding.
    const double eps = 1e-9 * std::max(1.0, stop);
    for (double v = start; v <= stop + eps && out.size() < 10000;
         v = kind == '*' ? v * step : v + step) {
      KITE_RETURN_IF_ERROR(add(std::min(v, stop)));
    }
    return out;
  }
  size_t pos = 0;
  while (pos <= t.size()) {
    size_t comma = t.find(',', pos);
    std::string_view item = t.substr(pos, comma == std::string_view::npos ? t.npos : comma - pos);
    KITE_ASSIGN_OR_RETURN(double v, parse_number(item, fmt::format("grid '{}'", text)));
    KITE_RETURN_IF_ERROR(add(v));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

SweepChoice choose_best(const std::vector<SweepPoint>& points, std::string_view objective,
                        bool maximize, const std::vector<Constraint>& constraints) {
  SweepChoice choice;
  choice.feasible.assign(points.size(), false);
  std::vector<std::string> violations;
  size_t num_ran = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    if (!p.ran) continue;
    ++num_ran;
    bool ok = true;
    for (const Constraint& c : constraints) {
      std::optional<double> v = lookup_metric(p.metrics, c.metric);
      if (!v || !c.holds(*v)) {
        ok = false;
        break;
      }
    }
    std::optional<double> obj = lookup_metric(p.metrics, objective);
    if (!obj) ok = false;
    choice.feasible[i] = ok;
    if (!ok) continue;
    if (!choice.best) {
      choice.best = i;
      continue;
    }
    const double best_obj = *lookup_metric(points[*choice.best].metrics, objective);
    const bool better = maximize ? *obj > best_obj : *obj < best_obj;
    const bool tie_smaller = *obj == best_obj && p.value < points[*choice.best].value;
    if (better || tie_smaller) choice.best = i;
  }
  if (!choice.best) {
    std::string what;
    for (const Constraint& c : constraints) what += (what.empty() ? "" : ", ") + c.text;
    if (points.empty()) {
      choice.reason = "no points were run";
    } else if (num_ran == 0) {
      choice.reason = "every run failed";
    } else if (constraints.empty()) {
      choice.reason = fmt::format("no run reported the objective '{}'", objective);
    } else {
      choice.reason = fmt::format("no point meets {} (or reports '{}')", what, objective);
    }
  }
  return choice;
}

std::optional<double> next_refinement(const std::vector<SweepPoint>& points,
                                      const std::vector<Constraint>& constraints, double min_step,
                                      bool integer) {
  auto feasible = [&](const SweepPoint& p) {
    if (!p.ran) return false;
    for (const Constraint& c : constraints) {
      std::optional<double> v = lookup_metric(p.metrics, c.metric);
      if (!v || !c.holds(*v)) return false;
    }
    return true;
  };
  std::optional<double> lo;  // largest feasible setting
  for (const SweepPoint& p : points) {
    if (std::isfinite(p.value) && feasible(p) && (!lo || p.value > *lo)) lo = p.value;
  }
  if (!lo) return std::nullopt;
  std::optional<double> hi;  // smallest infeasible setting above lo
  for (const SweepPoint& p : points) {
    if (p.value > *lo && std::isfinite(p.value) && !feasible(p) && (!hi || p.value < *hi)) {
      hi = p.value;
    }
  }
  if (!hi || *hi - *lo <= min_step) return std::nullopt;
  double mid = 0.5 * (*lo + *hi);
  if (integer) mid = std::floor(mid);
  if (mid <= *lo || mid >= *hi) return std::nullopt;
  for (const SweepPoint& p : points) {
    if (p.value == mid) return std::nullopt;
  }
  return mid;
}

}  // namespace kite::bench
