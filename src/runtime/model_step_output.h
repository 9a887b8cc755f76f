// ModelStepOutput: what one executed step produced, for Scheduler::update.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kite/request.h"
#include "kite/status.h"

namespace kite {

struct SequenceStepOutput {
  int64_t seq_id = 0;
  // ScheduledSequence::num_samples tokens (choice order for a forking sequence).
  std::vector<int32_t> token_ids;
  std::vector<LogprobEntry> logprobs;  // parallel to token_ids when the request asked
  // Logprobs of prompt tokens prompt_logprobs_start, prompt_logprobs_start + 1, ... (raw
  // log-softmax of the logits at the previous position; token 0 never has one).
  int64_t prompt_logprobs_start = 0;
  std::vector<LogprobEntry> prompt_logprobs;
  // An embedding request whose prompt is now computed: its pooled hidden state (F32
  // [hidden_size], not normalised).
  std::vector<float> embedding;
};

struct ModelStepOutput {
  std::vector<SequenceStepOutput> seqs;  // sequences that sampled or have prompt logprobs
  // Sequences whose rows could not be sampled (e.g. a sampling value out of range as a float):
  // their tokens in `seqs` are placeholders; the engine ends their requests with the error
  // and keeps every other sequence of the step.
  std::vector<std::pair<int64_t, Status>> failed_seqs;
};

}  // namespace kite
