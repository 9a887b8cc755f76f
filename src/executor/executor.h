// Executor: turns a SchedulerOutput into device inputs, runs the model and samples.
//
// It keeps each sequence's tokens and block table from the scheduler's diffs, and appends the
// tokens it samples. One step:
//   submit(out): applies the diffs, builds the ForwardBatch and SamplingBatch (engine thread),
//                then runs forward + sample (+ prompt logprobs) — inline, or on the executor's
//                device thread when `async` is set;
//   wait():      returns the step's ModelStepOutput.
// With `async`, the engine thread's CPU work between submit() and wait() (turning the previous
// step's tokens into text and stream outputs) overlaps the device work of this step. The CPU
// backend runs inline: submit() does everything and wait() only hands the result over.
//
// Logits rows of a step: first one row per sample (a forking sequence's last position appears
// once per choice), then the rows of prompt positions whose logprobs were asked for, then the
// pooling rows of embedding requests (ForwardBatch::num_pooling_rows: hidden states, no
// logits). Mean pooling sums a sequence's rows over its prefill chunks; the embedding goes out
// with the step that computes the prompt's last token.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kite/status.h"
#include "runtime/forward_batch.h"
#include "runtime/model_runner.h"
#include "runtime/model_step_output.h"
#include "sampling/sampling_batch_builder.h"
#include "scheduler/scheduler_output.h"
#include "structured/bitmask_filler.h"
#include "structured/grammar_matcher.h"

namespace kite {

struct ExecutorOptions {
  int block_size = 16;
  bool async = false;  // run the model on a device thread (see above)
  // Threads that compute grammar bitmasks while the forward runs (0: inline before it).
  int grammar_threads = 0;
};

// Structured-output work of the steps so far.
struct GrammarStepStats {
  int64_t num_steps = 0;       // steps with at least one constrained row
  int64_t num_masks = 0;       // bitmasks computed
  double fill_ms_total = 0;    // wall time of the bitmask batches
  double wait_ms_total = 0;    // time sampling waited for them after the forward (not hidden)
  int64_t num_rejected = 0;    // sampled tokens a grammar refused (should stay 0)
};

class Executor {
 public:
  // REQUIRES: runner outlives the executor; its KV cache is allocated.
  Executor(ModelRunner* runner, const ExecutorOptions& options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Starts a step. REQUIRES: no step in flight. Errors in the diffs (an unknown sequence,
  // inconsistent counts) are kInternal and leave no step in flight.
  Status submit(const SchedulerOutput& out);
  // Waits for the step started by submit(). Errors are the runner's.
  Status wait(ModelStepOutput* result);
  // submit + wait.
  Status execute(const SchedulerOutput& out, ModelStepOutput* result);

  bool async() const { return options_.async; }
  GrammarStepStats grammar_stats() const;
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }

 private:
  struct SeqState {
    std::shared_ptr<const RequestInfo> request;
    int choice = 0;
    std::vector<int32_t> token_ids;
    std::vector<int32_t> block_ids;
    int64_t num_computed_tokens = 0;
    std::unique_ptr<structured::GrammarMatcher> matcher;  // structured outputs only
    // Embedding requests: the sum of the pooled rows' hidden states so far, and their count.
    std::vector<double> pool_sum;
    int64_t pool_count = 0;
  };
  // Bitmask rows of one constrained sequence in the step.
  struct MaskPlan {
    int64_t seq_id = 0;
    int first_row = 0;
    int num_rows = 0;  // a forking sequence's choices share the first row's mask
    uint8_t constrained = 0;
  };
  // What a step needs after the device work, to assemble the ModelStepOutput.
  struct RowPlan {
    int64_t seq_id = 0;
    int num_samples = 0;
    int first_sample_row = 0;
    int64_t prompt_logprobs_start = 0;  // prompt token index of the first entry
    int num_prompt_rows = 0;
    int first_prompt_row = 0;  // index among the prompt-logprob rows
    int num_top_prompt = 0;
    std::vector<int32_t> prompt_targets;  // the prompt token each prompt row scores
    int first_pool_row = 0;  // index among the step's pooling rows
    int num_pool_rows = 0;
    bool pool_final = false;  // the prompt is computed after this step: emit the embedding
  };

  Status apply_diffs(const SchedulerOutput& out);
  Status build_inputs(const SchedulerOutput& out);
  // forward + sample + prompt logprobs into result_ (device thread or inline).
  Status run_step();
  void finish_step();  // appends sampled tokens to the sequences (engine thread)
  void start_masks();  // starts the step's bitmasks (engine thread, after build_inputs)
  void finish_masks();  // waits for them (before sampling)
  void device_loop();

  ModelRunner* runner_;
  ExecutorOptions options_;
  int64_t vocab_ = 0;
  std::unordered_map<int64_t, SeqState> seqs_;

  // The step in flight.
  ForwardBatch batch_;
  SamplingBatchBuilder sampling_;
  std::vector<RowPlan> plan_;
  int num_sample_rows_ = 0;
  int num_prompt_rows_ = 0;
  SamplerOutput sampler_out_;
  std::vector<float> prompt_logits_;  // host copy of the prompt-logprob rows
  int num_pool_rows_ = 0;
  std::vector<float> pool_hidden_;  // host copy of the pooling rows' hidden states
  ModelStepOutput result_;
  Status step_status_;
  std::vector<std::pair<int64_t, Status>> failed_seqs_;  // rows build_inputs could not sample
  std::vector<MaskPlan> masks_;
  structured::BitmaskFiller filler_;
  mutable std::mutex stats_mu_;
  GrammarStepStats grammar_stats_;
  bool in_flight_ = false;

  // Device thread (async only).
  std::thread device_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool job_ready_ = false;
  bool job_done_ = false;
  bool stop_ = false;
};

}  // namespace kite
