#include "parallel/watchdog.h"

#include <cstdio>
#include <cstdlib>

namespace kite::parallel {

Watchdog::Watchdog(int rank, int exit_code) : rank_(rank), exit_code_(exit_code) {
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::set_rank(int rank) {
  std::lock_guard<std::mutex> lock(mu_);
  rank_ = rank;
}

void Watchdog::arm(std::string what, std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + timeout;
    armed_ = true;
  }
  cv_.notify_all();
}

void Watchdog::disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!armed_) {
      cv_.wait(lock);
      continue;
    }
    const auto deadline = deadline_;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ && !stop_ &&
        deadline_ == deadline) {
      std::fprintf(stderr,
                   "kite: rank %d: %s did not complete within its timeout (a peer rank died or "
                   "hangs; KITE_COLLECTIVE_TIMEOUT_S sets the bound); exiting\n",
                   rank_, what_.c_str());
      std::fflush(stderr);
      std::_Exit(exit_code_);
    }
  }
}

WatchdogScope::WatchdogScope(Watchdog* w, std::string what, std::chrono::milliseconds timeout)
    : w_(timeout.count() > 0 ? w : nullptr) {
  if (w_ != nullptr) w_->arm(std::move(what), timeout);
}

WatchdogScope::~WatchdogScope() {
  if (w_ != nullptr) w_->disarm();
}

}  // namespace kite::parallel
