// Sequence and RequestState: the scheduler's mutable view of requests (engine thread only).
//
// A request with n choices starts as one sequence (choice 0) that computes the prompt and, at
// its end, samples the first token of every choice; choices 1..n-1 then become sequences of
// their own that share the prompt's full KV blocks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "scheduler/request_info.h"

namespace kite {

enum class SeqStatus { kWaiting, kRunning, kFinished };

struct RequestState;

struct Sequence {
  int64_t seq_id = 0;
  RequestState* request = nullptr;
  int choice = 0;
  // Computes the prompt and samples the first token of all n choices (choice 0 before fork).
  bool samples_all_choices = false;
  std::vector<int32_t> token_ids;  // prompt + outputs
  int64_t num_computed_tokens = 0;
  SeqStatus status = SeqStatus::kWaiting;
  bool new_to_executor = true;  // next schedule sends full state (NewSequenceData)
  size_t num_blocks_sent = 0;   // block-table entries the executor has
  int64_t num_preemptions = 0;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_output_tokens() const;
  // Scheduling seats: a sequence that will fork counts as all its choices.
  int seats() const;
};

struct RequestState {
  std::shared_ptr<const RequestInfo> info;
  uint64_t arrival_index = 0;  // FCFS order
  int num_unfinished_choices = 0;
  int64_t num_prompt_logprobs_emitted = 1;  // next prompt logprob index (token 0 has none)
  bool scheduled_once = false;
  int64_t total_preemptions = 0;  // of its finished sequences
  std::vector<Sequence*> seqs;    // live sequences
};

inline int64_t Sequence::num_output_tokens() const {
  return num_tokens() - request->info->num_prompt_tokens();
}
inline int Sequence::seats() const { return samples_all_choices ? request->info->n() : 1; }

}  // namespace kite
