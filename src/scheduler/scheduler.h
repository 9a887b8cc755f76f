// Scheduler: continuous batching in the vLLM v1 style (engine thread only).
//
// There are no prefill and decode phases. Each sequence has num_computed_tokens and
// num_tokens; every step spends a token budget (max_num_batched_tokens) on running sequences
// first (a decode costs 1 token, a prefill chunk up to the rest of the budget), then admits
// waiting ones (prefix-cache hits skip their cached tokens) while seats (max_num_seqs) and
// KV blocks last. When a running sequence cannot get a block, the lowest-priority running
// sequence (FCFS: the last admitted) is preempted: its blocks are freed and it goes back to
// the front of the waiting queue to be recomputed; nothing is dropped. Requests end exactly
// once: stop (EOS, stop token, stop string via finish_choice), length, abort or error.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kite/request.h"
#include "kite/status.h"
#include "kv_cache/kv_cache_manager.h"
#include "runtime/model_step_output.h"
#include "scheduler/scheduler_output.h"
#include "scheduler/sequence.h"

namespace kite {

enum class SchedulingPolicy { kFcfs, kPriority };

struct SchedulerConfig {
  int max_num_seqs = 256;
  int64_t max_num_batched_tokens = 8192;
  int64_t max_model_len = 2048;
  bool enable_chunked_prefill = true;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;

  // Without chunked prefill a whole prompt must fit one step's budget, so
  // max_num_batched_tokens must be >= max_model_len. kInvalidArgument naming the field.
  Status validate() const;
};

// News of one choice from update() or a finish call.
struct ChoiceEvent {
  std::shared_ptr<const RequestInfo> request;
  int choice = 0;
  std::vector<int32_t> new_token_ids;
  std::vector<LogprobEntry> logprobs;  // parallel to new_token_ids when asked for
  FinishReason finish_reason = FinishReason::kNone;
  std::variant<std::monostate, std::string, int32_t> stop_reason;
  std::vector<float> embedding;  // an embedding request's pooled vector (with its finish)
};

struct SchedulerEvents {
  std::vector<ChoiceEvent> choices;
  // Prompt logprobs, in order, entry index prompt_logprobs_start.. of each request.
  struct PromptLogprobs {
    std::shared_ptr<const RequestInfo> request;
    int64_t start = 0;
    std::vector<LogprobEntry> entries;
  };
  std::vector<PromptLogprobs> prompt_logprobs;
  // Requests whose every choice has finished (each appears exactly once, ever), with the
  // request's totals.
  struct Finished {
    std::shared_ptr<const RequestInfo> request;
    int64_t num_preemptions = 0;
  };
  std::vector<Finished> finished;
  // Requests scheduled for the first time this step, and their prefix-cache hit tokens.
  std::vector<std::pair<std::shared_ptr<const RequestInfo>, int64_t>> first_scheduled;

  void clear();
  bool empty() const;
};

struct SchedulerStats {
  int64_t num_running_seqs = 0;
  int64_t num_waiting_seqs = 0;
  int64_t num_running_requests = 0;  // requests with a running sequence
  int64_t num_waiting_requests = 0;  // unfinished requests with none (new or preempted)
  int64_t num_preemptions = 0;
  int64_t num_requests = 0;  // unfinished
};

class Scheduler {
 public:
  // REQUIRES: config.validate() is OK; kv outlives the scheduler.
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv);

  // Accepts a request (validated by the engine). kInvalidArgument for a duplicate live id,
  // n > max_num_seqs or an empty prompt; kOutOfRange when prompt + 1 > max_model_len (an
  // embedding request: prompt > max_model_len).
  Status add_request(std::shared_ptr<const RequestInfo> info);

  SchedulerOutput schedule();
  // Applies the step's results: advances computed tokens, caches full blocks, appends sampled
  // tokens, forks choices, applies stop conditions. Sequences that finished between
  // schedule() and update() are skipped.
  void update(const SchedulerOutput& out, const ModelStepOutput& result, SchedulerEvents* events);

  // Ends one choice (a stop string matched). No-op if it has already finished.
  void finish_choice(const std::string& request_id, int choice, FinishReason reason,
                     std::variant<std::monostate, std::string, int32_t> stop_reason,
                     SchedulerEvents* events);
  // Ends every unfinished choice of a request with `reason` (kAbort, kError). No-op for an
  // unknown or finished request.
  void finish_request(const std::string& request_id, FinishReason reason, SchedulerEvents* events);

  bool has_request(const std::string& request_id) const;
  bool has_unfinished() const { return !requests_.empty(); }
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }

 private:
  Sequence* find_seq(int64_t seq_id) const;
  int running_seats() const;
  // The next waiting sequence to admit (FCFS: the front; priority: best (priority, arrival)).
  std::deque<Sequence*>::iterator next_waiting();
  Sequence* pick_victim() const;
  void preempt(Sequence* seq, SchedulerOutput* out);
  // Checks EOS / stop token / length after `token` was appended. kNone when it goes on.
  FinishReason check_stop(const Sequence& seq, int32_t token,
                          std::variant<std::monostate, std::string, int32_t>* stop_reason) const;
  void finish_seq(Sequence* seq, FinishReason reason,
                  std::variant<std::monostate, std::string, int32_t> stop_reason,
                  SchedulerEvents* events);
  Sequence* new_sequence(RequestState* req, int choice);
  void fork_choices(Sequence* parent, const SequenceStepOutput& res, SchedulerEvents* events);
  void append_token(Sequence* seq, int32_t token, const LogprobEntry* logprob,
                    SchedulerEvents* events);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::unordered_map<std::string, std::unique_ptr<RequestState>> requests_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;
  std::vector<int64_t> finished_seq_ids_;  // for the next SchedulerOutput
  // Requests first scheduled by schedule(), reported by the following update().
  std::vector<std::pair<std::shared_ptr<const RequestInfo>, int64_t>> first_scheduled_;
  int64_t next_seq_id_ = 1;
  uint64_t next_arrival_ = 0;
  int64_t num_preemptions_ = 0;
};

}  // namespace kite
