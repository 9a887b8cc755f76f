#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "bench/result.h"
#include "bench/svg_chart.h"
#include "bench/sweep.h"

namespace kite::bench {

namespace bj = boost::json;

Result<std::vector<LoadedResult>> load_results(const std::vector<std::string>& paths) {
  std::vector<LoadedResult> out;
  for (const std::string& p : paths) {
    KITE_ASSIGN_OR_RETURN(bj::object o, read_result(p));
    out.push_back({p, std::move(o)});
  }
  return out;
}

std::string run_name(const bj::object& r) {
  std::string label = get_string(r, "label", get_string(r, "engine.name", "?"));
  std::string workload = get_string(r, "workload.name");
  return workload.empty() ? label : label + " · " + workload;
}

namespace {

// The metrics a table row shows: a run's own, or a sweep's best point's.
const bj::object* row_metrics(const bj::object& r) {
  const bj::value* m = get_path(r, "metrics");
  return m && m->is_object() && !m->get_object().empty() ? &m->get_object() : nullptr;
}

std::string fmt_value(std::optional<double> v, int decimals) {
  if (!v || !std::isfinite(*v)) return "–";
  return fmt::format("{:.{}f}", *v, decimals);
}

std::optional<double> metric(const bj::object* m, std::string_view name) {
  if (m == nullptr) return std::nullopt;
  return lookup_metric(*m, name);
}

struct Column {
  std::string title;
  std::string metric;  // lookup_metric name
  int decimals;
};

const std::vector<Column>& summary_columns() {
  static const std::vector<Column> kColumns = {
      {"ok", "completed", 0},
      {"failed", "failed", 0},
      {"duration s", "duration_s", 2},
      {"req/s", "request_throughput", 2},
      {"output tok/s", "output_throughput", 1},
      {"total tok/s", "total_token_throughput", 1},
      {"TTFT mean ms", "ttft_mean", 1},
      {"TTFT median ms", "ttft_median", 1},
      {"TTFT p99 ms", "ttft_p99", 1},
      {"TPOT mean ms", "tpot_mean", 2},
      {"TPOT median ms", "tpot_median", 2},
      {"TPOT p99 ms", "tpot_p99", 2},
      {"ITL p99 ms", "itl_p99", 2},
      {"E2E mean ms", "e2e_mean", 1},
      {"goodput req/s", "goodput", 2},
  };
  return kColumns;
}

std::string sweep_row_suffix(const bj::object& r) {
  if (get_string(r, "kind") != "sweep") return "";
  std::string param = get_string(r, "sweep.parameter", "setting");
  std::optional<double> best = get_number(r, "sweep.best_value");
  if (!best) return " (sweep: no feasible point)";
  return fmt::format(" (best {}={:g})", param, *best);
}

std::string model_text(const bj::object& r) {
  std::string name = get_string(r, "model.name");
  std::string dtype = get_string(r, "model.dtype");
  if (!dtype.empty()) name += (name.empty() ? "" : " ") + dtype;
  return name;
}

std::string engine_text(const bj::object& r) {
  std::string e = get_string(r, "engine.name");
  std::string v = get_string(r, "engine.version");
  std::string c = get_string(r, "engine.commit");
  // kite's version string already starts with its name ("kite 0.1.0 (commit ...)").
  if (!v.empty()) e = v.starts_with(e + " ") ? v : e + " " + v;
  if (!c.empty() && c != "unknown") e += " (" + c + ")";
  return e;
}

std::string hardware_text(const bj::object& r) {
  const bj::value* gpus = get_path(r, "environment.gpus");
  if (gpus && gpus->is_array() && !gpus->get_array().empty() && gpus->get_array()[0].is_object()) {
    const bj::object& g = gpus->get_array()[0].get_object();
    std::string name = get_string(g, "name");
    if (gpus->get_array().size() > 1) {
      name = fmt::format("{} x {}", gpus->get_array().size(), name);
    }
    return name;
  }
  return get_string(r, "environment.cpu", "unknown CPU");
}

bool is_run(const bj::object& r) {
  std::string kind = get_string(r, "kind");
  return kind == "throughput" || kind == "serve";
}

// Labels and workloads in first-seen order.
template <typename F>
std::vector<std::string> ordered_unique(const std::vector<LoadedResult>& rs, F key) {
  std::vector<std::string> out;
  for (const LoadedResult& r : rs) {
    std::string k = key(r.json);
    if (!k.empty() && std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  return out;
}

std::string label_of(const bj::object& r) {
  return get_string(r, "label", get_string(r, "engine.name", "?"));
}

// ---- Charts ----

std::string figure(const Chart& c) {
  return "<figure>\n" + c.svg + "<figcaption>" + xml_escape(c.caption) +
         "</figcaption>\n</figure>\n";
}

// "kite · W2 sweep" -> "kite-w2-sweep": file names for standalone charts.
std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "chart" : out;
}

std::optional<Chart> throughput_by_workload_chart(const std::vector<LoadedResult>& rs) {
  std::vector<LoadedResult> runs;
  for (const LoadedResult& r : rs) {
    if (is_run(r.json) && row_metrics(r.json)) runs.push_back(r);
  }
  if (runs.empty()) return std::nullopt;
  BarChart c;
  c.title = "Output throughput by workload";
  c.y_label = "output tokens/s";
  c.series_names = ordered_unique(runs, label_of);
  for (const std::string& w : ordered_unique(
           runs, [](const bj::object& r) { return get_string(r, "workload.name", "custom"); })) {
    BarChart::Group g;
    g.category = w;
    for (const std::string& label : c.series_names) {
      std::optional<double> v;
      for (const LoadedResult& r : runs) {
        if (label_of(r.json) == label && get_string(r.json, "workload.name", "custom") == w) {
          v = metric(row_metrics(r.json), "output_throughput");
        }
      }
      g.values.push_back(v);
    }
    c.groups.push_back(std::move(g));
  }
  return Chart{"throughput-by-workload", render_svg(c),
               "Output tokens per second of every run, grouped by workload."};
}

// Throughput against a latency metric: single runs as markers (one series per label), sweeps
// as connected curves (one series per sweep).
std::optional<Chart> throughput_vs_latency_chart(const std::vector<LoadedResult>& rs,
                                                 std::string_view latency,
                                                 std::string_view latency_title) {
  LineChart c;
  c.title = fmt::format("Output throughput vs {}", latency_title);
  c.x_label = fmt::format("{} (ms)", latency_title);
  c.y_label = "output tokens/s";
  std::map<std::string, size_t> by_label;
  for (const LoadedResult& r : rs) {
    if (is_run(r.json)) {
      const bj::object* m = row_metrics(r.json);
      std::optional<double> x = metric(m, latency), y = metric(m, "output_throughput");
      if (!x || !y) continue;
      std::string label = label_of(r.json);
      auto [it, inserted] = by_label.try_emplace(label, c.series.size());
      if (inserted) c.series.push_back({label, {}, false, true, {}});
      c.series[it->second].points.emplace_back(*x, *y);
      c.series[it->second].point_notes.push_back(get_string(r.json, "workload.name"));
    } else if (get_string(r.json, "kind") == "sweep") {
      const bj::value* pts = get_path(r.json, "sweep.points");
      if (!pts || !pts->is_array()) continue;
      ChartSeries s{run_name(r.json) + " sweep", {}, true, true, {}};
      std::vector<std::tuple<double, double, double>> xyv;
      for (const bj::value& p : pts->get_array()) {
        if (!p.is_object()) continue;
        const bj::value* m = get_path(p.get_object(), "metrics");
        if (!m || !m->is_object()) continue;
        std::optional<double> x = lookup_metric(m->get_object(), latency);
        std::optional<double> y = lookup_metric(m->get_object(), "output_throughput");
        std::optional<double> v = get_number(p.get_object(), "value");
        if (x && y && v) xyv.emplace_back(*v, *x, *y);
      }
      std::sort(xyv.begin(), xyv.end());
      std::string param = get_string(r.json, "sweep.parameter", "setting");
      for (const auto& [v, x, y] : xyv) {
        s.points.emplace_back(x, y);
        s.point_notes.push_back(fmt::format("{}={:g}", param, v));
      }
      if (!s.points.empty()) c.series.push_back(std::move(s));
    }
  }
  if (c.series.empty()) return std::nullopt;
  return Chart{"throughput-vs-" + slug(latency_title), render_svg(c),
               fmt::format("Each marker is one run; sweeps are curves through their settings "
                           "(hover a point for its workload or setting). x: mean {}.",
                           latency_title)};
}

// Empirical CDF of a per-request field of the samples, at most ~200 points per series.
std::vector<std::pair<double, double>> cdf_points(std::vector<double> v) {
  std::vector<std::pair<double, double>> pts;
  if (v.empty()) return pts;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const size_t step = std::max<size_t>(1, n / 200);
  for (size_t i = 0; i < n; i += step) {
    pts.emplace_back(v[i], static_cast<double>(i + 1) / static_cast<double>(n));
  }
  if (pts.back().second < 1.0) pts.emplace_back(v.back(), 1.0);
  return pts;
}

std::optional<Chart> cdf_chart(const std::vector<LoadedResult>& rs, std::string_view field,
                               std::string_view title, size_t max_series) {
  LineChart c;
  c.title = fmt::format("{} distribution (CDF)", title);
  c.x_label = fmt::format("{} (ms)", title);
  c.y_label = "fraction of requests";
  if (field == "itl_ms") c.y_label = "fraction of token gaps";
  for (const LoadedResult& r : rs) {
    if (c.series.size() >= max_series) break;
    const bj::value* samples = get_path(r.json, "samples");
    if (!samples || !samples->is_array()) continue;
    std::vector<double> vals;
    for (const bj::value& s : samples->get_array()) {
      if (!s.is_object()) continue;
      const bj::value* v = get_path(s.get_object(), field);
      if (v == nullptr) continue;
      if (v->is_array()) {
        for (const bj::value& x : v->get_array()) {
          if (auto d = read_number_or_inf(x)) vals.push_back(*d);
        }
      } else if (auto d = read_number_or_inf(*v)) {
        const bj::value* ok = get_path(s.get_object(), "ok");
        if (!ok || !ok->is_bool() || ok->get_bool()) vals.push_back(*d);
      }
    }
    if (vals.empty()) continue;
    c.series.push_back({run_name(r.json), cdf_points(std::move(vals)), true, false, {}});
  }
  if (c.series.empty()) return std::nullopt;
  return Chart{"cdf-" + slug(title), render_svg(c),
               fmt::format("Per-request {} of every run that saved samples.", title)};
}

// W4: wall time of the whole batch against the batch size, one curve per engine label.
std::optional<Chart> batch_time_chart(const std::vector<LoadedResult>& rs) {
  LineChart c;
  c.title = "Offline batch wall time (W4)";
  c.x_label = "batch size (requests)";
  c.y_label = "wall time of the batch (s)";
  c.log_x = true;
  std::map<std::string, size_t> by_label;
  std::set<double> ticks;
  for (const LoadedResult& r : rs) {
    if (!is_run(r.json) || get_string(r.json, "workload.preset") != "W4") continue;
    std::optional<double> b = get_number(r.json, "workload.num_prompts");
    std::optional<double> t = metric(row_metrics(r.json), "duration_s");
    if (!b || !t) continue;
    std::string label = label_of(r.json);
    auto [it, inserted] = by_label.try_emplace(label, c.series.size());
    if (inserted) c.series.push_back({label, {}, true, true, {}});
    c.series[it->second].points.emplace_back(*b, *t);
    ticks.insert(*b);
  }
  if (c.series.empty()) return std::nullopt;
  for (ChartSeries& s : c.series) std::sort(s.points.begin(), s.points.end());
  c.x_ticks.assign(ticks.begin(), ticks.end());
  return Chart{"w4-batch-time", render_svg(c),
               "Wall time to finish a batch of chat prompts (128 new tokens)."};
}

std::vector<Chart> sweep_charts(const LoadedResult& r) {
  const bj::object& o = r.json;
  const bj::value* pts = get_path(o, "sweep.points");
  if (!pts || !pts->is_array()) return {};
  const std::string param = get_string(o, "sweep.parameter", "setting");
  const std::string objective = get_string(o, "sweep.objective", "output_throughput");
  std::vector<Constraint> constraints;
  if (const bj::value* cs = get_path(o, "sweep.constraints"); cs && cs->is_array()) {
    for (const bj::value& c : cs->get_array()) {
      if (!c.is_string()) continue;
      Result<Constraint> parsed = parse_constraint(c.get_string());
      if (parsed.ok()) constraints.push_back(*parsed);
    }
  }
  std::vector<std::pair<double, const bj::object*>> points;
  for (const bj::value& p : pts->get_array()) {
    if (!p.is_object()) continue;
    std::optional<double> v = get_number(p.get_object(), "value");
    const bj::value* m = get_path(p.get_object(), "metrics");
    if (v && std::isfinite(*v) && m && m->is_object()) points.emplace_back(*v, &m->get_object());
  }
  if (points.empty()) return {};
  std::sort(points.begin(), points.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::optional<double> best = get_number(o, "sweep.best_value");
  const bool log_x = points.size() > 2 && points.front().first > 0 &&
                     points.back().first / points.front().first >= 16;
  std::vector<double> ticks;
  for (const auto& p : points) ticks.push_back(p.first);

  auto chart_for = [&](const std::string& m, const std::string& ytitle,
                       const std::vector<RefLine>& refs) {
    LineChart c;
    c.title = fmt::format("{}: {} vs {}", run_name(o), m, param);
    c.x_label = param;
    c.y_label = ytitle;
    c.log_x = log_x;
    if (ticks.size() <= 12) c.x_ticks = ticks;
    ChartSeries s{m, {}, true, true, {}};
    for (const auto& [v, metrics] : points) {
      if (auto y = lookup_metric(*metrics, m)) s.points.emplace_back(v, *y);
    }
    for (const auto& [x, y] : s.points) {
      if (best && x == *best) {
        c.highlight = std::make_pair(x, y);
        c.highlight_label = fmt::format("best {}={:g}", param, x);
      }
    }
    c.series.push_back(std::move(s));
    c.ref_lines = refs;
    return render_svg(c);
  };
  const std::string stem = "sweep-" + slug(run_name(o));
  std::vector<Chart> charts;
  charts.push_back(
      {stem + "-" + slug(objective), chart_for(objective, objective, {}),
       fmt::format("Objective {} at each {}; the ring marks the best feasible setting.", objective,
                   param)});
  for (const Constraint& c : constraints) {
    const std::string ytitle = is_latency_metric(c.metric) ? c.metric + " (ms)" : c.metric;
    charts.push_back({stem + "-" + slug(c.metric),
                      chart_for(c.metric, ytitle, {{true, c.value, "SLO " + c.text}}),
                      fmt::format("{} at each {}; the dashed line is the constraint {}.", c.metric,
                                  param, c.text)});
  }
  return charts;
}

// ---- Tables ----

std::string html_escape(std::string_view s) { return xml_escape(s); }

std::string summary_table_html(const std::vector<LoadedResult>& rs) {
  std::string h =
      "<table class=\"summary\">\n<thead><tr><th>run</th><th>engine</th>"
      "<th>model</th><th>hardware</th>";
  for (const Column& c : summary_columns()) h += "<th>" + html_escape(c.title) + "</th>";
  h += "</tr></thead>\n<tbody>\n";
  for (const LoadedResult& r : rs) {
    const bj::object* m = row_metrics(r.json);
    if (m == nullptr || !(is_run(r.json) || get_string(r.json, "kind") == "sweep")) continue;
    h += "<tr><td>" + html_escape(run_name(r.json) + sweep_row_suffix(r.json)) + "</td><td>" +
         html_escape(engine_text(r.json)) + "</td><td>" + html_escape(model_text(r.json)) +
         "</td><td>" + html_escape(hardware_text(r.json)) + "</td>";
    for (const Column& c : summary_columns()) {
      h += "<td class=\"num\">" + fmt_value(metric(m, c.metric), c.decimals) + "</td>";
    }
    h += "</tr>\n";
  }
  h += "</tbody>\n</table>\n";
  return h;
}

std::string sweep_table_html(const LoadedResult& r) {
  const bj::object& o = r.json;
  const bj::value* pts = get_path(o, "sweep.points");
  if (!pts || !pts->is_array()) return "";
  const std::string param = get_string(o, "sweep.parameter", "setting");
  const std::string objective = get_string(o, "sweep.objective", "output_throughput");
  std::vector<std::string> cols = {objective};
  if (const bj::value* cs = get_path(o, "sweep.constraints"); cs && cs->is_array()) {
    for (const bj::value& c : cs->get_array()) {
      if (!c.is_string()) continue;
      Result<Constraint> parsed = parse_constraint(c.get_string());
      if (parsed.ok() && std::find(cols.begin(), cols.end(), parsed->metric) == cols.end()) {
        cols.push_back(parsed->metric);
      }
    }
  }
  std::string h = "<table class=\"sweep\">\n<thead><tr><th>" + html_escape(param) + "</th>";
  for (const std::string& c : cols) h += "<th>" + html_escape(c) + "</th>";
  h += "<th>feasible</th><th>note</th></tr></thead>\n<tbody>\n";
  std::optional<double> best = get_number(o, "sweep.best_value");
  for (const bj::value& p : pts->get_array()) {
    if (!p.is_object()) continue;
    const bj::object& po = p.get_object();
    std::optional<double> v = get_number(po, "value");
    const bj::value* m = get_path(po, "metrics");
    const bool is_best = best && v && *v == *best;
    h += is_best ? "<tr class=\"best\">" : "<tr>";
    h += "<td class=\"num\">" + (v ? fmt::format("{:g}", *v) : std::string("?")) + "</td>";
    for (const std::string& c : cols) {
      std::optional<double> x;
      if (m && m->is_object()) x = lookup_metric(m->get_object(), c);
      h += "<td class=\"num\">" + fmt_value(x, 2) + "</td>";
    }
    const bj::value* f = get_path(po, "feasible");
    h += std::string("<td>") + (f && f->is_bool() && f->get_bool() ? "yes" : "no") + "</td>";
    h += "<td>" + html_escape(is_best ? std::string("best") : get_string(po, "error")) +
         "</td></tr>\n";
  }
  h += "</tbody>\n</table>\n";
  std::string reason = get_string(o, "sweep.reason");
  if (!best) h += "<p class=\"warning\">No feasible point: " + html_escape(reason) + "</p>\n";
  return h;
}

struct StartupField {
  const char* key;
  const char* title;
  double scale;
  int decimals;
};
constexpr StartupField kStartupFields[] = {
    {"time_to_health_s", "to /health (s)", 1.0, 2},
    {"time_to_first_token_s", "to first token (s)", 1.0, 2},
    {"first_request_ttft_ms", "first request TTFT (ms)", 1.0, 1},
    {"binary_size_bytes", "binary (MB)", 1e-6, 1},
    {"peak_rss_bytes", "peak host memory (MB)", 1e-6, 1},
};

std::string startup_table_html(const std::vector<LoadedResult>& rs) {
  std::string rows;
  for (const LoadedResult& r : rs) {
    if (get_string(r.json, "kind") != "startup") continue;
    rows += "<tr><td>" + html_escape(run_name(r.json)) + "</td>";
    for (const StartupField& f : kStartupFields) {
      std::optional<double> v = get_number(r.json, std::string("startup.") + f.key);
      if (v) *v *= f.scale;
      rows += "<td class=\"num\">" + fmt_value(v, f.decimals) + "</td>";
    }
    rows += "</tr>\n";
  }
  if (rows.empty()) return "";
  std::string h = "<table class=\"startup\">\n<thead><tr><th>run</th>";
  for (const StartupField& f : kStartupFields) h += std::string("<th>") + f.title + "</th>";
  return h + "</tr></thead>\n<tbody>\n" + rows + "</tbody>\n</table>\n";
}

std::string notes_html(const std::vector<LoadedResult>& rs) {
  std::string items;
  for (const LoadedResult& r : rs) {
    const bj::value* notes = get_path(r.json, "notes");
    if (!notes || !notes->is_array()) continue;
    for (const bj::value& n : notes->get_array()) {
      if (n.is_string()) {
        items += "<li><b>" + html_escape(run_name(r.json)) +
                 "</b>: " + html_escape(std::string(n.get_string())) + "</li>\n";
      }
    }
    const bj::value* fails = get_path(r.json, "failures.by_kind");
    if (fails && fails->is_object() && !fails->get_object().empty()) {
      std::string what;
      for (const auto& kv : fails->get_object()) {
        what += fmt::format("{}{} × {}", what.empty() ? "" : ", ", std::string(kv.key()),
                            read_number_or_inf(kv.value()).value_or(0));
      }
      items += "<li><b>" + html_escape(run_name(r.json)) + "</b>: failures: " + html_escape(what) +
               "</li>\n";
    }
  }
  return items.empty() ? "" : "<ul class=\"notes\">\n" + items + "</ul>\n";
}

std::string environment_html(const std::vector<LoadedResult>& rs) {
  std::set<std::string> seen;
  std::string rows;
  for (const LoadedResult& r : rs) {
    std::string hw = hardware_text(r.json);
    std::string cpu = get_string(r.json, "environment.cpu");
    std::string os = get_string(r.json, "environment.os");
    std::string key = hw + "|" + cpu + "|" + os;
    if (!seen.insert(key).second) continue;
    rows += "<tr><td>" + html_escape(hw) + "</td><td>" + html_escape(cpu) + "</td><td>" +
            html_escape(os) + "</td></tr>\n";
  }
  return "<table class=\"environment\">\n<thead><tr><th>accelerator</th><th>CPU</th><th>OS</th>"
         "</tr></thead>\n<tbody>\n" +
         rows + "</tbody>\n</table>\n";
}

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #e8f5e9; font-weight: bold; }
figure { margin: 1.5em 0; }
figcaption { font-size: 12px; color: #555; }
.warning { color: #b00; }
)";

std::string now_utc() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// Markdown cells must not contain pipes.
std::string md_cell(std::string s) {
  for (char& c : s) {
    if (c == '|') c = '/';
  }
  return s;
}

}  // namespace

static std::vector<Chart> summary_charts(const std::vector<LoadedResult>& rs,
                                         const ReportOptions& opt) {
  std::vector<Chart> out;
  for (auto& c :
       {throughput_by_workload_chart(rs), throughput_vs_latency_chart(rs, "tpot_mean", "TPOT"),
        throughput_vs_latency_chart(rs, "ttft_mean", "TTFT"), batch_time_chart(rs),
        cdf_chart(rs, "ttft_ms", "TTFT", opt.max_cdf_series),
        cdf_chart(rs, "tpot_ms", "TPOT", opt.max_cdf_series),
        cdf_chart(rs, "itl_ms", "ITL", opt.max_cdf_series),
        cdf_chart(rs, "e2e_ms", "E2E latency", opt.max_cdf_series)}) {
    if (c) out.push_back(*c);
  }
  return out;
}

std::vector<Chart> render_charts(const std::vector<LoadedResult>& rs, const ReportOptions& opt) {
  std::vector<Chart> out = summary_charts(rs, opt);
  std::set<std::string> names;
  for (const Chart& c : out) names.insert(c.name);
  for (const LoadedResult& r : rs) {
    if (get_string(r.json, "kind") != "sweep") continue;
    for (Chart& c : sweep_charts(r)) {
      // Two sweeps with the same label and workload: number the later ones.
      std::string name = c.name;
      for (int i = 2; names.count(name); ++i) name = fmt::format("{}-{}", c.name, i);
      names.insert(name);
      c.name = name;
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::string render_html_report(const std::vector<LoadedResult>& rs, const ReportOptions& opt) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  h += "<title>" + html_escape(opt.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n";
  h += "<body>\n<h1>" + html_escape(opt.title) + "</h1>\n";
  h += fmt::format("<p class=\"meta\">Generated {} from {} result file{}.</p>\n", now_utc(),
                   rs.size(), rs.size() == 1 ? "" : "s");
  h += "<section id=\"environment\">\n<h2>Environment</h2>\n" + environment_html(rs) +
       "</section>\n";
  h += "<section id=\"summary\">\n<h2>Summary</h2>\n" + summary_table_html(rs) + "</section>\n";
  std::string charts;
  for (const Chart& c : summary_charts(rs, opt)) charts += figure(c);
  if (!charts.empty()) h += "<section id=\"charts\">\n<h2>Charts</h2>\n" + charts + "</section>\n";
  std::string sweeps;
  for (const LoadedResult& r : rs) {
    if (get_string(r.json, "kind") != "sweep") continue;
    std::string cons;
    if (const bj::value* cs = get_path(r.json, "sweep.constraints"); cs && cs->is_array()) {
      for (const bj::value& c : cs->get_array()) {
        if (c.is_string()) cons += (cons.empty() ? "" : ", ") + std::string(c.get_string());
      }
    }
    sweeps +=
        "<h3>" + html_escape(run_name(r.json)) + "</h3>\n<p>" +
        html_escape(fmt::format(
            "{} {} over {} subject to {}",
            get_path(r.json, "sweep.maximize") && get_path(r.json, "sweep.maximize")->is_bool() &&
                    !get_path(r.json, "sweep.maximize")->get_bool()
                ? "minimize"
                : "maximize",
            get_string(r.json, "sweep.objective"), get_string(r.json, "sweep.parameter"),
            cons.empty() ? "nothing" : cons)) +
        "</p>\n" + sweep_table_html(r);
    for (const Chart& c : sweep_charts(r)) sweeps += figure(c);
  }
  if (!sweeps.empty()) h += "<section id=\"sweeps\">\n<h2>Sweeps</h2>\n" + sweeps + "</section>\n";
  std::string startup = startup_table_html(rs);
  if (!startup.empty()) {
    h += "<section id=\"startup\">\n<h2>Startup and footprint</h2>\n" + startup + "</section>\n";
  }
  std::string notes = notes_html(rs);
  if (!notes.empty()) h += "<section id=\"notes\">\n<h2>Notes</h2>\n" + notes + "</section>\n";
  h += "<section id=\"files\">\n<h2>Result files</h2>\n<ul>\n";
  for (const LoadedResult& r : rs) h += "<li>" + html_escape(r.path) + "</li>\n";
  h += "</ul>\n</section>\n</body>\n</html>\n";
  return h;
}

std::string render_markdown_report(const std::vector<LoadedResult>& rs) {
  std::string md = "| run | engine | model | hardware |";
  std::string sep = "| --- | --- | --- | --- |";
  for (const Column& c : summary_columns()) {
    md += " " + c.title + " |";
    sep += " ---: |";
  }
  md += "\n" + sep + "\n";
  for (const LoadedResult& r : rs) {
    const bj::object* m = row_metrics(r.json);
    if (m == nullptr || !(is_run(r.json) || get_string(r.json, "kind") == "sweep")) continue;
    md += fmt::format("| {} | {} | {} | {} |", md_cell(run_name(r.json) + sweep_row_suffix(r.json)),
                      md_cell(engine_text(r.json)), md_cell(model_text(r.json)),
                      md_cell(hardware_text(r.json)));
    for (const Column& c : summary_columns()) {
      md += fmt::format(" {} |", fmt_value(metric(m, c.metric), c.decimals));
    }
    md += "\n";
  }
  std::string startup;
  for (const LoadedResult& r : rs) {
    if (get_string(r.json, "kind") != "startup") continue;
    startup += fmt::format("| {} |", md_cell(run_name(r.json)));
    for (const StartupField& f : kStartupFields) {
      std::optional<double> v = get_number(r.json, std::string("startup.") + f.key);
      if (v) *v *= f.scale;
      startup += fmt::format(" {} |", fmt_value(v, f.decimals));
    }
    startup += "\n";
  }
  if (!startup.empty()) {
    md += "\n| startup run |";
    std::string s2 = "| --- |";
    for (const StartupField& f : kStartupFields) {
      md += std::string(" ") + f.title + " |";
      s2 += " ---: |";
    }
    md += "\n" + s2 + "\n" + startup;
  }
  for (const LoadedResult& r : rs) {
    if (get_string(r.json, "kind") != "sweep") continue;
    std::optional<double> best = get_number(r.json, "sweep.best_value");
    md += fmt::format("\n- Sweep {}: ", md_cell(run_name(r.json)));
    if (best) {
      md += fmt::format(
          "best {} = {:g} ({} = {})", get_string(r.json, "sweep.parameter"), *best,
          get_string(r.json, "sweep.objective"),
          fmt_value(metric(row_metrics(r.json), get_string(r.json, "sweep.objective")), 1));
    } else {
      md += "no feasible point (" + get_string(r.json, "sweep.reason") + ")";
    }
    md += "\n";
  }
  return md;
}

}  // namespace kite::bench
