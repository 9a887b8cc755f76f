// GpuSampler: host half of the GPU sampler (batch checks, list preparation, one upload, one
// launch, one download).
#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/sampling.h"
#include "sampling/cpu_sampler.h"

namespace kite::cuda {

namespace {

constexpr int kInitialTop = 20;

std::pair<int32_t, int32_t> range(const std::vector<int32_t>& indptr, int32_t r) {
  if (indptr.empty()) return {0, 0};
  return {indptr[r], indptr[r + 1]};
}

size_t out_bytes(int rows, int top) {
  return static_cast<size_t>(rows) * (3 + 2 * static_cast<size_t>(top)) * 4;
}

}  // namespace

Result<std::unique_ptr<GpuSampler>> GpuSampler::create(int max_rows, int64_t vocab) {
  std::unique_ptr<GpuSampler> s(new GpuSampler());
  s->max_rows_ = max_rows;
  s->vocab_ = vocab;
  KITE_ASSIGN_OR_RETURN(
      s->scratch_,
      DeviceBuffer::allocate(static_cast<size_t>(max_rows) * vocab * 4, "sampler scratch logits"));
  KITE_ASSIGN_OR_RETURN(s->rows_d_,
                        DeviceBuffer::allocate(max_rows * sizeof(SampleRow), "sampler rows"));
  KITE_ASSIGN_OR_RETURN(s->rows_h_,
                        PinnedBuffer::allocate(max_rows * sizeof(SampleRow), "sampler rows"));
  s->out_top_capacity_ = kInitialTop;
  KITE_ASSIGN_OR_RETURN(
      s->out_d_, DeviceBuffer::allocate(out_bytes(max_rows, kInitialTop), "sampler outputs"));
  KITE_ASSIGN_OR_RETURN(
      s->out_h_, PinnedBuffer::allocate(out_bytes(max_rows, kInitialTop), "sampler outputs"));
  KITE_RETURN_IF_ERROR(s->reserve_lists(1 << 16));
  KITE_ASSIGN_OR_RETURN(
      s->argmax_ws_, DeviceBuffer::allocate(argmax_workspace_bytes(max_rows), "argmax workspace"));
  KITE_CUDA_RETURN_IF_ERROR(cudaMemset(s->argmax_ws_.data(), 0, s->argmax_ws_.size()));
  return s;
}

Status GpuSampler::reserve_lists(size_t n) {
  if (n <= list_capacity_) return ok_status();
  const size_t cap = std::max(n, list_capacity_ * 2);
  // The previous upload may still be reading the pinned buffer.
  KITE_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  KITE_ASSIGN_OR_RETURN(lists_d_, DeviceBuffer::allocate(cap * 8, "sampler lists"));
  KITE_ASSIGN_OR_RETURN(lists_h_, PinnedBuffer::allocate(cap * 8, "sampler lists"));
  list_capacity_ = cap;
  return ok_status();
}

Status GpuSampler::sample(const float* logits, int num_rows, const SamplingBatch& b,
                          SamplerOutput* out, const DeviceContext& dev, cudaStream_t stream) {
  KITE_RETURN_IF_ERROR(check_sampling_batch(b, vocab_));
  if (num_rows != b.num_rows()) {
    return invalid_argument("sample: " + std::to_string(b.num_rows()) + " parameter rows for " +
                            std::to_string(num_rows) + " logits rows");
  }
  if (num_rows > max_rows_) {
    return out_of_range("sample: " + std::to_string(num_rows) + " rows exceed the sampler's " +
                        std::to_string(max_rows_));
  }
  out->token_ids.assign(static_cast<size_t>(num_rows), 0);
  const bool want_lp = b.max_num_logprobs >= 0;
  int32_t* tokens_d = out_d_.as<int32_t>();
  if (b.all_greedy && !want_lp) {
    argmax_rows(logits, vocab_, num_rows, tokens_d, argmax_ws_.data(), max_rows_, dev, stream);
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out->token_ids.data(), tokens_d, num_rows * 4,
                                              cudaMemcpyDeviceToHost, stream));
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    out->logprobs.clear();
    out->ranks.clear();
    out->top_token_ids.clear();
    out->top_logprobs.clear();
    return ok_status();
  }
  const int max_top = want_lp ? b.max_num_logprobs : 0;
  if (max_top > out_top_capacity_) {
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    KITE_ASSIGN_OR_RETURN(out_d_,
                          DeviceBuffer::allocate(out_bytes(max_rows_, max_top), "sampler outputs"));
    KITE_ASSIGN_OR_RETURN(out_h_,
                          PinnedBuffer::allocate(out_bytes(max_rows_, max_top), "sampler outputs"));
    out_top_capacity_ = max_top;
    tokens_d = out_d_.as<int32_t>();
  }

  // Lists: bias ids (+ values), ban ids, distinct repetition ids, distinct frequency ids
  // (+ counts), per row in that order.
  size_t n_list = b.bias_token_ids.size() + b.banned_token_ids.size() + b.prompt_token_ids.size() +
                  2 * b.output_token_ids.size();
  KITE_RETURN_IF_ERROR(reserve_lists(n_list));
  int32_t* ids = lists_h_.as<int32_t>();
  float* vals = reinterpret_cast<float*>(ids + list_capacity_);
  SampleRow* rows = rows_h_.as<SampleRow>();
  int32_t n = 0;
  for (int32_t r = 0; r < num_rows; ++r) {
    SampleRow& row = rows[r];
    row = SampleRow{};
    row.temperature = b.temperature[r];
    row.top_p = b.top_p[r];
    row.min_p = b.min_p[r];
    row.repetition_penalty = b.repetition_penalty[r];
    row.frequency_penalty = b.frequency_penalty[r];
    row.presence_penalty = b.presence_penalty[r];
    row.top_k = b.top_k[r];
    row.num_logprobs = b.num_logprobs[r];
    row.seed = b.seed[r];
    row.step = b.step[r];
    const bool greedy = b.temperature[r] < kGreedyTemperature;
    auto [bs, be] = range(b.bias_indptr, r);
    auto [ns, ne] = range(b.banned_indptr, r);
    auto [ps, pe] = range(b.prompt_tokens_indptr, r);
    auto [os, oe] = range(b.output_tokens_indptr, r);
    bool process = be > bs || ne > ns;
    row.bias_begin = n;
    for (int32_t i = bs; i < be; ++i, ++n) {
      ids[n] = b.bias_token_ids[i];
      vals[n] = b.bias_values[i];
    }
    row.bias_end = row.ban_begin = n;
    for (int32_t i = ns; i < ne; ++i, ++n) ids[n] = b.banned_token_ids[i];
    row.ban_end = row.rep_begin = n;
    if (b.repetition_penalty[r] != 1.0f) {
      process = true;
      tmp_ids_.assign(b.prompt_token_ids.begin() + ps, b.prompt_token_ids.begin() + pe);
      tmp_ids_.insert(tmp_ids_.end(), b.output_token_ids.begin() + os,
                      b.output_token_ids.begin() + oe);
      std::sort(tmp_ids_.begin(), tmp_ids_.end());
      tmp_ids_.erase(std::unique(tmp_ids_.begin(), tmp_ids_.end()), tmp_ids_.end());
      for (int32_t t : tmp_ids_) ids[n++] = t;
    }
    row.rep_end = row.freq_begin = n;
    if (b.frequency_penalty[r] != 0.0f || b.presence_penalty[r] != 0.0f) {
      process = true;
      tmp_ids_.assign(b.output_token_ids.begin() + os, b.output_token_ids.begin() + oe);
      std::sort(tmp_ids_.begin(), tmp_ids_.end());
      for (size_t i = 0; i < tmp_ids_.size();) {
        size_t j = i;
        while (j < tmp_ids_.size() && tmp_ids_[j] == tmp_ids_[i]) ++j;
        ids[n] = tmp_ids_[i];
        vals[n] = static_cast<float>(j - i);
        ++n;
        i = j;
      }
    }
    row.freq_end = n;
    if (!greedy && b.temperature[r] != 1.0f) process = true;
    row.flags = (greedy ? kSampleGreedy : 0) | (process ? kSampleProcess : 0);
  }
  KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(rows_d_.data(), rows, num_rows * sizeof(SampleRow),
                                            cudaMemcpyHostToDevice, stream));
  int32_t* ids_d = lists_d_.as<int32_t>();
  float* vals_d = reinterpret_cast<float*>(ids_d + list_capacity_);
  if (n > 0) {
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ids_d, ids, n * 4, cudaMemcpyHostToDevice, stream));
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(vals_d, vals, n * 4, cudaMemcpyHostToDevice, stream));
  }
  SampleParams p;
  p.logits = logits;
  p.scratch = scratch_.as<float>();
  p.vocab = vocab_;
  p.num_rows = num_rows;
  p.rows = rows_d_.as<SampleRow>();
  p.list_ids = ids_d;
  p.list_vals = vals_d;
  p.max_top = max_top;
  p.want_logprobs = want_lp;
  p.out_tokens = tokens_d;
  p.out_logprobs = reinterpret_cast<float*>(tokens_d + max_rows_);
  p.out_ranks = tokens_d + 2 * max_rows_;
  p.out_top_ids = tokens_d + 3 * max_rows_;
  p.out_top_logprobs =
      reinterpret_cast<float*>(tokens_d + 3 * max_rows_ + static_cast<size_t>(max_rows_) * max_top);
  sample_rows(p, dev, stream);
  const size_t bytes = out_bytes(max_rows_, max_top);
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(out_h_.data(), out_d_.data(), bytes, cudaMemcpyDeviceToHost, stream));
  KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const int32_t* h = out_h_.as<int32_t>();
  std::memcpy(out->token_ids.data(), h, num_rows * 4);
  if (want_lp) {
    out->logprobs.assign(reinterpret_cast<const float*>(h + max_rows_),
                         reinterpret_cast<const float*>(h + max_rows_) + num_rows);
    out->ranks.assign(h + 2 * max_rows_, h + 2 * max_rows_ + num_rows);
    const size_t top = static_cast<size_t>(num_rows) * max_top;
    const int32_t* ti = h + 3 * max_rows_;
    const float* tl = reinterpret_cast<const float*>(ti + static_cast<size_t>(max_rows_) * max_top);
    out->top_token_ids.assign(ti, ti + top);
    out->top_logprobs.assign(tl, tl + top);
  } else {
    out->logprobs.clear();
    out->ranks.clear();
    out->top_token_ids.clear();
    out->top_logprobs.clear();
  }
  return ok_status();
}

}  // namespace kite::cuda
