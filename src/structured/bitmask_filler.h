// BitmaskFiller: computes the token bitmasks of one step's constrained rows on its own threads,
// so the work overlaps the model's forward pass (start() before the forward, wait() before
// sampling). One batch at a time; start/wait from one thread, wait from any one thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "structured/grammar_matcher.h"

namespace kite::structured {

class BitmaskFiller {
 public:
  struct Job {
    GrammarMatcher* matcher = nullptr;
    int32_t* mask = nullptr;         // bitmask_words(vocab) words
    uint8_t* constrained = nullptr;  // set to 1 when the matcher wrote a mask, else 0
  };
  // num_threads 0: start() fills inline.
  explicit BitmaskFiller(int num_threads);
  ~BitmaskFiller();
  BitmaskFiller(const BitmaskFiller&) = delete;
  BitmaskFiller& operator=(const BitmaskFiller&) = delete;

  // Begins filling. REQUIRES: the previous batch was waited for; jobs' matchers and buffers
  // stay untouched until wait() returns.
  void start(std::vector<Job> jobs);
  // Blocks until every job of the batch is done. Returns the batch's wall time in ms (from
  // start to the last job's end).
  double wait();

 private:
  void run_jobs();
  void worker();

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;       // workers: a batch is ready
  std::condition_variable done_cv_;  // wait(): the batch is done
  std::vector<Job> jobs_;
  size_t next_ = 0;
  size_t num_done_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  double start_ms_ = 0, end_ms_ = 0;
};

}  // namespace kite::structured
