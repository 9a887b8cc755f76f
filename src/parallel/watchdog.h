// Watchdog: ends the process when a guarded wait (a collective, the communicator's set-up)
// outlives its deadline, with a message naming what was waited for and the rank. It is what
// turns "a peer died or hangs" into an error within a bound instead of a hang, whatever the
// transport does.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace kite::parallel {

class Watchdog {
 public:
  // `rank` for the message; exit_code is the process's exit status on expiry.
  explicit Watchdog(int rank, int exit_code = 3);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_rank(int rank);
  // Arms the watchdog: `what` must finish within `timeout`. One wait at a time.
  void arm(std::string what, std::chrono::milliseconds timeout);
  void disarm();

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  int rank_;
  int exit_code_;
  bool armed_ = false;
  bool stop_ = false;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

// Arms a watchdog for the lifetime of a scope (nullptr or a zero timeout = unguarded).
class WatchdogScope {
 public:
  WatchdogScope(Watchdog* w, std::string what, std::chrono::milliseconds timeout);
  ~WatchdogScope();
  WatchdogScope(const WatchdogScope&) = delete;
  WatchdogScope& operator=(const WatchdogScope&) = delete;

 private:
  Watchdog* w_;
};

}  // namespace kite::parallel
