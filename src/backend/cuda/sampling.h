// GPU sampling: the definition of sampling/sampling_batch.h, step for step as the CPU reference
// (sampling/cpu_sampler.h) computes it, one CTA per row.
//
// The host side (GpuSampler) checks the batch, turns the penalty lists into per-row distinct
// token lists (repetition: prompt ∪ output; frequency/presence: output tokens with counts) so
// the device applies each token once without atomics, and packs everything into one upload.
// Results equal the CPU sampler's except where a float boundary is decided by the last bit of a
// transcendental (the race keys use log, min_p uses exp: the device's differ from glibc's by at
// most an ulp) or by the order of a double-precision sum (top_p's mass).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "kite/status.h"
#include "sampling/sampling_batch.h"

namespace kite::cuda {

class DeviceContext;

// Per-row parameters as the kernel reads them.
struct SampleRow {
  float temperature = 1.f;
  float top_p = 1.f;
  float min_p = 0.f;
  float repetition_penalty = 1.f;
  float frequency_penalty = 0.f;
  float presence_penalty = 0.f;
  int32_t top_k = 0;
  int32_t num_logprobs = -1;
  uint64_t seed = 0;
  uint32_t step = 0;
  int32_t flags = 0;  // kSampleGreedy | kSampleProcess
  // [begin, end) into the packed lists.
  int32_t bias_begin = 0, bias_end = 0;
  int32_t ban_begin = 0, ban_end = 0;
  int32_t rep_begin = 0, rep_end = 0;
  int32_t freq_begin = 0, freq_end = 0;
};
constexpr int32_t kSampleGreedy = 1;
constexpr int32_t kSampleProcess = 2;

struct SampleParams {
  const float* logits = nullptr;  // [num_rows, vocab]
  float* scratch = nullptr;       // [num_rows, vocab] processed logits (rows with kSampleProcess)
  int64_t vocab = 0;
  int num_rows = 0;
  const SampleRow* rows = nullptr;
  const int32_t* list_ids = nullptr;  // bias ids, ban ids, rep ids, freq ids (by the ranges)
  const float* list_vals = nullptr;   // bias values / freq counts, parallel to list_ids
  int max_top = 0;                    // max_num_logprobs (0 when < 0)
  bool want_logprobs = false;
  // Outputs: [num_rows] tokens, logprobs, ranks; [num_rows, max_top] top ids / logprobs.
  int32_t* out_tokens = nullptr;
  float* out_logprobs = nullptr;
  int32_t* out_ranks = nullptr;
  int32_t* out_top_ids = nullptr;
  float* out_top_logprobs = nullptr;
};

void sample_rows(const SampleParams& p, const DeviceContext& dev, cudaStream_t stream);

// out[r] = argmax of logits row r (lowest id on ties; NaN never wins; all NaN -> 0).
// `workspace` holds argmax_workspace_bytes(max_rows) bytes, zero before the first call (the
// kernel leaves its counters at zero again). REQUIRES: num_rows <= max_rows.
constexpr int kArgmaxChunks = 32;
size_t argmax_workspace_bytes(int max_rows);
void argmax_rows(const float* logits, int64_t vocab, int num_rows, int32_t* out, void* workspace,
                 int max_rows, const DeviceContext& dev, cudaStream_t stream);

class GpuSampler {
 public:
  // max_rows: the most logits rows one call samples.
  static Result<std::unique_ptr<GpuSampler>> create(int max_rows, int64_t vocab);

  // logits: device F32 [num_rows, vocab], row stride vocab, on `dev`'s device (current). Waits
  // for the stream (the tokens are on the host when it returns). kInvalidArgument for an
  // inconsistent batch.
  Status sample(const float* logits, int num_rows, const SamplingBatch& batch, SamplerOutput* out,
                const DeviceContext& dev, cudaStream_t stream);

 private:
  GpuSampler() = default;
  Status reserve_lists(size_t n);

  int max_rows_ = 0;
  int64_t vocab_ = 0;
  DeviceBuffer scratch_;  // [max_rows, vocab] f32
  DeviceBuffer rows_d_;   // [max_rows] SampleRow
  PinnedBuffer rows_h_;
  DeviceBuffer lists_d_;  // ids then values
  PinnedBuffer lists_h_;
  size_t list_capacity_ = 0;
  DeviceBuffer out_d_;      // tokens | logprobs | ranks | top ids | top logprobs
  DeviceBuffer argmax_ws_;  // argmax partials and counters
  PinnedBuffer out_h_;
  int out_top_capacity_ = 0;
  std::vector<int32_t> tmp_ids_;
};

}  // namespace kite::cuda
