// Download progress on stderr: on a terminal one line redrawn at most ten times a second
// ("org/name  45% 1.2 GB/2.6 GB  85.3 MB/s  2/5 files"); otherwise one log line per finished
// file, so logs stay readable. HF_HUB_DISABLE_PROGRESS_BARS=1 turns the bar off (as
// huggingface_hub). Thread-safe: download workers call it concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace kite::hub {

class DownloadProgress {
 public:
  DownloadProgress(std::string label, int num_files, bool bar);
  ~DownloadProgress();
  DownloadProgress(const DownloadProgress&) = delete;
  DownloadProgress& operator=(const DownloadProgress&) = delete;

  void add_total(int64_t bytes);  // a file's size became known
  void add_done(int64_t bytes);   // bytes written (or found already there, when resuming)
  void file_done(const std::string& filename, int64_t bytes, double seconds);
  void finish();

  // The bar's text (for tests): `done`/`total` bytes after `elapsed_s`.
  static std::string render(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            int files_done, int files_total);

 private:
  void draw_locked(bool final);

  std::mutex mu_;
  std::string label_;
  int files_total_;
  int files_done_ = 0;
  int64_t total_ = 0;
  int64_t done_ = 0;
  bool bar_;
  bool drawn_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1.2 GB", "340.5 MB", "12 B".
std::string human_bytes(double bytes);

}  // namespace kite::hub
