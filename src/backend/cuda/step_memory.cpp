// Step memory: the activation buffers of the model graph's values, sized once for the step
// capacities (max_num_batched_tokens, max_num_seqs), the split-KV workspace, the sampler, the
// step-input staging buffers and the KV cache's addressing.
#include <algorithm>
#include <iterator>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/runner_state.h"
#include "core/logging.h"

namespace kite::cuda {
namespace {
constexpr size_t kAlign = 256;
}  // namespace

CudaModelRunner::Impl::~Impl() {
  for (auto& [b, g] : graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
  if (inputs_copied != nullptr) KITE_CUDA_WARN(cudaEventDestroy(inputs_copied));
}

void* CudaModelRunner::Impl::k_cache(int layer) const {
  return kv.as<char>() +
         (2 * static_cast<int64_t>(layer)) * num_blocks * kv_elems_per_block(block_size) * kv_es();
}

void* CudaModelRunner::Impl::v_cache(int layer) const {
  return kv.as<char>() + (2 * static_cast<int64_t>(layer) + 1) * num_blocks *
                             kv_elems_per_block(block_size) * kv_es();
}

Status CudaModelRunner::Impl::ensure_buffers(const KvCacheConfig& c) {
  if (mem.ready && c.max_num_batched_tokens == kv_cfg.max_num_batched_tokens &&
      c.max_num_seqs == kv_cfg.max_num_seqs) {
    kv_cfg = c;
    return ok_status();
  }
  if (c.max_num_seqs <= 0 || c.max_num_batched_tokens <= 0) {
    return invalid_argument("kv cache config: max_num_seqs and max_num_batched_tokens must be > 0");
  }
  if (c.block_size <= 0) return invalid_argument("kv cache config: block_size must be > 0");
  kv_cfg = c;
  StepCapacity& cap = mem.cap;
  cap.seqs = c.max_num_seqs;
  cap.tokens = static_cast<int>(std::max<int64_t>(c.max_num_batched_tokens, c.max_num_seqs));
  cap.logits = c.max_num_seqs;
  const int tpt = attn_path == AttentionPath::kTensorCore
                      ? prefill_tokens_per_tile(static_cast<int>(cfg.num_attention_heads),
                                                static_cast<int>(cfg.num_key_value_heads))
                      : 1;
  cap.tiles = cap.tokens / tpt + cap.seqs;
  // One buffer per graph value: [token rows or logits rows, width] in the compute dtype (F32
  // for the F32 values: the logits).
  size_t total = 0;
  std::vector<size_t> offsets;
  for (const ValueDecl& v : graph.values) {
    const int64_t rows = v.rows == RowSpace::kLogits ? cap.logits : cap.tokens;
    offsets.push_back(total);
    total = align_up(total + static_cast<size_t>(rows * v.width * (v.f32 ? 4 : es())), kAlign);
  }
  mem.arena.reset();
  KITE_ASSIGN_OR_RETURN(mem.arena, DeviceBuffer::allocate(total, "activations"));
  mem.values.clear();
  for (size_t o : offsets) mem.values.push_back(mem.arena.as<char>() + o);
  const int nq = static_cast<int>(cfg.num_attention_heads);
  KITE_ASSIGN_OR_RETURN(
      mem.split_ws, DeviceBuffer::allocate(
                        decode_workspace_bytes(kMaxSplitRows, nq, static_cast<int>(cfg.head_dim)),
                        "decode split-KV workspace"));
  KITE_ASSIGN_OR_RETURN(
      mem.split_counters,
      DeviceBuffer::allocate(
          decode_counter_bytes(cap.seqs, static_cast<int>(cfg.num_key_value_heads)),
          "decode split-KV counters"));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(mem.split_counters.data(), 0, mem.split_counters.size(), stream));
  KITE_ASSIGN_OR_RETURN(sampler, GpuSampler::create(cap.logits, full_cfg.vocab_size));
  if (tensor_parallel()) {
    tp_logits.reset();  // sized anew for cap.logits
    KITE_RETURN_IF_ERROR(ensure_tp_logits(cap.logits, /*big=*/false));
  }
  if (use_flashinfer) {
    const size_t ints = flashinfer_plan_capacity(cap.tokens, cap.seqs, nq,
                                                 static_cast<int>(cfg.head_dim), dev->num_sms());
    KITE_ASSIGN_OR_RETURN(mem.fi_work, DeviceBuffer::allocate(ints * 4, "flashinfer work lists"));
  }
  // FP8 linears: room for quantized activations of the widest FP8 input, and their scales.
  int64_t fp8_k = 0;
  fp8_w_bf16_bytes = 0;
  for (const DeviceWeight& dw : w.weights) {
    if (!dw.fp8()) continue;
    fp8_k = std::max(fp8_k, dw.cols);
    fp8_w_bf16_bytes = std::max(fp8_w_bf16_bytes, static_cast<size_t>(dw.rows * dw.cols * 2));
  }
  if (fp8_k > 0) {
    KITE_ASSIGN_OR_RETURN(mem.fp8_x, DeviceBuffer::allocate(
                                         static_cast<size_t>(cap.tokens) * fp8_k, "FP8 activations"));
    KITE_ASSIGN_OR_RETURN(
        mem.fp8_x_scale,
        DeviceBuffer::allocate(static_cast<size_t>(cap.tokens) * ((fp8_k + 127) / 128) * 4,
                               "FP8 activation scales"));
  }
  if (!graph.moes.empty()) {
    // MoE scratch for the largest block (every block of a model has the same shapes).
    const int64_t T = cap.tokens, E = moe_max_experts, rows = T * moe_max_top_k;
    const int64_t I = moe_max_inter, H = cfg.hidden_size;
    const size_t sizes[] = {static_cast<size_t>(T * E * 4),
                            static_cast<size_t>(rows * 4),
                            static_cast<size_t>(rows * 4),
                            static_cast<size_t>(rows * 4),
                            static_cast<size_t>((E + 1) * 4),
                            static_cast<size_t>(rows * 4),
                            static_cast<size_t>(rows * 2 * I * es()),
                            static_cast<size_t>(rows * I * es()),
                            static_cast<size_t>(rows * H * es())};
    size_t moe_total = 0;
    size_t at[std::size(sizes)];
    for (size_t i = 0; i < std::size(sizes); ++i) {
      at[i] = moe_total;
      moe_total = align_up(moe_total + sizes[i], kAlign);
    }
    StepMemory::Moe& m = mem.moe;
    m.buf.reset();
    KITE_ASSIGN_OR_RETURN(m.buf, DeviceBuffer::allocate(moe_total, "MoE scratch"));
    char* b = m.buf.as<char>();
    m.router_logits = reinterpret_cast<float*>(b + at[0]);
    m.topk_experts = reinterpret_cast<int32_t*>(b + at[1]);
    m.topk_weights = reinterpret_cast<float*>(b + at[2]);
    m.slot_row = reinterpret_cast<int32_t*>(b + at[3]);
    m.expert_offsets = reinterpret_cast<int32_t*>(b + at[4]);
    m.row_token = reinterpret_cast<int32_t*>(b + at[5]);
    m.gate_up = b + at[6];
    m.act = b + at[7];
    m.y = b + at[8];
    m.offsets_host.reset();
    KITE_ASSIGN_OR_RETURN(m.offsets_host,
                          PinnedBuffer::allocate(static_cast<size_t>(E + 1) * 4, "MoE offsets"));
    total += moe_total;
  }
  mem.ready = true;
  KITE_LOG_INFO("cuda: activations for {} tokens / {} sequences: {:.2f} GiB", cap.tokens, cap.seqs,
                static_cast<double>(total) / (1u << 30));
  return ok_status();
}

Status CudaModelRunner::Impl::ensure_inputs(size_t elems) {
  if (elems <= inputs_capacity) return ok_status();
  if (inputs_pending) KITE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(inputs_copied));
  inputs_pending = false;
  inputs_d.reset();
  inputs_h.reset();
  KITE_ASSIGN_OR_RETURN(inputs_d, DeviceBuffer::allocate(elems * 4, "step inputs"));
  KITE_ASSIGN_OR_RETURN(inputs_h, PinnedBuffer::allocate(elems * 4, "step inputs"));
  inputs_capacity = elems;
  return ok_status();
}

}  // namespace kite::cuda
