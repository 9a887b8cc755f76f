// The CPU sampler: the reference implementation of the definition in sampling_batch.h.
//
// Numerics (the GPU sampler follows the same steps; it may differ only where float rounding
// decides an exact boundary):
//   - steps 1-5 are float32 operations in the written order: logits[t] += bias;
//     repetition: logits[t] / r or logits[t] * r; frequency/presence: logits[t] -= f * c + p;
//     temperature: logits[t] / T. A row is greedy when T < 1e-5 (SamplingParams::greedy()).
//   - logprobs: x_t - logsumexp(x), logsumexp accumulated in double; rank = 1 + the number of
//     tokens whose processed logit is strictly greater; top logprobs sorted by (logit desc, id
//     asc). Rows with num_logprobs < 0 get logprob 0 and rank 0; top entries past a row's
//     num_logprobs have token id -1 and logprob -inf.
//   - top_k: keep x_t >= the k-th largest value (ties at the threshold are kept); k >= vocab
//     keeps all.
//   - top_p: over the survivors, sorted by (x desc, id asc), keep the shortest prefix whose
//     sum of exp(x - max) (double) reaches top_p * the survivors' sum (double).
//   - min_p: keep the survivors with expf(x_t - max) >= min_p (float).
//   - sample: argmax over kept t of x_t + race_key(u_t) (philox.h), lowest id on ties.
// Non-finite processed logits (-inf from bans) are never sampled; if no token is finite the
// row falls back to the greedy argmax.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kite/status.h"
#include "sampling/sampling_batch.h"

namespace kite {

// Samples one token per row of `logits` (F32 [batch.num_rows(), vocab], host memory, row
// stride `vocab`) into `out` (resized here). Rows run in parallel on `pool` (nullptr: inline).
// Errors: kInvalidArgument when the batch's arrays are inconsistent (sizes, CSR offsets, token
// ids outside [0, vocab)).
Status cpu_sample(const float* logits, int64_t vocab, const SamplingBatch& batch,
                  SamplerOutput* out, ThreadPool* pool = nullptr);

// Steps 1-5 of the definition applied in place to one row: logit bias, min_tokens bans,
// penalties and temperature. REQUIRES: check_sampling_batch(batch, vocab) is OK.
void apply_logits_processing(float* row, int64_t vocab, const SamplingBatch& batch, int32_t r);

// Logprob of `token` under log_softmax(x) (double log-sum-exp), its rank (1 + the number of
// strictly larger logits) and the num_top most likely tokens by (logit desc, id asc), written
// to top_ids/top_lps[0, max_top) (entries past num_top: id -1, logprob -inf).
void compute_logprobs(const float* x, int64_t vocab, int32_t token, int32_t num_top,
                      int32_t max_top, float* chosen_lp, int32_t* rank, int32_t* top_ids,
                      float* top_lps);

// Validates the shapes and ids of a batch and every row's values (what cpu_sample checks
// first).
Status check_sampling_batch(const SamplingBatch& batch, int64_t vocab);

// Validates the values of row r as the samplers use them (float): temperature >= 0 and finite,
// top_p in (0, 1], min_p in [0, 1], repetition_penalty > 0 and finite, finite penalties and
// logit biases. REQUIRES: r < batch.num_rows() and the row's arrays are filled.
Status check_sampling_row(const SamplingBatch& batch, int32_t r);

// Rows whose temperature is below this are greedy.
inline constexpr float kGreedyTemperature = 1e-5f;

}  // namespace kite
