// ThreadPool: a fixed set of workers for data-parallel CPU kernels.
//
// parallel_for splits [0, n) into contiguous chunks and runs fn(begin, end) on the workers and
// the calling thread; it returns when every chunk is done. Calls from several threads are
// serialised. Not reentrant: fn must not call parallel_for on the same pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kite {

class ThreadPool {
 public:
  // num_threads counts the caller: 1 means run inline. 0 means hardware concurrency.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over [0, n) in chunks of at least min_chunk items.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t min_chunk = 1);

 private:
  void worker_loop(int index);
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for callers
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t next_ = 0;            // next chunk start (guarded by mu_)
  int pending_ = 0;             // workers still busy with this generation
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace kite
