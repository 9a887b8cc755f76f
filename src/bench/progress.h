// A progress bar on stderr for long benchmark runs. On a terminal it redraws one line (at most
// ten times a second); otherwise it prints a plain line every 10% (or 30 s), so logs stay
// readable. Thread-safe: any thread may call advance(). KITE_NO_PROGRESS=1 or enabled=false
// silences it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace kite::bench {

class ProgressBar {
 public:
  // `total` units of work (requests); `unit` names them in the rate ("req/s").
  ProgressBar(std::string label, int64_t total, bool enabled = true, std::string unit = "req");
  ~ProgressBar();  // finish() if not yet done
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void advance(int64_t n = 1);
  // Extra text shown after the counts ("3 failed").
  void set_status(std::string status);
  // Draws the final state and ends the line.
  void finish();

  // The text of the bar for `done` of `total` after `elapsed_s` (for tests).
  static std::string render(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const std::string& unit, const std::string& status, int width);

 private:
  void draw(bool final);

  std::string label_;
  std::string unit_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  std::atomic<int64_t> done_{0};
  std::mutex mu_;
  std::string status_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t last_logged_decile_ = -1;
};

}  // namespace kite::bench
