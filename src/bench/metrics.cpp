#include "bench/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>

namespace kite::bench {

std::string_view failure_kind_name(FailureKind kind) {
  switch (kind) {
    case FailureKind::kNone:
      return "none";
    case FailureKind::kHttpStatus:
      return "http_status";
    case FailureKind::kConnect:
      return "connect";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kStreamError:
      return "stream_error";
    case FailureKind::kProtocol:
      return "protocol";
    case FailureKind::kRejected:
      return "rejected";
  }
  return "unknown";
}

std::string failure_key(const RequestSample& s) {
  if (s.failure == FailureKind::kHttpStatus) return fmt::format("http_{}", s.http_status);
  return std::string(failure_kind_name(s.failure));
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<double> parse_duration_ms(std::string_view text, double bare_unit_ms) {
  std::string_view t = trim(text);
  size_t unit_pos = t.size();
  while (unit_pos > 0 && std::isalpha(static_cast<unsigned char>(t[unit_pos - 1]))) --unit_pos;
  std::string_view number = trim(t.substr(0, unit_pos));
  std::string_view unit = t.substr(unit_pos);
  double scale = bare_unit_ms;
  if (unit == "us") {
    scale = 1e-3;
  } else if (unit == "ms") {
    scale = 1.0;
  } else if (unit == "s") {
    scale = 1e3;
  } else if (unit == "m" || unit == "min") {
    scale = 60e3;
  } else if (!unit.empty()) {
    return invalid_argument(
        fmt::format("unknown time unit '{}' in '{}' (use us, ms, s or m)", unit, text));
  }
  double value = 0.0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() ||
      !std::isfinite(value)) {
    return invalid_argument(fmt::format("'{}' is not a duration (e.g. 20ms, 1s)", text));
  }
  if (value < 0) return invalid_argument(fmt::format("duration '{}' is negative", text));
  return value * scale;
}

Result<Slo> parse_slo(std::string_view text) {
  Slo slo;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find_first_of("=:");
    if (eq == std::string_view::npos) {
      return invalid_argument(
          fmt::format("SLO item '{}' is not key=value (e.g. ttft=500ms,tpot=50ms)", item));
    }
    std::string_view key = trim(item.substr(0, eq));
    KITE_ASSIGN_OR_RETURN(double ms, parse_duration_ms(item.substr(eq + 1)));
    if (key == "ttft") {
      slo.ttft_ms = ms;
    } else if (key == "tpot") {
      slo.tpot_ms = ms;
    } else if (key == "e2e" || key == "e2el") {
      slo.e2e_ms = ms;
    } else {
      return invalid_argument(fmt::format("unknown SLO metric '{}' (use ttft, tpot or e2e)", key));
    }
  }
  if (slo.empty()) return invalid_argument(fmt::format("empty SLO '{}'", text));
  return slo;
}

bool meets_slo(const RequestSample& s, const Slo& slo) {
  if (!s.success) return false;
  if (slo.ttft_ms && s.ttft_s * 1e3 > *slo.ttft_ms) return false;
  // A request without a TPOT (fewer than two tokens) cannot violate a TPOT bound.
  if (slo.tpot_ms && s.has_tpot() && s.tpot_s() * 1e3 > *slo.tpot_ms) return false;
  if (slo.e2e_ms && s.e2e_s * 1e3 > *slo.e2e_ms) return false;
  return true;
}

namespace {

// The most intervals [start, start + e2e] that overlap at one instant (ends before starts at
// equal times: a request that ends as another starts does not overlap it).
int64_t max_overlap(const std::vector<RequestSample>& samples) {
  std::vector<std::pair<double, int>> events;
  events.reserve(samples.size() * 2);
  for (const RequestSample& s : samples) {
    events.emplace_back(s.start_s, +1);
    events.emplace_back(s.start_s + s.e2e_s, -1);
  }
  std::sort(events.begin(), events.end());
  int64_t cur = 0;
  int64_t best = 0;
  for (const auto& [t, delta] : events) {
    cur += delta;
    best = std::max(best, cur);
  }
  return best;
}

}  // namespace

BenchmarkMetrics compute_metrics(const std::vector<RequestSample>& samples, double duration_s,
                                 const Slo& slo, const std::vector<double>& percentiles) {
  BenchmarkMetrics m;
  m.duration_s = duration_s;
  m.num_requests = static_cast<int64_t>(samples.size());
  std::vector<double> ttft, tpot, itl, e2e;
  for (const RequestSample& s : samples) {
    if (!s.success) {
      ++m.failed;
      ++m.failures[failure_key(s)];
      if (m.failure_examples.size() < 5 &&
          std::find(m.failure_examples.begin(), m.failure_examples.end(), s.error) ==
              m.failure_examples.end()) {
        m.failure_examples.push_back(s.error);
      }
      continue;
    }
    ++m.completed;
    m.total_input_tokens += s.prompt_tokens;
    m.total_output_tokens += s.output_tokens;
    ttft.push_back(s.ttft_s * 1e3);
    e2e.push_back(s.e2e_s * 1e3);
    if (s.has_tpot()) tpot.push_back(s.tpot_s() * 1e3);
    for (double gap : s.itl_s) itl.push_back(gap * 1e3);
    if (!s.usage_reported) ++m.usage_missing;
    if (s.expected_prompt_tokens >= 0 && s.usage_reported &&
        s.prompt_tokens != s.expected_prompt_tokens) {
      ++m.prompt_token_mismatches;
    }
    if (s.expected_output_tokens >= 0 && s.output_tokens != s.expected_output_tokens) {
      ++m.output_token_mismatches;
    }
    if (!slo.empty() && meets_slo(s, slo)) ++m.good_requests;
  }
  m.ttft_ms = summarize(std::move(ttft), percentiles);
  m.tpot_ms = summarize(std::move(tpot), percentiles);
  m.itl_ms = summarize(std::move(itl), percentiles);
  m.e2e_ms = summarize(std::move(e2e), percentiles);
  m.max_concurrency_observed = max_overlap(samples);
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.input_throughput = static_cast<double>(m.total_input_tokens) / duration_s;
    m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
    m.total_token_throughput =
        static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
    if (!slo.empty()) m.goodput = static_cast<double>(m.good_requests) / duration_s;
  } else if (!slo.empty()) {
    m.goodput = 0.0;
  }
  return m;
}

}  // namespace kite::bench
