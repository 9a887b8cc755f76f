// SamplingBatchBuilder: turns per-choice SamplingParams and token histories into the flat
// SamplingBatch of one step (the executor builds one per step; tests and the GPU sampler's
// tests build them the same way).
#pragma once

#include <cstdint>
#include <span>

#include "kite/sampling_params.h"
#include "kite/status.h"
#include "sampling/sampling_batch.h"

namespace kite {

struct SamplingRow {
  const SamplingParams* params = nullptr;
  uint64_t seed = 0;  // the choice's effective seed (see choice_seed)
  uint32_t step = 0;  // outputs the choice has so far
  std::span<const int32_t> prompt_token_ids;
  std::span<const int32_t> output_token_ids;
  // The model's EOS ids: banned with params->stop_token_ids while the choice has fewer than
  // min_tokens outputs (EOS only when !ignore_eos, as in vLLM).
  std::span<const int32_t> eos_token_ids;
};

// The seed of choice `index` of a request whose seed is `request_seed` (vLLM's convention:
// seed + index), so each choice of an n > 1 request draws its own numbers.
inline uint64_t choice_seed(uint64_t request_seed, int index) {
  return request_seed + static_cast<uint64_t>(index);
}

class SamplingBatchBuilder {
 public:
  // Empties the batch, keeping its capacity.
  void reset();
  // Appends one row. A row whose values the samplers cannot use (check_sampling_row: a
  // value that is out of range once it is a float) is still appended, as a plain greedy row
  // with no processing, and its error is returned: the caller fails that row's request and
  // the batch stays valid for every other row.
  Status add_row(const SamplingRow& row);
  // Finishes the flags (all_greedy, max_num_logprobs) and returns the batch.
  const SamplingBatch& finish();
  SamplingBatch& batch() { return batch_; }

 private:
  void neutralize_row(int32_t r);  // greedy, no penalties, zero biases

  SamplingBatch batch_;
  bool any_processing_ = false;
};

}  // namespace kite
