// EngineCore: the scheduler, KV cache manager and executor of one model, stepped by the
// engine thread (or directly by tests). No threads of its own, no text: token ids in, token
// ids (and logprobs) out as SchedulerEvents.
//
// step(): schedule -> executor.submit -> [during_device()] -> executor.wait -> scheduler.update.
// `during_device` runs while the device computes the step when the executor is async (the
// engine turns the previous step's events into outputs there); with a synchronous executor it
// runs after the device work, which is the same order the CPU path would use anyway.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "executor/executor.h"
#include "kv_cache/kv_cache_manager.h"
#include "runtime/model_runner.h"
#include "scheduler/scheduler.h"

namespace kite {

struct EngineCoreConfig {
  SchedulerConfig scheduler;
  int block_size = 16;
  bool enable_prefix_caching = true;
  int64_t num_kv_blocks = 0;  // counts block 0; the runner's cache must hold as many
  bool async_execution = false;
};

struct EngineCoreStats {
  SchedulerStats scheduler;
  KvCacheStats kv;
  int64_t num_running_requests = 0;
  int64_t num_steps = 0;
  int64_t num_failed_steps = 0;
  int64_t num_scheduled_tokens = 0;  // tokens run through the model, all steps
};

class EngineCore {
 public:
  // REQUIRES: config.scheduler.validate() OK; the runner's KV cache is allocated with
  // config.num_kv_blocks blocks of config.block_size; the runner outlives the core.
  EngineCore(const EngineCoreConfig& config, ModelRunner* runner);

  // See Scheduler::add_request.
  Status add_request(std::shared_ptr<const RequestInfo> info);
  // Ends a request (abort) or one choice (stop string); events describe what ended.
  void abort_request(const std::string& request_id, SchedulerEvents* events);
  void finish_choice(const std::string& request_id, int choice, std::string stop_string,
                     SchedulerEvents* events);

  struct StepHooks {
    std::function<void()> after_schedule;  // the scheduler's queues are current
    std::function<void()> during_device;   // see the class comment
  };
  // One engine step. Returns false when nothing was scheduled (during_device is not called).
  // A failing step ends the requests it scheduled with kError; their Status is reported in
  // `errors` (request id, status).
  bool step(SchedulerEvents* events, std::vector<std::pair<std::string, Status>>* errors,
            const StepHooks& hooks = {});

  bool has_unfinished() const { return scheduler_.has_unfinished(); }
  bool has_request(const std::string& request_id) const {
    return scheduler_.has_request(request_id);
  }
  EngineCoreStats stats() const;
  const KvCacheManager& kv_cache() const { return kv_; }
  const Executor& executor() const { return executor_; }

 private:
  void fail_step(const SchedulerOutput& out, const Status& status, SchedulerEvents* events,
                 std::vector<std::pair<std::string, Status>>* errors);

  EngineCoreConfig config_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  Executor executor_;
  int64_t num_steps_ = 0;
  int64_t num_scheduled_tokens_ = 0;
  int64_t num_failed_steps_ = 0;
  // request id of every live sequence the executor has seen (for failing a step)
  std::unordered_map<int64_t, std::string> seq_requests_;
};

}  // namespace kite
