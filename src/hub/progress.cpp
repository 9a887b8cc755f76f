#include "hub/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "core/logging.h"

namespace kite::hub {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) {
    bytes /= 1000.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

DownloadProgress::DownloadProgress(std::string label, int num_files, bool bar)
    : label_(std::move(label)),
      files_total_(num_files),
      bar_(bar && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

DownloadProgress::~DownloadProgress() { finish(); }

std::string DownloadProgress::render(const std::string& label, int64_t done, int64_t total,
                                     double elapsed_s, int files_done, int files_total) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  const int pct =
      total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total))
                : 0;
  return fmt::format(
      "{}  {:3d}% {}/{}  {}/s  {}/{} files", label, pct, human_bytes(static_cast<double>(done)),
      human_bytes(static_cast<double>(total)), human_bytes(rate), files_done, files_total);
}

void DownloadProgress::draw_locked(bool final) {
  if (!bar_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::string line = render(label_, done_, total_, elapsed, files_done_, files_total_);
  std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
  drawn_ = true;
}

void DownloadProgress::add_total(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ += bytes;
  draw_locked(false);
}

void DownloadProgress::add_done(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += bytes;
  draw_locked(false);
}

void DownloadProgress::file_done(const std::string& filename, int64_t bytes, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++files_done_;
  if (bar_) {
    draw_locked(false);
  } else {
    KITE_LOG_INFO("downloaded {} {} ({} in {:.1f} s)", label_, filename,
                  human_bytes(static_cast<double>(bytes)), seconds);
  }
}

void DownloadProgress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (drawn_ || files_done_ > 0) draw_locked(true);  // the final state, even of a quick one
}

}  // namespace kite::hub
