#include "bench/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace kite::bench {

namespace {

constexpr const char* kPalette[] = {"#1f6fb2", "#e3742f", "#2e9e4f", "#c93a3a", "#7b57b8",
                                    "#8c5a44", "#d65fa9", "#6b6b6b", "#a9a527", "#1ba3b8"};

// Plot area margins (px).
constexpr double kLeft = 74, kRight = 24, kTop = 40, kBottom = 54;
constexpr double kLegendRow = 18;

std::string num(double v) { return fmt::format("{:.2f}", v); }

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double px_lo = 0, px_hi = 1;  // pixel positions of lo and hi
  double map(double v) const {
    const double a = log ? std::log10(lo) : lo;
    const double b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return px_lo + t * (px_hi - px_lo);
  }
};

// Range of the data along one axis, padded; log axes use positive values only.
std::pair<double, double> data_range(const std::vector<double>& vals, bool log, bool from_zero) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : vals) {
    if (!std::isfinite(v) || (log && v <= 0)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) return log ? std::make_pair(1.0, 10.0) : std::make_pair(0.0, 1.0);
  if (log) {
    if (lo == hi) return {lo / 2, hi * 2};
    return {lo / 1.15, hi * 1.15};
  }
  if (from_zero && lo > 0) lo = 0;
  if (lo == hi) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    return {lo - pad, hi + pad};
  }
  const double pad = (hi - lo) * 0.05;
  return {from_zero && lo == 0 ? 0.0 : lo - pad, hi + pad};
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  const int a = static_cast<int>(std::floor(std::log10(lo)));
  const int b = static_cast<int>(std::ceil(std::log10(hi)));
  const bool fine = b - a <= 3;
  for (int e = a; e <= b; ++e) {
    for (double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push_back(v);
    }
  }
  return ticks;
}

void text(std::string& out, double x, double y, std::string_view s, std::string_view cls,
          std::string_view anchor = "middle", std::string_view extra = "") {
  out += fmt::format("<text class=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"{}\"{}>{}</text>\n", cls,
                     num(x), num(y), anchor, extra, xml_escape(s));
}

std::string svg_open(std::string_view kind, const std::string& title, int width, int height) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kite-chart\" data-kind=\"{}\" "
      "width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<title>{}</title>\n"
      "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n",
      kind, width, height, width, height, xml_escape(title), xml_escape(title), width, height);
}

// Legend rows under the plot; returns the height used.
double legend_height(size_t n, int width) {
  const size_t per_row = std::max<size_t>(1, static_cast<size_t>((width - kLeft) / 180));
  return static_cast<double>((n + per_row - 1) / per_row) * kLegendRow;
}

void legend(std::string& out, const std::vector<std::string>& names, int width, double y0,
            bool bars) {
  const size_t per_row = std::max<size_t>(1, static_cast<size_t>((width - kLeft) / 180));
  out += "<g class=\"legend\">\n";
  for (size_t i = 0; i < names.size(); ++i) {
    const double x = kLeft + static_cast<double>(i % per_row) * 180;
    const double y = y0 + static_cast<double>(i / per_row) * kLegendRow;
    out += fmt::format("<g class=\"legend-item\" data-name=\"{}\">", xml_escape(names[i]));
    if (bars) {
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"{}\"/>", num(x),
                         num(y - 9), series_color(i));
    } else {
      out += fmt::format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>",
          num(x), num(y - 4), num(x + 14), num(y - 4), series_color(i));
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text></g>\n", num(x + 18), num(y),
                       xml_escape(names[i]));
  }
  out += "</g>\n";
}

}  // namespace

const char* series_color(size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const int exp10 = static_cast<int>(std::floor(std::log10(raw)));
  const double mag = std::pow(10.0, exp10);
  const double r = raw / mag * (1 - 1e-9);  // 0.2 / 0.1 is 2.0000000000000004
  const double m = r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10;
  const double step = m * mag;
  // Tick k is (k * m) * 10^exp10, computed as an integer over a power of ten so that it prints
  // as 0.6 rather than 0.6000000000000001.
  const double scale = std::pow(10.0, std::abs(exp10));
  for (int64_t k = static_cast<int64_t>(std::ceil(lo / step - 1e-9));
       static_cast<double>(k) * step <= hi + step * 1e-9 && ticks.size() < 100; ++k) {
    const double km = static_cast<double>(k) * m;
    ticks.push_back(exp10 < 0 ? km / scale : km * scale);
  }
  return ticks;
}

std::string tick_label(double v) {
  const double a = std::abs(v);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

std::string render_svg(const LineChart& c) {
  std::vector<std::string> names;
  std::vector<double> xs, ys;
  for (const ChartSeries& s : c.series) {
    names.push_back(s.name);
    for (const auto& [x, y] : s.points) {
      xs.push_back(x);
      ys.push_back(y);
    }
  }
  for (const RefLine& r : c.ref_lines) (r.horizontal ? ys : xs).push_back(r.value);
  const double leg_h = legend_height(names.size(), c.width);
  const double plot_bottom = c.height - kBottom - leg_h;
  Axis ax, ay;
  ax.log = c.log_x;
  ay.log = c.log_y;
  std::tie(ax.lo, ax.hi) = data_range(xs, c.log_x, false);
  std::tie(ay.lo, ay.hi) = data_range(ys, c.log_y, true);
  ax.px_lo = kLeft;
  ax.px_hi = c.width - kRight;
  ay.px_lo = plot_bottom;
  ay.px_hi = kTop;

  std::string out = svg_open("line", c.title, c.width, c.height);
  text(out, c.width / 2.0, 22, c.title, "chart-title", "middle", " font-size=\"15\"");
  // Axes with ticks and grid lines.
  std::vector<double> xt = !c.x_ticks.empty() ? c.x_ticks
                           : c.log_x          ? log_ticks(ax.lo, ax.hi)
                                              : nice_ticks(ax.lo, ax.hi, 6);
  std::vector<double> yt = c.log_y ? log_ticks(ay.lo, ay.hi) : nice_ticks(ay.lo, ay.hi, 5);
  out += "<g class=\"axis x-axis\">\n";
  out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
                     num(kLeft), num(plot_bottom), num(c.width - kRight), num(plot_bottom));
  for (double t : xt) {
    if (t < ax.lo || t > ax.hi || (c.log_x && t <= 0)) continue;
    const double x = ax.map(t);
    out += fmt::format(
        "<g class=\"tick\"><line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e4e4e4\"/>",
        num(x), num(kTop), num(plot_bottom));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n", num(x),
                       num(plot_bottom + 16), xml_escape(tick_label(t)));
  }
  text(out, (kLeft + c.width - kRight) / 2, plot_bottom + 36, c.x_label, "axis-label");
  out += "</g>\n<g class=\"axis y-axis\">\n";
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n",
                     num(kLeft), num(kTop), num(plot_bottom));
  for (double t : yt) {
    if (t < ay.lo || t > ay.hi) continue;
    const double y = ay.map(t);
    out += fmt::format(
        "<g class=\"tick\"><line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#e4e4e4\"/>",
        num(kLeft), num(y), num(c.width - kRight));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></g>\n",
                       num(kLeft - 6), num(y + 4), xml_escape(tick_label(t)));
  }
  text(out, 16, (kTop + plot_bottom) / 2, c.y_label, "axis-label", "middle",
       fmt::format(" transform=\"rotate(-90 16 {})\"", num((kTop + plot_bottom) / 2)));
  out += "</g>\n";

  if (xs.empty()) text(out, c.width / 2.0, (kTop + plot_bottom) / 2, "no data", "no-data");

  auto visible = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!c.log_x || x > 0) && (!c.log_y || y > 0);
  };
  for (size_t i = 0; i < c.series.size(); ++i) {
    const ChartSeries& s = c.series[i];
    out += fmt::format("<g class=\"series\" data-name=\"{}\">\n", xml_escape(s.name));
    if (s.line && s.points.size() > 1) {
      std::string pts;
      for (const auto& [x, y] : s.points) {
        if (!visible(x, y)) continue;
        pts += fmt::format("{},{} ", num(ax.map(x)), num(ay.map(y)));
      }
      if (!pts.empty()) pts.pop_back();
      out +=
          fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                      pts, series_color(i));
    }
    if (s.markers) {
      for (size_t k = 0; k < s.points.size(); ++k) {
        const auto& [x, y] = s.points[k];
        if (!visible(x, y)) continue;
        std::string note = k < s.point_notes.size() ? s.point_notes[k] + ": " : "";
        out += fmt::format(
            "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"><title>{}{}{} ({}, {})</title>"
            "</circle>\n",
            num(ax.map(x)), num(ay.map(y)), series_color(i), xml_escape(s.name),
            note.empty() ? "" : " ", xml_escape(note), fmt::format("{:.4g}", x),
            fmt::format("{:.4g}", y));
      }
    }
    out += "</g>\n";
  }
  for (const RefLine& r : c.ref_lines) {
    out += fmt::format("<g class=\"ref-line\" data-label=\"{}\">", xml_escape(r.label));
    if (r.horizontal) {
      const double y = ay.map(r.value);
      out += fmt::format(
          "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#c93a3a\" "
          "stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/>",
          num(kLeft), num(y), num(c.width - kRight));
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#c93a3a\">{}</text>",
                         num(c.width - kRight - 4), num(y - 5), xml_escape(r.label));
    } else {
      const double x = ax.map(r.value);
      out += fmt::format(
          "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#c93a3a\" "
          "stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/>",
          num(x), num(kTop), num(plot_bottom));
      out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#c93a3a\">{}</text>", num(x + 4),
                         num(kTop + 12), xml_escape(r.label));
    }
    out += "</g>\n";
  }
  if (c.highlight && visible(c.highlight->first, c.highlight->second)) {
    const double x = ax.map(c.highlight->first), y = ay.map(c.highlight->second);
    out += fmt::format(
        "<g class=\"highlight\" data-label=\"{}\"><circle cx=\"{}\" cy=\"{}\" r=\"8\" "
        "fill=\"none\" stroke=\"#111\" stroke-width=\"2\"/>",
        xml_escape(c.highlight_label), num(x), num(y));
    // The label goes left of the ring when the ring is in the right half.
    const bool left = x > c.width / 2.0;
    out += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-weight=\"bold\">{}</text></g>\n",
        num(left ? x - 10 : x + 10), num(y - 10), left ? "end" : "start",
        xml_escape(c.highlight_label));
  }
  legend(out, names, c.width, plot_bottom + kBottom - 2, false);
  out += "</svg>\n";
  return out;
}

std::string render_svg(const BarChart& c) {
  std::vector<double> vals;
  for (const BarChart::Group& g : c.groups) {
    for (const auto& v : g.values) {
      if (v) vals.push_back(*v);
    }
  }
  const double leg_h = legend_height(c.series_names.size(), c.width);
  const double plot_bottom = c.height - kBottom - leg_h;
  Axis ay;
  std::tie(ay.lo, ay.hi) = data_range(vals, false, true);
  ay.px_lo = plot_bottom;
  ay.px_hi = kTop;

  std::string out = svg_open("bar", c.title, c.width, c.height);
  text(out, c.width / 2.0, 22, c.title, "chart-title", "middle", " font-size=\"15\"");
  out += "<g class=\"axis y-axis\">\n";
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n",
                     num(kLeft), num(kTop), num(plot_bottom));
  for (double t : nice_ticks(ay.lo, ay.hi, 5)) {
    const double y = ay.map(t);
    out += fmt::format(
        "<g class=\"tick\"><line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#e4e4e4\"/>",
        num(kLeft), num(y), num(c.width - kRight));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></g>\n",
                       num(kLeft - 6), num(y + 4), xml_escape(tick_label(t)));
  }
  text(out, 16, (kTop + plot_bottom) / 2, c.y_label, "axis-label", "middle",
       fmt::format(" transform=\"rotate(-90 16 {})\"", num((kTop + plot_bottom) / 2)));
  out += "</g>\n<g class=\"axis x-axis\">\n";
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333\"/>\n",
                     num(kLeft), num(plot_bottom), num(c.width - kRight));
  const double group_w =
      c.groups.empty() ? 0 : (c.width - kLeft - kRight) / static_cast<double>(c.groups.size());
  for (size_t g = 0; g < c.groups.size(); ++g) {
    text(out, kLeft + group_w * (g + 0.5), plot_bottom + 16, c.groups[g].category, "tick-label");
  }
  out += "</g>\n";
  if (vals.empty()) text(out, c.width / 2.0, (kTop + plot_bottom) / 2, "no data", "no-data");
  const size_t ns = std::max<size_t>(1, c.series_names.size());
  const double bar_w = std::min(48.0, group_w * 0.8 / static_cast<double>(ns));
  const double group_pad = (group_w - bar_w * static_cast<double>(ns)) / 2;
  for (size_t s = 0; s < c.series_names.size(); ++s) {
    out += fmt::format("<g class=\"series\" data-name=\"{}\">\n", xml_escape(c.series_names[s]));
    for (size_t g = 0; g < c.groups.size(); ++g) {
      if (s >= c.groups[g].values.size() || !c.groups[g].values[s]) continue;
      const double v = *c.groups[g].values[s];
      const double x = kLeft + group_w * g + group_pad + bar_w * s;
      const double y0 = ay.map(std::max(0.0, ay.lo));
      const double y1 = ay.map(v);
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} / {}: {:.4g}"
          "</title></rect>\n",
          num(x), num(std::min(y0, y1)), num(std::max(1.0, bar_w - 2)), num(std::abs(y0 - y1)),
          series_color(s), xml_escape(c.series_names[s]), xml_escape(c.groups[g].category), v);
      out += fmt::format(
          "<text class=\"bar-value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
          "font-size=\"10\">{}</text>\n",
          num(x + (bar_w - 2) / 2), num(std::min(y0, y1) - 3),
          xml_escape(fmt::format("{:.4g}", v)));
    }
    out += "</g>\n";
  }
  legend(out, c.series_names, c.width, plot_bottom + kBottom - 2, true);
  out += "</svg>\n";
  return out;
}

}  // namespace kite::bench
