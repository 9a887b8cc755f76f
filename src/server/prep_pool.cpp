#include "server/prep_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "server/engine_requests.h"
#include "server/http_session.h"

namespace kite::server {

namespace asio = boost::asio;

PrepPool::PrepPool(int workers, int max_queued)
    : max_queued_(static_cast<size_t>(std::max(0, max_queued))) {
  const int n = std::max(1, workers);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker(); });
}

PrepPool::~PrepPool() { stop(); }

bool PrepPool::submit(std::shared_ptr<PrepTask> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Room: one per idle worker plus the queue's bound. Jobs dropped while queued stay here
    // until a worker skips them (at once) and count meanwhile.
    const size_t idle = threads_.size() - static_cast<size_t>(running_.load());
    if (stopping_ || queue_.size() >= max_queued_ + idle) {
      rejected_.fetch_add(1);
      return false;
    }
    queue_.push_back(std::move(task));
    queued_.fetch_add(1);
  }
  cv_.notify_one();
  return true;
}

void PrepPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Whatever still waits never runs; its coroutine (if any is left) sees kDropped.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& task : queue_) {
    int expected = PrepTask::kQueued;
    task->state.compare_exchange_strong(expected, PrepTask::kDropped);
    if (task->waker) task->waker->notify();
  }
  queue_.clear();
}

void PrepPool::worker() {
  while (true) {
    std::shared_ptr<PrepTask> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1);
      int expected = PrepTask::kQueued;
      if (!task->state.compare_exchange_strong(expected, PrepTask::kRunning)) continue;
      running_.fetch_add(1);
    }
    try {
      task->work(task->token);
    } catch (...) {
      task->error = std::current_exception();
    }
    running_.fetch_sub(1);
    completed_.fetch_add(1);
    task->state.store(PrepTask::kDone, std::memory_order_release);
    task->waker->notify();
  }
}

std::string PrepPool::render_metrics() const {
  return fmt::format(
      "# HELP kite:prep_in_flight Request preparations running on the pool\n"
      "# TYPE kite:prep_in_flight gauge\n"
      "kite:prep_in_flight {}\n"
      "# HELP kite:prep_queued Request preparations waiting for a pool worker\n"
      "# TYPE kite:prep_queued gauge\n"
      "kite:prep_queued {}\n"
      "# HELP kite:prep_workers Preparation pool worker threads\n"
      "# TYPE kite:prep_workers gauge\n"
      "kite:prep_workers {}\n"
      "# HELP kite:prep_rejected_total Preparations refused because the queue was full (503)\n"
      "# TYPE kite:prep_rejected_total counter\n"
      "kite:prep_rejected_total {}\n"
      "# HELP kite:prep_timeouts_total Preparations past their deadline (503)\n"
      "# TYPE kite:prep_timeouts_total counter\n"
      "kite:prep_timeouts_total {}\n"
      "# HELP kite:prep_completed_total Preparations the pool ran\n"
      "# TYPE kite:prep_completed_total counter\n"
      "kite:prep_completed_total {}\n",
      running_.load(), queued_.load(), threads_.size(), rejected_.load(), timeouts_.load(),
      completed_.load());
}

int default_prep_workers() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(hw, 2, 8));
}

asio::awaitable<bool> run_prepared(Exchange& ex, std::function<void(const PrepToken&)> work) {
  ServerState& state = ex.state();
  const ServerConfig& cfg = state.config();
  const auto executor = co_await asio::this_coro::executor;
  auto task = std::make_shared<PrepTask>();
  task->work = std::move(work);
  task->token.deadline = ex.prep_deadline();
  task->waker = std::make_shared<Waker>(executor);
  if (!state.prep_pool().submit(task)) {
    const ApiError busy{503,
                        fmt::format("the server is busy: {} request preparations are waiting "
                                    "(--prep-queue); retry later",
                                    cfg.prep_queue),
                        "server_error", "", "service_unavailable"};
    co_await ex.send_error(busy);
    co_return false;
  }
  std::shared_ptr<Waker> waker = task->waker;
  ex.watch_disconnect([waker] { waker->notify(); });
  asio::steady_timer deadline(executor);
  deadline.expires_at(task->token.deadline);
  deadline.async_wait([waker](boost::system::error_code ec) {
    if (!ec) waker->notify();
  });
  bool timed_out = false;
  while (true) {
    co_await waker->wait();
    if (task->state.load(std::memory_order_acquire) == PrepTask::kDone) break;
    const bool gone = ex.client_gone();
    timed_out = std::chrono::steady_clock::now() >= task->token.deadline;
    if (!gone && !timed_out && task->state.load() != PrepTask::kDropped) continue;
    task->token.cancelled.store(true, std::memory_order_release);
    int expected = PrepTask::kQueued;
    if (task->state.compare_exchange_strong(expected, PrepTask::kDropped) ||
        expected == PrepTask::kDropped) {
      break;  // never ran
    }
    // Running: the job references this frame; wait for its end.
  }
  deadline.cancel();
  ex.unwatch();
  if (ex.client_gone()) co_return false;
  const bool done = task->state.load(std::memory_order_acquire) == PrepTask::kDone;
  if (done && task->error) std::rethrow_exception(task->error);
  if (done && !timed_out && std::chrono::steady_clock::now() < task->token.deadline) {
    co_return true;
  }
  state.prep_pool().count_timeout();
  const ApiError late{503,
                      fmt::format("request preparation did not finish within {} s "
                                  "(--prep-timeout-s); retry later",
                                  cfg.prep_timeout.count() / 1000.0),
                      "server_error", "", "service_unavailable"};
  co_await ex.send_error(late);
  co_return false;
}

}  // namespace kite::server
