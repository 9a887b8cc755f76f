#include "bench/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kite::bench {

namespace {

std::string format_seconds(double s) {
  if (s < 0 || s > 1e7) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

bool progress_disabled_by_env() {
  const char* v = std::getenv("KITE_NO_PROGRESS");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 0)),
      enabled_(enabled && !progress_disabled_by_env()),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (enabled_) draw(false);
}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::render(const std::string& label, int64_t done, int64_t total,
                                double elapsed_s, const std::string& unit,
                                const std::string& status, int width) {
  const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(static_cast<size_t>(width), ' ');
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  const double eta = rate > 0 ? (total - done) / rate : -1;
  std::string s = fmt::format("{} [{}] {}/{} {:3.0f}% {:.1f} {}/s {} eta {}", label, bar, done,
                              total, frac * 100, rate, unit, format_seconds(elapsed_s),
                              done >= total ? "0s" : format_seconds(eta));
  if (!status.empty()) s += " | " + status;
  return s;
}

void ProgressBar::advance(int64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (enabled_) draw(false);
}

void ProgressBar::set_status(std::string status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = std::move(status);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  draw(true);
}

void ProgressBar::draw(bool final) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t done = done_.load(std::memory_order_relaxed);
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
    std::fprintf(stderr, "\r%s\033[K",
                 render(label_, done, total_, elapsed, unit_, status_, 30).c_str());
  } else {
    const int64_t decile = total_ > 0 ? done * 10 / total_ : 10;
    const bool due = decile > last_logged_decile_ || now - last_draw_ > std::chrono::seconds(30);
    if (!final && !due) return;
    if (final && decile == last_logged_decile_ && done >= total_) {
      finished_ = true;
      return;
    }
    last_logged_decile_ = decile;
    std::fprintf(stderr, "%s\n", render(label_, done, total_, elapsed, unit_, status_, 20).c_str());
  }
  last_draw_ = now;
  if (final) {
    if (tty_) std::fputc('\n', stderr);
    finished_ = true;
  }
  std::fflush(stderr);
}

}  // namespace kite::bench
