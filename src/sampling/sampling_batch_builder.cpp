#include "sampling/sampling_batch_builder.h"

#include <algorithm>

#include "core/check.h"
#include "sampling/cpu_sampler.h"

namespace kite {

void SamplingBatchBuilder::reset() {
  SamplingBatch& b = batch_;
  b.temperature.clear();
  b.top_k.clear();
  b.top_p.clear();
  b.min_p.clear();
  b.repetition_penalty.clear();
  b.frequency_penalty.clear();
  b.presence_penalty.clear();
  b.seed.clear();
  b.step.clear();
  b.num_logprobs.clear();
  b.bias_indptr.assign(1, 0);
  b.bias_token_ids.clear();
  b.bias_values.clear();
  b.banned_indptr.assign(1, 0);
  b.banned_token_ids.clear();
  b.prompt_tokens_indptr.assign(1, 0);
  b.prompt_token_ids.clear();
  b.output_tokens_indptr.assign(1, 0);
  b.output_token_ids.clear();
  b.token_bitmask.clear();
  b.has_bitmask.clear();
  b.bitmask_words = 0;
  b.all_greedy = false;
  b.max_num_logprobs = -1;
  any_processing_ = false;
}

Status SamplingBatchBuilder::add_row(const SamplingRow& row) {
  KITE_CHECK(row.params != nullptr);
  if (batch_.bias_indptr.empty()) reset();
  const SamplingParams& p = *row.params;
  SamplingBatch& b = batch_;
  const bool greedy = p.greedy();
  b.temperature.push_back(greedy ? 0.0f : static_cast<float>(p.temperature));
  b.top_k.push_back(p.top_k > 0 ? p.top_k : 0);
  b.top_p.push_back(static_cast<float>(p.top_p));
  b.min_p.push_back(static_cast<float>(p.min_p));
  b.repetition_penalty.push_back(static_cast<float>(p.repetition_penalty));
  b.frequency_penalty.push_back(static_cast<float>(p.frequency_penalty));
  b.presence_penalty.push_back(static_cast<float>(p.presence_penalty));
  b.seed.push_back(row.seed);
  b.step.push_back(row.step);
  b.num_logprobs.push_back(p.logprobs.has_value() ? *p.logprobs : -1);

  for (const auto& [token, bias] : p.logit_bias) {
    b.bias_token_ids.push_back(token);
    b.bias_values.push_back(bias);
  }
  b.bias_indptr.push_back(static_cast<int32_t>(b.bias_token_ids.size()));

  const size_t banned_begin = b.banned_token_ids.size();
  if (static_cast<int64_t>(row.output_token_ids.size()) < p.min_tokens) {
    if (!p.ignore_eos) {
      b.banned_token_ids.insert(b.banned_token_ids.end(), row.eos_token_ids.begin(),
                                row.eos_token_ids.end());
    }
    b.banned_token_ids.insert(b.banned_token_ids.end(), p.stop_token_ids.begin(),
                              p.stop_token_ids.end());
  }
  b.banned_indptr.push_back(static_cast<int32_t>(b.banned_token_ids.size()));
  const bool banned = b.banned_token_ids.size() > banned_begin;

  const bool rep = p.repetition_penalty != 1.0;
  const bool freq = p.frequency_penalty != 0.0 || p.presence_penalty != 0.0;
  if (rep) {
    b.prompt_token_ids.insert(b.prompt_token_ids.end(), row.prompt_token_ids.begin(),
                              row.prompt_token_ids.end());
  }
  b.prompt_tokens_indptr.push_back(static_cast<int32_t>(b.prompt_token_ids.size()));
  if (rep || freq) {
    b.output_token_ids.insert(b.output_token_ids.end(), row.output_token_ids.begin(),
                              row.output_token_ids.end());
  }
  b.output_tokens_indptr.push_back(static_cast<int32_t>(b.output_token_ids.size()));

  if (p.logprobs.has_value()) b.max_num_logprobs = std::max(b.max_num_logprobs, *p.logprobs);
  const int32_t r = b.num_rows() - 1;
  Status status = check_sampling_row(b, r);
  if (!status.ok()) {
    neutralize_row(r);
    return status;
  }
  if (!greedy || !p.logit_bias.empty() || banned || rep || freq || p.logprobs.has_value()) {
    any_processing_ = true;
  }
  return ok_status();
}

void SamplingBatchBuilder::neutralize_row(int32_t r) {
  SamplingBatch& b = batch_;
  const auto i = static_cast<size_t>(r);
  b.temperature[i] = 0.0f;
  b.top_k[i] = 0;
  b.top_p[i] = 1.0f;
  b.min_p[i] = 0.0f;
  b.repetition_penalty[i] = 1.0f;
  b.frequency_penalty[i] = 0.0f;
  b.presence_penalty[i] = 0.0f;
  for (int32_t k = b.bias_indptr[i]; k < b.bias_indptr[i + 1]; ++k) {
    b.bias_values[static_cast<size_t>(k)] = 0.0f;
  }
  // Its logprobs, if asked, are still computed; the row's request fails, so nobody reads them.
  any_processing_ = any_processing_ || b.num_logprobs[i] >= 0;
}

const SamplingBatch& SamplingBatchBuilder::finish() {
  if (batch_.bias_indptr.empty()) reset();
  // all_greedy promises a plain argmax: every row greedy, nothing to process, no logprobs.
  batch_.all_greedy = batch_.num_rows() > 0 && !any_processing_;
  return batch_;
}

}  // namespace kite
