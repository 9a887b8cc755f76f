#include "bench/result.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "bench/environment.h"
#include "core/json_util.h"
#include "core/version.h"

namespace kite::bench {

namespace bj = boost::json;

bj::object distribution_json(const Distribution& d) {
  bj::object o;
  o["count"] = static_cast<int64_t>(d.count);
  o["mean"] = d.mean;
  o["std"] = d.std;
  o["min"] = d.min;
  o["max"] = d.max;
  o["median"] = d.median;
  for (const PercentileValue& pv : d.percentiles) o[percentile_key(pv.p)] = pv.value;
  return o;
}

bj::object metrics_json(const BenchmarkMetrics& m) {
  bj::object o;
  o["duration_s"] = m.duration_s;
  o["num_requests"] = m.num_requests;
  o["completed"] = m.completed;
  o["failed"] = m.failed;
  o["total_input_tokens"] = m.total_input_tokens;
  o["total_output_tokens"] = m.total_output_tokens;
  o["request_throughput"] = m.request_throughput;
  o["input_throughput"] = m.input_throughput;
  o["output_throughput"] = m.output_throughput;
  o["total_token_throughput"] = m.total_token_throughput;
  o["ttft_ms"] = distribution_json(m.ttft_ms);
  o["tpot_ms"] = distribution_json(m.tpot_ms);
  o["itl_ms"] = distribution_json(m.itl_ms);
  o["e2e_ms"] = distribution_json(m.e2e_ms);
  o["max_concurrency_observed"] = m.max_concurrency_observed;
  if (m.goodput) {
    o["goodput"] = *m.goodput;
    o["good_requests"] = m.good_requests;
  }
  return o;
}

bj::object failures_json(const BenchmarkMetrics& m) {
  bj::object by_kind;
  for (const auto& [k, v] : m.failures) by_kind[k] = v;
  bj::array examples;
  for (const std::string& e : m.failure_examples) examples.emplace_back(e);
  bj::object o;
  o["count"] = m.failed;
  o["by_kind"] = std::move(by_kind);
  o["examples"] = std::move(examples);
  return o;
}

bj::object token_check_json(const BenchmarkMetrics& m) {
  bj::object o;
  o["checked"] = m.completed;
  o["prompt_mismatches"] = m.prompt_token_mismatches;
  o["output_mismatches"] = m.output_token_mismatches;
  o["usage_missing"] = m.usage_missing;
  return o;
}

bj::object slo_json(const Slo& slo) {
  bj::object o;
  if (slo.ttft_ms) o["ttft_ms"] = *slo.ttft_ms;
  if (slo.tpot_ms) o["tpot_ms"] = *slo.tpot_ms;
  if (slo.e2e_ms) o["e2e_ms"] = *slo.e2e_ms;
  return o;
}

bj::array samples_json(const std::vector<RequestSample>& samples, bool include_itl) {
  bj::array a;
  a.reserve(samples.size());
  for (const RequestSample& s : samples) {
    bj::object o;
    o["start_s"] = s.start_s;
    o["ok"] = s.success;
    if (s.success) {
      o["ttft_ms"] = s.ttft_s * 1e3;
      if (s.has_tpot()) o["tpot_ms"] = s.tpot_s() * 1e3;
    } else {
      o["error"] = s.error;
      o["failure"] = failure_key(s);
    }
    o["e2e_ms"] = s.e2e_s * 1e3;
    o["prompt_tokens"] = s.prompt_tokens;
    o["output_tokens"] = s.output_tokens;
    o["chunks"] = s.num_chunks;
    if (include_itl && s.success) {
      bj::array itl;
      itl.reserve(s.itl_s.size());
      for (double g : s.itl_s) itl.emplace_back(g * 1e3);
      o["itl_ms"] = std::move(itl);
    }
    a.push_back(std::move(o));
  }
  return a;
}

namespace {

std::string utc_now_iso() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
  } else if (v == std::floor(v) && std::abs(v) < 1e15) {
    out += fmt::format("{:.1f}", v);  // keep it a float in JSON readers: 3.0, not 3
  } else {
    out += fmt::format("{}", v);
  }
}

void write_string(std::string& out, std::string_view s) { out += bj::serialize(bj::string(s)); }

// Arrays of scalars stay on one line (samples' itl_ms, value lists).
bool scalar_array(const bj::array& a) {
  for (const bj::value& v : a) {
    if (v.is_object() || v.is_array()) return false;
  }
  return true;
}

void write_pretty(std::string& out, const bj::value& v, int indent) {
  const std::string pad(static_cast<size_t>(indent) * 2, ' ');
  const std::string inner(static_cast<size_t>(indent + 1) * 2, ' ');
  switch (v.kind()) {
    case bj::kind::null:
      out += "null";
      break;
    case bj::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case bj::kind::int64:
      out += fmt::format("{}", v.get_int64());
      break;
    case bj::kind::uint64:
      out += fmt::format("{}", v.get_uint64());
      break;
    case bj::kind::double_:
      write_number(out, v.get_double());
      break;
    case bj::kind::string:
      write_string(out, v.get_string());
      break;
    case bj::kind::array: {
      const bj::array& a = v.get_array();
      if (a.empty()) {
        out += "[]";
      } else if (scalar_array(a)) {
        out += '[';
        for (size_t i = 0; i < a.size(); ++i) {
          if (i) out += ", ";
          write_pretty(out, a[i], indent + 1);
        }
        out += ']';
      } else {
        out += "[\n";
        for (size_t i = 0; i < a.size(); ++i) {
          out += inner;
          write_pretty(out, a[i], indent + 1);
          out += i + 1 < a.size() ? ",\n" : "\n";
        }
        out += pad + "]";
      }
      break;
    }
    case bj::kind::object: {
      const bj::object& o = v.get_object();
      if (o.empty()) {
        out += "{}";
        break;
      }
      out += "{\n";
      size_t i = 0;
      for (const auto& kv : o) {
        out += inner;
        write_string(out, kv.key());
        out += ": ";
        write_pretty(out, kv.value(), indent + 1);
        out += ++i < o.size() ? ",\n" : "\n";
      }
      out += pad + "}";
      break;
    }
  }
}

}  // namespace

bj::object new_result(std::string_view kind, std::string_view label) {
  bj::object r;
  r["schema"] = kResultSchema;
  r["kind"] = kind;
  r["label"] = label;
  r["created_utc"] = utc_now_iso();
  bj::object tool;
  tool["name"] = "kite bench";
  tool["version"] = KITE_VERSION_STRING;
  tool["commit"] = KITE_GIT_COMMIT;
  r["tool"] = std::move(tool);
  r["environment"] = environment_json();
  return r;
}

bj::value number_or_inf(double v) {
  if (std::isinf(v)) return v > 0 ? bj::value("inf") : bj::value("-inf");
  return bj::value(v);
}

std::optional<double> read_number_or_inf(const bj::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_string()) {
    if (v.get_string() == "inf") return INFINITY;
    if (v.get_string() == "-inf") return -INFINITY;
  }
  return std::nullopt;
}

std::string pretty_json(const bj::value& v) {
  std::string out;
  write_pretty(out, v, 0);
  out += '\n';
  return out;
}

Status write_result(const bj::object& result, const std::string& path) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec)
    return invalid_argument(
        fmt::format("cannot create {}: {}", p.parent_path().string(), ec.message()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return invalid_argument(fmt::format("cannot write {}", path));
    out << pretty_json(result);
    if (!out) return invalid_argument(fmt::format("error writing {}", path));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return invalid_argument(fmt::format("cannot write {}: {}", path, ec.message()));
  return ok_status();
}

Result<bj::object> read_result(const std::string& path) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse_file(path));
  if (!v.is_object()) return invalid_argument(fmt::format("{}: not a JSON object", path));
  bj::object& o = v.as_object();
  auto it = o.find("schema");
  if (it == o.end() || !it->value().is_string() ||
      !std::string_view(it->value().get_string()).starts_with("kite-bench/")) {
    return invalid_argument(
        fmt::format("{}: not a kite bench result (no \"schema\": \"kite-bench/...\")", path));
  }
  return std::move(o);
}

const bj::value* get_path(const bj::object& o, std::string_view dotted) {
  const bj::object* cur = &o;
  while (true) {
    size_t dot = dotted.find('.');
    std::string_view key = dotted.substr(0, dot);
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    if (dot == std::string_view::npos) return &it->value();
    if (!it->value().is_object()) return nullptr;
    cur = &it->value().get_object();
    dotted.remove_prefix(dot + 1);
  }
}

std::optional<double> get_number(const bj::object& o, std::string_view dotted) {
  const bj::value* v = get_path(o, dotted);
  return v ? read_number_or_inf(*v) : std::nullopt;
}

std::string get_string(const bj::object& o, std::string_view dotted, std::string_view fallback) {
  const bj::value* v = get_path(o, dotted);
  if (v && v->is_string()) return std::string(v->get_string());
  return std::string(fallback);
}

}  // namespace kite::bench
