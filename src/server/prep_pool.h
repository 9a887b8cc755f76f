// PrepPool: a bounded pool of worker threads for request preparation (JSON parsing, chat
// template rendering, tokenization, validation, grammar compilation inside add_request), so the
// Asio threads only do I/O and a heavy request cannot delay /health or another connection.
//
//   bool ran = co_await run_prepared(ex, [&] { parsed = parse(...); });
//
// A job waits in a bounded queue (full: 503 + Retry-After at once) for at most the request's
// preparation deadline (--prep-timeout-s, counted from the request's arrival; past it: 503 and
// the job never runs); a client that leaves while its job waits takes the job out. A job that
// has started runs to its end (the coroutine frame it works on must outlive it): template
// rendering, tokenization and grammar compilation are bounded on their own (work limit, body
// size, --grammar-compile-timeout); PrepToken::expired() lets a job skip its later stages.
// Internal to src/server/.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kite::server {

class Exchange;
class Waker;

// What a running job may check between its stages.
struct PrepToken {
  // The client left or the deadline passed: skip what is left (the answer is not sent).
  bool expired() const {
    return cancelled.load(std::memory_order_acquire) ||
           std::chrono::steady_clock::now() >= deadline;
  }

  std::atomic<bool> cancelled{false};  // set by the waiting coroutine
  std::chrono::steady_clock::time_point deadline;
};

struct PrepTask {
  std::function<void(const PrepToken&)> work;
  PrepToken token;
  std::shared_ptr<Waker> waker;  // notified (on the connection's strand) when the job ends
  // kQueued -> kRunning -> kDone, or kQueued -> kDropped (by the waiting coroutine).
  enum State : int { kQueued, kRunning, kDone, kDropped };
  std::atomic<int> state{kQueued};
  std::exception_ptr error;  // what the job threw (rethrown on the strand)
};

class PrepPool {
 public:
  // `workers` threads; at most `max_queued` jobs waiting for one (beyond: rejected).
  PrepPool(int workers, int max_queued);
  ~PrepPool();  // stop()
  PrepPool(const PrepPool&) = delete;
  PrepPool& operator=(const PrepPool&) = delete;

  // Queues a job; false (counted as rejected) when the queue is full or the pool stopped.
  bool submit(std::shared_ptr<PrepTask> task);
  // Drops what waits and joins the workers (after the running jobs end). Idempotent.
  void stop();

  // Gauges and counters for /metrics (Prometheus text, `kite:prep_*`).
  std::string render_metrics() const;
  int64_t in_flight() const { return running_.load(); }
  void count_timeout() { timeouts_.fetch_add(1); }

 private:
  void worker();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<PrepTask>> queue_;
  std::vector<std::thread> threads_;
  size_t max_queued_;
  bool stopping_ = false;
  std::atomic<int64_t> running_{0};
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> rejected_{0};
  std::atomic<int64_t> timeouts_{0};
  std::atomic<int64_t> completed_{0};
};

// The default worker count: the hardware's concurrency, between 2 and 8.
int default_prep_workers();

// Runs `work` on the server's preparation pool and resumes on the exchange's strand once it has
// run (rethrowing what it threw there). False: it did not run and the exchange is answered (503 +
// Retry-After: queue full or deadline passed) or the client is gone (nothing to answer). Jobs of
// one exchange share its deadline (arrival + --prep-timeout-s).
boost::asio::awaitable<bool> run_prepared(Exchange& ex, std::function<void(const PrepToken&)> work);

}  // namespace kite::server
