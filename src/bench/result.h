// The result JSON every `kite bench` run writes (schema "kite-bench/1", documented in
// docs/benchmarks.md), and reading it back for plots, tables and sweeps. The Python peers
// (scripts/peers/) write the same schema.
//
// Top-level keys: schema, kind ("throughput" | "serve" | "sweep" | "startup"), label, created_utc,
// engine, environment, model, workload, config, metrics, slo, token_check, failures, samples,
// sweep, startup, notes. Latencies are milliseconds, throughputs per second, sizes bytes.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/metrics.h"
#include "bench/request_sample.h"
#include "kite/status.h"

namespace kite::bench {

inline constexpr std::string_view kResultSchema = "kite-bench/1";

// {"count", "mean", "std", "min", "max", "median", "p50", "p90", ...}
boost::json::object distribution_json(const Distribution& d);

// The "metrics" object: duration_s, counts, token totals, throughputs, ttft_ms / tpot_ms /
// itl_ms / e2e_ms distributions, max_concurrency_observed, goodput and good_requests.
boost::json::object metrics_json(const BenchmarkMetrics& m);
// {"by_kind": {"http_503": 2, ...}, "examples": [...]}
boost::json::object failures_json(const BenchmarkMetrics& m);
// {"checked", "prompt_mismatches", "output_mismatches", "usage_missing"}
boost::json::object token_check_json(const BenchmarkMetrics& m);
boost::json::object slo_json(const Slo& slo);

// Per-request records: {"start_s", "ok", "ttft_ms", "tpot_ms", "e2e_ms", "prompt_tokens",
// "output_tokens", "chunks", "error"?, "itl_ms"? (when include_itl)}.
boost::json::array samples_json(const std::vector<RequestSample>& samples, bool include_itl);

// A result with schema, kind, label, created_utc, environment (this machine) and the kite build
// that made it ("tool"). Callers add the rest.
boost::json::object new_result(std::string_view kind, std::string_view label);

// JSON numbers for values that may be infinite (request rates): the number, or "inf".
boost::json::value number_or_inf(double v);
// Reads such a value back (numbers, "inf"); nullopt for anything else.
std::optional<double> read_number_or_inf(const boost::json::value& v);

// Indented JSON with shortest round-trip numbers (NaN and infinities become null).
std::string pretty_json(const boost::json::value& v);

// Writes `result` to `path` (creating parent directories).
Status write_result(const boost::json::object& result, const std::string& path);
// Reads a result file; kInvalidArgument if it is not JSON or not of our schema family.
Result<boost::json::object> read_result(const std::string& path);

// Path-like lookup in nested objects: get_path(o, "workload.input_len").
const boost::json::value* get_path(const boost::json::object& o, std::string_view dotted);
std::optional<double> get_number(const boost::json::object& o, std::string_view dotted);
std::string get_string(const boost::json::object& o, std::string_view dotted,
                       std::string_view fallback = "");

}  // namespace kite::bench
