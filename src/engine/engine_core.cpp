#include "engine/engine_core.h"

#include <set>

#include "core/logging.h"

namespace kite {

EngineCore::EngineCore(const EngineCoreConfig& config, ModelRunner* runner)
    : config_(config),
      kv_(config.num_kv_blocks, config.block_size, config.enable_prefix_caching),
      scheduler_(config.scheduler, &kv_),
      executor_(runner, ExecutorOptions{config.block_size, config.async_execution,
                                        config.grammar_threads}) {}

Status EngineCore::add_request(std::shared_ptr<const RequestInfo> info) {
  return scheduler_.add_request(std::move(info));
}

void EngineCore::abort_request(const std::string& request_id, SchedulerEvents* events) {
  scheduler_.finish_request(request_id, FinishReason::kAbort, events);
}

void EngineCore::finish_choice(const std::string& request_id, int choice, std::string stop_string,
                               SchedulerEvents* events) {
  scheduler_.finish_choice(request_id, choice, FinishReason::kStop, std::move(stop_string), events);
}

void EngineCore::fail_step(const SchedulerOutput& out, const Status& status,
                           SchedulerEvents* events,
                           std::vector<std::pair<std::string, Status>>* errors) {
  ++num_failed_steps_;
  KITE_LOG_ERROR("engine step failed: {}", status.to_string());
  // Every request with a sequence in the step ends with the error; the rest go on.
  for (const NewSequenceData& d : out.new_seqs) seq_requests_[d.seq_id] = d.request->request_id;
  std::set<std::string> failed;
  for (const ScheduledSequence& s : out.scheduled) {
    auto it = seq_requests_.find(s.seq_id);
    if (it != seq_requests_.end()) failed.insert(it->second);
  }
  for (const std::string& id : failed) {
    if (!scheduler_.has_request(id)) continue;
    scheduler_.finish_request(id, FinishReason::kError, events);
    errors->emplace_back(id, status);
  }
}

bool EngineCore::step(SchedulerEvents* events, std::vector<std::pair<std::string, Status>>* errors,
                      const StepHooks& hooks) {
  SchedulerOutput out = scheduler_.schedule();
  if (hooks.after_schedule) hooks.after_schedule();
  for (int64_t id : out.finished_seq_ids) seq_requests_.erase(id);
  if (out.empty()) return false;
  ++num_steps_;
  num_scheduled_tokens_ += out.total_num_scheduled_tokens;
  for (const NewSequenceData& d : out.new_seqs) seq_requests_[d.seq_id] = d.request->request_id;
  Status status = executor_.submit(out);
  if (!status.ok()) {
    fail_step(out, status, events, errors);
    return true;
  }
  if (hooks.during_device) hooks.during_device();
  ModelStepOutput result;
  status = executor_.wait(&result);
  if (!status.ok()) {
    fail_step(out, status, events, errors);
    return true;
  }
  // A sequence whose row failed ends its own request; the update skips it.
  for (const auto& [seq_id, row_status] : result.failed_seqs) {
    auto it = seq_requests_.find(seq_id);
    if (it == seq_requests_.end() || !scheduler_.has_request(it->second)) continue;
    KITE_LOG_WARN("request {} failed in sampling: {}", it->second, row_status.to_string());
    const std::string id = it->second;
    scheduler_.finish_request(id, FinishReason::kError, events);
    errors->emplace_back(id, row_status);
  }
  scheduler_.update(out, result, events);
  return true;
}

EngineCoreStats EngineCore::stats() const {
  EngineCoreStats st;
  st.scheduler = scheduler_.stats();
  st.kv = kv_.stats();
  st.num_running_requests = st.scheduler.num_running_requests;
  st.num_steps = num_steps_;
  st.num_failed_steps = num_failed_steps_;
  st.num_scheduled_tokens = num_scheduled_tokens_;
  st.grammar = executor_.grammar_stats();
  return st;
}

}  // namespace kite
