// Prefill attention through FlashInfer's Hopper (sm_90a, wgmma + TMA) batch prefill kernel over
// our paged KV cache, when the build has FlashInfer's headers (KITE_FLASHINFER_INCLUDE, fetched
// by scripts/fetch-flashinfer.sh); otherwise flashinfer_prefill_available() is false and
// attention_prefill (ours, mma.sync) serves every prefill.
//
// No copy: our cache [num_blocks, num_kv_heads, block_size, head_dim] is FlashInfer's HND paged
// layout with page_size = block_size; kv_indices/kv_indptr are our block_table/
// block_table_indptr; q and out keep our strides. Only the work list differs: the plan below
// (ours; FlashInfer's own planner would also schedule the decode rows of a mixed step) gives
// each persistent CTA a list of (sequence, query tile, q head) items for the sequences the
// prefill kernel serves.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/attention.h"

namespace kite::cuda {

class DeviceContext;

// True when this build has the FlashInfer prefill kernels and `dev` can run them (compute
// capability 9.x).
bool flashinfer_prefill_available(const DeviceContext& dev);

// Head dims the FlashInfer path is instantiated for (FlashInferHeadDims, kernel_support.h).
bool flashinfer_prefill_supports(int head_dim);

// Host plan of one step: the persistent CTAs' work lists, laid out as one int32 array that the
// caller copies to the device as is.
struct FlashInferPlan {
  // [work_indptr (num_ctas + 1)][qo_tile (n)][qo_indptr (n)][kv_indptr (n)][qo_len (n)]
  // [kv_len (n)][head (n)][batch (n)], n = num_works
  std::vector<int32_t> work;
  int num_ctas = 0;
  int num_works = 0;
};

// Int32 capacity of FlashInferPlan::work for up to `max_tokens` query tokens in `max_seqs`
// sequences (the device buffer the runner allocates once).
size_t flashinfer_plan_capacity(int max_tokens, int max_seqs, int num_q_heads, int head_dim,
                                int num_sms);

// Plans the sequences `seqs` (ids into the step's arrays; host copies of query_start_loc,
// seq_lens and block_table_indptr). Each query tile of each q head becomes one work item; items
// go, longest KV range first, to the least loaded of `num_sms` CTAs.
FlashInferPlan plan_flashinfer_prefill(const int32_t* query_start_loc, const int32_t* seq_lens,
                                       const int32_t* block_table_indptr,
                                       const std::vector<int32_t>& seqs, int num_q_heads,
                                       int head_dim, int num_sms);

// Runs the kernel for a plan whose `work` array is at `work_device`. p: as for
// attention_prefill (q, q_stride, out, caches, block_table, sizes, scale, sliding_window).
// REQUIRES: flashinfer_prefill_available(dev), flashinfer_prefill_supports(p.head_dim), p.dtype
// bf16, num_ctas == dev.num_sms() (the plan's).
void flashinfer_prefill(const AttentionParams& p, const int32_t* work_device, int num_ctas,
                        int num_works, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
