// The host half of a step: the attention plan (our kernels' work lists, the decode split
// factor), the FlashInfer prefill plan, the input layout, and the one host-to-device copy of the
// step's int32 inputs.
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/runner_state.h"
#include "core/check.h"

namespace kite::cuda {

StepPlan CudaModelRunner::Impl::plan_step(const ForwardBatch& b) const {
  StepPlan p;
  p.attention = plan_attention(b.query_start_loc.data(), b.seq_lens.data(), b.num_seqs(),
                               b.max_seq_len, static_cast<int>(cfg.num_attention_heads),
                               static_cast<int>(cfg.num_key_value_heads), dev->num_sms());
  StepCapacity c;
  c.tokens = b.num_tokens();
  c.seqs = b.num_seqs();
  c.logits = b.num_logits();
  c.tiles = static_cast<int>(p.attention.prefill_tile_seq.size());
  p.layout = make_step_layout(c);
  p.pad_seqs = b.num_seqs();
  p.dims = StepDims{b.num_tokens(),         b.num_seqs(),           b.num_logits(),        c.tiles,
                    p.attention.num_decode, p.attention.num_splits, p.attention.all_decode};
  if (attn_path == AttentionPath::kGeneric) p.dims.tiles = p.dims.decode = 0;
  if (use_flashinfer && p.dims.tiles > 0) {
    // The sequences our prefill kernel would have served go to FlashInfer's; decodes stay ours.
    std::vector<char> mark(b.num_seqs(), 0);
    std::vector<int32_t> seqs;
    for (const int32_t s : p.attention.prefill_tile_seq) {
      if (!mark[s]) seqs.push_back(s), mark[s] = 1;
    }
    FlashInferPlan fp = plan_flashinfer_prefill(
        b.query_start_loc.data(), b.seq_lens.data(), b.block_table_indptr.data(), seqs,
        static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.head_dim), dev->num_sms());
    p.fi_ctas = fp.num_ctas;
    p.fi_works = fp.num_works;
    p.fi_work = std::move(fp.work);
    p.dims.tiles = 0;
  }
  return p;
}

Status CudaModelRunner::Impl::upload(const ForwardBatch& b, const StepPlan& plan) {
  const size_t n = plan.layout.total(static_cast<int>(b.block_table.size()));
  KITE_CHECK_LE(n, inputs_capacity);
  if (inputs_pending) KITE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(inputs_copied));
  pack_step(b, plan.attention, plan.layout, plan.pad_seqs, inputs_h.as<int32_t>());
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(inputs_d.data(), inputs_h.data(), n * 4, cudaMemcpyHostToDevice, stream));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventRecord(inputs_copied, stream));
  inputs_pending = true;
  if (plan.fi_works > 0) {
    KITE_CHECK_LE(plan.fi_work.size() * 4, mem.fi_work.size());
    // Pageable source: the copy is staged before cudaMemcpyAsync returns.
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(mem.fi_work.data(), plan.fi_work.data(),
                                              plan.fi_work.size() * 4, cudaMemcpyHostToDevice,
                                              stream));
  }
  return ok_status();
}

}  // namespace kite::cuda
