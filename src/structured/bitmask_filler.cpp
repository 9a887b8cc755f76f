#include "structured/bitmask_filler.h"

#include <chrono>
#include <utility>

namespace kite::structured {

namespace {
double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

BitmaskFiller::BitmaskFiller(int num_threads) {
  for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { worker(); });
}

BitmaskFiller::~BitmaskFiller() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BitmaskFiller::start(std::vector<Job> jobs) {
  std::unique_lock<std::mutex> lock(mu_);
  jobs_ = std::move(jobs);
  next_ = 0;
  num_done_ = 0;
  start_ms_ = end_ms_ = now_ms();
  ++generation_;
  if (threads_.empty()) {
    lock.unlock();
    run_jobs();
    return;
  }
  lock.unlock();
  cv_.notify_all();
}

void BitmaskFiller::run_jobs() {
  for (;;) {
    Job job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_ >= jobs_.size()) return;
      job = jobs_[next_++];
    }
    *job.constrained = job.matcher->fill_bitmask(job.mask) ? 1 : 0;
    std::lock_guard<std::mutex> lock(mu_);
    if (++num_done_ == jobs_.size()) {
      end_ms_ = now_ms();
      done_cv_.notify_all();
    }
  }
}

void BitmaskFiller::worker() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || (generation_ != seen && next_ < jobs_.size()); });
      if (stop_) return;
      seen = generation_;
    }
    run_jobs();
  }
}

double BitmaskFiller::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return num_done_ == jobs_.size(); });
  return end_ms_ - start_ms_;
}

}  // namespace kite::structured
