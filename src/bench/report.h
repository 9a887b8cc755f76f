// The benchmark report: `kite bench plot results/*.json --out report.html --markdown table.md`.
// Reads result JSON files (kite's and the peers'), and renders
//  - an HTML page with a summary table, inline SVG charts (output throughput by workload,
//    throughput vs TPOT and vs TTFT, latency CDFs, batch wall time, sweep curves with the SLO
//    line and the best point) and the sweep and startup tables;
//  - a Markdown table of the same numbers (for docs/benchmarks.md);
//  - optionally each chart as its own SVG file (for Markdown pages).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

struct LoadedResult {
  std::string path;
  boost::json::object json;
};

// Reads every file; a file that is not a kite bench result is an error naming it.
Result<std::vector<LoadedResult>> load_results(const std::vector<std::string>& paths);

struct ReportOptions {
  std::string title = "kite bench report";
  size_t max_cdf_series = 12;  // latency CDF charts show at most this many runs
};

// One chart of the report as a standalone SVG document (`kite bench plot --svg-dir DIR` writes
// DIR/<name>.svg for each): name is a file stem unique within one report.
struct Chart {
  std::string name;
  std::string svg;
  std::string caption;
};
// Every chart of the report, in the report's order (summary charts, then each sweep's).
std::vector<Chart> render_charts(const std::vector<LoadedResult>& results,
                                 const ReportOptions& options);

std::string render_html_report(const std::vector<LoadedResult>& results,
                               const ReportOptions& options);
std::string render_markdown_report(const std::vector<LoadedResult>& results);

// "kite · W1 (128,128)": the label and workload name a run appears under in tables and legends.
std::string run_name(const boost::json::object& result);

}  // namespace kite::bench
