// SamplingBatch: per-row sampling parameters for one step, and SamplerOutput.
//
// Row r of the logits [num_rows, vocab] is processed in this order (CPU and GPU samplers
// implement the same definition, so their results agree):
//   0. grammar mask (structured outputs): a constrained row's tokens whose bit is clear in its
//                    bitmask get -inf (applied first: -inf survives every later step, so the
//                    order is immaterial; logprobs therefore see the mask). If the processed
//                    row has no finite token left, the lowest allowed token is taken.
//   1. logit_bias:   logits[t] += bias
//   2. min_tokens:   banned tokens (EOS and stop_token_ids while the choice has fewer than
//                    min_tokens outputs) get -inf
//   3. repetition_penalty r (!= 1): for each distinct t in prompt ∪ output:
//                    logits[t] = logits[t] > 0 ? logits[t] / r : logits[t] * r
//   4. frequency f / presence p: for each output token t with count c:
//                    logits[t] -= f * c + p
//   5. temperature T: greedy rows (T == 0) take argmax (lowest id on ties); other rows divide
//                    by T. "Processed logits" = the result of 1-5; logprobs are their
//                    log-softmax (before any truncation below).
//   6. top_k (k > 0): keep tokens whose logit >= the k-th largest
//   7. top_p (< 1):  keep the smallest prefix of tokens by descending probability whose mass
//                    is >= top_p (at least one)
//   8. min_p (> 0):  drop tokens with prob < min_p * max prob
//   9. sample:       token = argmax_t (log p_t - log E_t), E_t = -log(U_t), with U_t in (0, 1)
//                    from Philox4x32-10 keyed by the row's seed and counter
//                    (step, t / 4) lane t % 4 — exponential-race (Gumbel) sampling: the same
//                    random numbers whatever the batch, on CPU and GPU alike.
// The exact draws (key/counter words, U from the top 23 bits) are in sampling/philox.h, and the
// float/double precision of every step in sampling/cpu_sampler.h (the reference sampler).
// all_greedy may be set only when every row is greedy with nothing to process (no bias, bans,
// penalties) and no logprobs: the sampler may then take a plain argmax.
#pragma once

#include <cstdint>
#include <vector>

namespace kite {

struct SamplingBatch {
  // [num_rows] each
  std::vector<float> temperature;
  std::vector<int32_t> top_k;  // 0 = off
  std::vector<float> top_p;    // 1 = off
  std::vector<float> min_p;    // 0 = off
  std::vector<float> repetition_penalty;  // 1 = off
  std::vector<float> frequency_penalty;   // 0 = off
  std::vector<float> presence_penalty;    // 0 = off
  std::vector<uint64_t> seed;
  std::vector<uint32_t> step;  // outputs the choice has so far (the RNG counter)
  std::vector<int32_t> num_logprobs;  // -1 = none; 0 = chosen token only; k = top-k too

  // CSR lists, [num_rows + 1] offsets each.
  std::vector<int32_t> bias_indptr;
  std::vector<int32_t> bias_token_ids;
  std::vector<float> bias_values;
  std::vector<int32_t> banned_indptr;  // min_tokens bans
  std::vector<int32_t> banned_token_ids;
  // Tokens seen, for penalties: only filled for rows whose penalties are active.
  std::vector<int32_t> prompt_tokens_indptr;   // repetition penalty
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> output_tokens_indptr;   // all three penalties
  std::vector<int32_t> output_token_ids;

  // Grammar bitmasks: [num_rows * bitmask_words] int32 (bit t % 32 of word t / 32 set = token t
  // allowed; structured/bitmask.h), meaningful for rows with has_bitmask[r] != 0. Both empty
  // when no row is constrained. The executor fills them after building the batch (on the
  // structured-output threads, while the forward runs).
  std::vector<int32_t> token_bitmask;
  std::vector<uint8_t> has_bitmask;  // [num_rows] or empty
  int64_t bitmask_words = 0;

  bool all_greedy = false;      // fast path: argmax only, no processing (masks still apply)
  int32_t max_num_logprobs = -1;

  int32_t num_rows() const { return static_cast<int32_t>(temperature.size()); }
};

struct SamplerOutput {
  std::vector<int32_t> token_ids;  // [num_rows]
  // When max_num_logprobs >= 0: [num_rows] chosen logprob and rank, and
  // [num_rows * max_num_logprobs] top ids/logprobs (row-major, most likely first).
  std::vector<float> logprobs;
  std::vector<int32_t> ranks;
  std::vector<int32_t> top_token_ids;
  std::vector<float> top_logprobs;
};

}  // namespace kite
