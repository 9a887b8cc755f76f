// `kite bench plot RESULTS... --out report.html [--markdown table.md]`.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "bench/command_util.h"
#include "bench/report.h"

namespace kite::bench {

namespace fs = std::filesystem;

namespace {

Status write_text(const std::string& path, const std::string& text) {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument(fmt::format("cannot write {}", path));
  out << text;
  if (!out) return invalid_argument(fmt::format("error writing {}", path));
  std::fprintf(stderr, "kite bench: wrote %s\n", path.c_str());
  return ok_status();
}

}  // namespace

int run_plot_command(const PlotCommand& cmd) {
  std::vector<std::string> files;
  for (const std::string& in : cmd.inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(in, ec)) {
        if (e.path().extension() == ".json") found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(in);
    }
  }
  if (files.empty()) return report_error("plot", invalid_argument("no result files given"));
  Result<std::vector<LoadedResult>> results = load_results(files);
  if (!results.ok()) return report_error("plot", results.status());
  ReportOptions opt;
  opt.title = cmd.title;
  Status s = write_text(cmd.out, render_html_report(*results, opt));
  if (!s.ok()) return report_error("plot", s);
  std::string md = render_markdown_report(*results);
  if (!cmd.svg_dir.empty()) {
    std::error_code ec;
    const fs::path base =
        cmd.markdown.empty() ? fs::current_path(ec) : fs::absolute(cmd.markdown).parent_path();
    std::string links;
    for (const Chart& c : render_charts(*results, opt)) {
      const fs::path file = fs::path(cmd.svg_dir) / (c.name + ".svg");
      s = write_text(file.string(), c.svg);
      if (!s.ok()) return report_error("plot", s);
      const std::string rel = fs::relative(fs::absolute(file), base, ec).generic_string();
      links +=
          fmt::format("\n![{}]({})\n\n_{}_\n", c.name, ec ? file.generic_string() : rel, c.caption);
    }
    if (!links.empty()) md += "\n" + links;
  }
  if (!cmd.markdown.empty()) {
    s = write_text(cmd.markdown, md);
    if (!s.ok()) return report_error("plot", s);
  } else {
    std::printf("%s", md.c_str());
  }
  return 0;
}

}  // namespace kite::bench
