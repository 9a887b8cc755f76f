// SVG charts for the benchmark report, written by hand (no plotting library): line/scatter
// charts with linear or log axes, reference lines (SLO bounds) and a highlighted point, and
// grouped bar charts. The output is standalone, well-formed XML that can be inlined in HTML.
//
// Structure (relied on by tests and by anyone restyling the report):
//   <svg class="kite-chart" data-kind="line|bar">
//     <title>, <text class="chart-title">
//     <g class="axis x-axis"> ticks ... <text class="axis-label"> </g>   (and y-axis)
//     <g class="series" data-name="NAME"> polyline / circles / rects </g>   one per series
//     <g class="ref-line" data-label="..."> ... </g>
//     <g class="legend"> <g class="legend-item" data-name="NAME"> ... </g> </g>
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kite::bench {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
  bool line = true;                               // connect the points
  bool markers = true;                            // a circle at each point
  std::vector<std::string> point_notes;  // optional tooltip per point (same length as points)
};

struct RefLine {
  bool horizontal = true;  // y = value (else x = value)
  double value = 0.0;
  std::string label;
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<ChartSeries> series;
  std::vector<RefLine> ref_lines;
  bool log_x = false;
  bool log_y = false;
  std::vector<double> x_ticks;  // explicit tick positions (e.g. the swept values); auto if empty
  std::optional<std::pair<double, double>> highlight;  // a point to ring (the sweep's best)
  std::string highlight_label;
  int width = 720;
  int height = 400;
};

struct BarChart {
  std::string title;
  std::string y_label;
  std::vector<std::string> series_names;  // one bar per series in each group
  struct Group {
    std::string category;
    std::vector<std::optional<double>> values;  // per series; nullopt: no bar
  };
  std::vector<Group> groups;
  int width = 720;
  int height = 400;
};

std::string render_svg(const LineChart& chart);
std::string render_svg(const BarChart& chart);

// "Nice" tick positions covering [lo, hi] (about `target` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target);
// Tick label text: "0", "2.5", "1k", "20k", "1.5M".
std::string tick_label(double v);
// Escapes &, <, >, " and ' for XML text and attribute values.
std::string xml_escape(std::string_view s);
// The colour of series i (a fixed palette, repeating).
const char* series_color(size_t i);

}  // namespace kite::bench
