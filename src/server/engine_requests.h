// EngineRequests: the engine requests one HTTP request made, consumed from an Asio coroutine
// without blocking its thread. Each RequestStream's notifier posts a wake-up to the
// connection's strand; next() drains what the streams hold and otherwise suspends until woken.
// Destruction aborts every request that has not finished, so no exit path of a handler (client
// gone, write failure, exception) leaks one. Internal to src/server/.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kite/engine.h"
#include "kite/request.h"
#include "server/metrics.h"
#include "server/request_telemetry.h"

namespace kite::server {

// Wakes one coroutine from other threads. notify() is thread-safe and cheap (one post per
// burst of notifications); wait() must run on `executor` (a strand).
class Waker : public std::enable_shared_from_this<Waker> {
 public:
  explicit Waker(boost::asio::any_io_executor executor);
  void notify();
  // Returns at once if notified since the last wait, else when notified.
  boost::asio::awaitable<void> wait();

 private:
  boost::asio::steady_timer timer_;
  std::atomic<bool> posted_{false};
  bool pending_ = false;  // strand only
};

class EngineRequests {
 public:
  // `record`: where finished requests are reported for logs and traces (optional).
  EngineRequests(Engine& engine, boost::asio::any_io_executor executor, ServerMetrics& metrics,
                 ExchangeRecord* record = nullptr);
  ~EngineRequests();
  EngineRequests(const EngineRequests&) = delete;
  EngineRequests& operator=(const EngineRequests&) = delete;

  // Submits one request (its index is the number added before). On error nothing was added.
  Status add(GenerateRequest request);
  size_t size() const { return entries_.size(); }

  // The outputs queued since the last call, tagged with their request's index; suspends until
  // there is at least one. Empty: every request has finished, or interrupt() was called.
  boost::asio::awaitable<std::vector<std::pair<size_t, RequestOutput>>> next();

  // Makes next() return empty (the client went away). Call on the strand.
  void interrupt();
  bool interrupted() const { return interrupted_; }
  bool all_finished() const;

  // Aborts every unfinished request (the destructor does it too).
  void abort_all();

 private:
  struct Entry {
    std::shared_ptr<RequestStream> stream;
    std::string request_id;
    int num_choices = 1;
    bool finished = false;
  };

  Engine& engine_;
  ServerMetrics& metrics_;
  ExchangeRecord* record_;
  std::shared_ptr<Waker> waker_;
  std::vector<Entry> entries_;
  bool interrupted_ = false;
};

}  // namespace kite::server
