// SchedulerOutput: one step as the scheduler decided it, sent to the executor as diffs
// (the shape of vLLM v1's SchedulerOutput). Types only: the executor includes this header
// without linking the scheduler.
//
// The executor keeps per-sequence state (tokens, block table) across steps:
//   - new_seqs: sequences it has not seen, or resumed after preemption: full state.
//   - cached_seqs: sequences it already holds: only the blocks appended since last time.
//   - scheduled: the batch order, and how many tokens each sequence computes this step.
//   - finished_seq_ids / preempted_seq_ids: drop their state.
// The executor appends the tokens it samples to its own copy, so decodes carry no token ids.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "scheduler/request_info.h"

namespace kite {

struct NewSequenceData {
  int64_t seq_id = 0;
  std::shared_ptr<const RequestInfo> request;
  int choice = 0;                   // choice index within the request, 0..n-1
  std::vector<int32_t> token_ids;   // prompt + outputs so far
  std::vector<int32_t> block_ids;   // the whole block table
  int64_t num_computed_tokens = 0;  // before this step (prefix-cache hits included)
};

struct CachedSequenceData {
  int64_t seq_id = 0;
  std::vector<int32_t> new_block_ids;  // appended to the block table
  int64_t num_computed_tokens = 0;     // before this step
};

struct ScheduledSequence {
  int64_t seq_id = 0;
  int64_t num_new_tokens = 0;  // tokens computed this step: [num_computed, + num_new_tokens)
  // Tokens to sample after this step: 0 (a prefill chunk that does not reach the end), 1, or
  // n for a request's first sequence at the end of its prompt (one per choice, choice order).
  int num_samples = 0;
  bool prompt_logprobs = false;  // compute logprobs of the prompt tokens in this chunk
  // An embedding request: the chunk's hidden states feed its pooling (never samples).
  bool pooling = false;
};

struct SchedulerOutput {
  std::vector<NewSequenceData> new_seqs;
  std::vector<CachedSequenceData> cached_seqs;
  std::vector<ScheduledSequence> scheduled;  // batch order
  int64_t total_num_scheduled_tokens = 0;
  std::vector<int64_t> finished_seq_ids;   // since the previous step
  std::vector<int64_t> preempted_seq_ids;  // this step

  bool empty() const { return scheduled.empty(); }
};

}  // namespace kite
