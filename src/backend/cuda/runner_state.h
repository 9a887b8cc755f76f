// The state of one CudaModelRunner, shared by the files that implement it (internal to the
// backend):
//   cuda_model_runner.cpp  lifecycle: create, KV sizing (profiling forward), allocation, steps
//   step_memory.cpp        activation buffers for a step's capacities, KV-cache addressing
//   step_plan.cpp          a step's plan (attention work lists, FlashInfer plan, input layout)
//                          and the one host-to-device copy of its inputs
//   op_runner.cpp          the model graph's ops on the device (fused or plain op list)
//   linear_dispatch.cpp    linear layers: GEMV (with fused prologue/epilogue) or cuBLASLt GEMM
//   graph_runner.cpp       CUDA graphs of decode-only steps: capture and replay
//   step_profiler.cu       opt-in per-step phase timing (CUDA events at op boundaries)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_model_runner.h"
#include "backend/cuda/cuda_weights.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_context.h"
#include "backend/cuda/fp8_quant.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/nccl_communicator.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/step_inputs.h"
#include "backend/cuda/step_profiler.h"
#include "models/model_graph.h"
#include "models/tensor_parallel.h"

namespace kite::cuda {

// Sizes of one step as the kernels see them.
struct StepDims {
  int tokens = 0, seqs = 0, logits = 0;
  int tiles = 0;   // prefill tiles of our kernel (0 when FlashInfer or the generic path serves)
  int decode = 0;  // decode rows of the split-KV kernel (0 on the generic path)
  int splits = 1;
  bool all_decode = false;
};

// Device memory of a step's activations (step_memory.cpp), sized once for the capacities.
struct StepMemory {
  StepCapacity cap;
  DeviceBuffer arena;
  std::vector<void*> values;  // per ValueId: [rows, width] (token rows or logits rows)
  DeviceBuffer logits_big;    // eager steps with more logits rows than cap.logits
  DeviceBuffer split_ws;
  DeviceBuffer split_counters;
  DeviceBuffer fi_work;  // int32 FlashInfer work lists (when FlashInfer serves prefill)
  // FP8 linears with more rows than the GEMV: the quantized activations [cap.tokens, max k],
  // their scales [cap.tokens, ceil(max k / 128)], and (fallback only) one dequantized weight.
  DeviceBuffer fp8_x;
  DeviceBuffer fp8_x_scale;
  DeviceBuffer fp8_w_bf16;
  // MoE blocks (moe.h), shared by every layer: router logits F32 [cap.tokens, num_experts],
  // top-k experts / weights / slot rows [cap.tokens * top_k], expert offsets [num_experts + 1],
  // permuted rows' tokens [cap.tokens * top_k], and the permuted activations gate_up
  // [rows, 2 * inter], act [rows, inter], y [rows, hidden] in the compute dtype.
  struct Moe {
    DeviceBuffer buf;
    float* router_logits = nullptr;
    int32_t* topk_experts = nullptr;
    float* topk_weights = nullptr;
    int32_t* slot_row = nullptr;
    int32_t* expert_offsets = nullptr;
    int32_t* row_token = nullptr;
    void* gate_up = nullptr;
    void* act = nullptr;
    void* y = nullptr;
    PinnedBuffer offsets_host;  // [num_experts + 1], the per-expert cuBLASLt path's copy
  } moe;
  bool ready = false;
};

// The host half of a step (step_plan.cpp).
struct StepPlan {
  AttentionPlan attention;
  StepLayout layout;
  StepDims dims;
  int pad_seqs = 0;  // CUDA-graph padding: the batch is padded to this many sequences
  int fi_ctas = 0;   // FlashInfer plan (0 works = not used this step)
  int fi_works = 0;
  std::vector<int32_t> fi_work;  // host work lists, copied to StepMemory::fi_work
};

// The weight operand of a GEMV: bf16, or FP8 with its scales (linear_dispatch.cpp).
void set_gemv_weight(GemvParams* g, const DeviceWeight& wt);

struct CudaModelRunner::Impl {
  ModelConfig cfg;
  CudaRunnerOptions opts;
  std::unique_ptr<DeviceContext> dev;
  cudaStream_t stream = nullptr;  // dev->stream()
  ModelGraph graph;
  // The op lists the device runs: `plain` for every step, `fused` (norm prologues, residual /
  // RoPE+KV / SiLU epilogues in the GEMV) for steps of at most gemv_max_m tokens when every
  // linear fits the GEMV (fused_ok).
  std::vector<Op> plain_ops, fused_ops;
  bool fused_ok = false;
  DeviceWeights w;
  // One per ModelGraph::ropes entry (Gemma 3: global and local): inverse frequencies in float
  // (bf16 path) and double (float32 mode: RoPE angles in double, as the CPU backend), and
  // LongRoPE's long-context tables (empty without LongRoPE).
  struct RopeTable {
    DeviceBuffer inv_freq, inv_freq64, inv_freq_long, inv_freq64_long;
    int rotary_dim = 0;
    float attention_factor = 1.f;
    int64_t long_after = 0;
  };
  std::vector<RopeTable> ropes;
  // Per MoE block (ModelGraph::moes): device arrays of its experts' weight pointers,
  // [num_experts] gate_up then [num_experts] down.
  DeviceBuffer moe_weight_ptrs;
  int moe_max_experts = 0, moe_max_top_k = 0;
  int64_t moe_max_inter = 0;
  AttentionPath attn_path = AttentionPath::kTensorCore;
  // Prefill attention through FlashInfer's sm90 kernel (builds with KITE_FLASHINFER_INCLUDE, bf16,
  // head_dim 64/128; KITE_FLASHINFER=0 turns it off; never with an FP8 KV cache, whose prefill
  // runs on our kernel). Eager steps only: graphs are decode-only.
  bool use_flashinfer = false;
  std::unique_ptr<GpuSampler> sampler;
  // Tensor parallelism (tensor_parallel.cpp). `cfg` above is this rank's (local_config: its
  // heads, intermediate rows, vocab_stride as the vocabulary); full_cfg is the model's.
  ModelConfig full_cfg;
  TpLayout tp;  // the whole model with one rank
  // CudaRunnerOptions::comm's NCCL communicator on `stream`, made by connect_ranks() (nullptr
  // before and without one).
  std::shared_ptr<NcclCommunicator> nccl;
  bool workers_released = false;  // rank 0: its workers have left run_worker()
  // Several ranks: the rank's logits [cap.logits, vocab_stride], every rank's all-gathered
  // [tp, cap.logits, vocab_stride] and the full [cap.logits, vocab] (F32; the graphs' buffers),
  // and the first two again for eager steps of more logits rows (grown as needed).
  DeviceBuffer tp_logits, tp_gathered, tp_full_logits;
  DeviceBuffer tp_logits_big, tp_gathered_big;
  // The step's full-vocabulary logits buffer (graphs and eager steps of at most cap.logits rows).
  float* step_logits() const {
    return tensor_parallel() ? tp_full_logits.as<float>()
                             : static_cast<float*>(mem.values[static_cast<size_t>(graph.logits)]);
  }
  // The several-ranks path: tp.size > 1, or one rank with force_tensor_parallel_path (tests).
  bool tp_path = false;
  bool tensor_parallel() const { return tp_path; }
  bool is_worker() const { return tensor_parallel() && tp.rank != 0; }
  // Rank 0: lets the workers leave run_worker() (the runner's destructor).
  void release_workers();
  // Rank 0: sends a call to the workers (tensor_parallel.cpp).
  Status send_kv_call(int32_t call, int64_t num_blocks, const KvCacheConfig& c);
  Status send_forward(const ForwardBatch& b);
  // All ranks: the KV blocks every rank can hold (min over ranks of `local`).
  Result<int64_t> min_over_ranks(const Result<int64_t>& local);
  // Several ranks: tp_logits, tp_gathered, tp_full_logits for cap.logits rows (ensure_buffers),
  // or the big pair for `rows` rows.
  Status ensure_tp_logits(int rows, bool big);
  // The step's full-vocabulary logits [rows, full vocab] from every rank's local ones
  // [rows, vocab_stride]: all-gather into `gathered`, then each rank's columns into place (the
  // last rank's padding dropped). On the stream, so graphs capture it.
  Status gather_logits(const float* local, float* gathered, int rows, float* full);
  // The per-rank halves of the runner's public calls.
  Result<int64_t> local_num_kv_blocks(const KvCacheConfig& c);
  Status local_allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& c);
  Status local_forward(const ForwardBatch& b, float** logits_out);

  KvCacheConfig kv_cfg;
  StepMemory mem;

  // Step inputs: one pinned staging buffer and its device copy.
  DeviceBuffer inputs_d;
  PinnedBuffer inputs_h;
  size_t inputs_capacity = 0;  // int32 elements
  cudaEvent_t inputs_copied = nullptr;
  bool inputs_pending = false;

  // KV cache: per layer K then V, each [num_blocks, num_kv_heads, block_size, head_dim] of the
  // compute dtype, or of E4M3 bytes (kv_fp8()).
  DeviceBuffer kv;
  int64_t num_blocks = 0;
  int block_size = 16;

  struct Graph {
    cudaGraphExec_t exec = nullptr;
    StepLayout layout;
    int splits = 1;
  };
  std::map<int, Graph> graphs;
  bool last_used_graph = false;
  bool graph_replay = true;  // set_graph_replay: captured graphs stay, replay off when false
  // Step profiling (set_step_profiling): null when off, and then no event is ever recorded.
  std::unique_ptr<StepProfiler> profiler;
  // Opens a profiled interval of `phase` at this point of the stream (nothing when off).
  void prof_mark(StepPhase phase, std::string_view label) {
    if (profiler != nullptr) profiler->mark(stream, phase, label);
  }
  // KITE_STEP_PROFILE=N[:LEAD_US]: every Nth forward() of a running engine is profiled and its
  // profile logged after its sample() (or at the next forward()); 0 = off. The profiler lives
  // in auto_profiler between profiled steps (so the others replay graphs as usual).
  int auto_profile_every = 0;
  int auto_profile_lead_us = 20000;
  int64_t auto_profile_count = 0;
  std::unique_ptr<StepProfiler> auto_profiler;
  bool auto_profiling = false;    // the step in flight is an auto-profiled one
  std::string auto_profile_step;  // "T tokens, S seqs (D decode)" of that step
  Status log_auto_profile();
  // Pooling (ForwardBatch::num_pooling_rows) of the step in flight: the last pool_rows of the
  // step's logits rows get no LM head; run_model copies their final-norm rows
  // (final_hidden, the plain list's LM-head input; kNoValue when there is none) to pool_host,
  // [pool_rows, hidden] in the compute dtype.
  int pool_rows = 0;
  ValueId final_hidden = kNoValue;
  std::vector<uint8_t> pool_host;

  ~Impl();

  bool f32() const { return opts.dtype == DType::kF32; }
  int64_t es() const { return f32() ? 4 : 2; }  // bytes per weight / activation element
  bool kv_fp8() const { return opts.kv_cache_dtype == DType::kF8E4M3; }
  int64_t kv_es() const { return kv_fp8() ? 1 : es(); }  // bytes per KV cache element
  // The layer's FP8 KV scales (1.0 without an FP8 cache).
  float k_scale(int layer) const {
    return kv_fp8() ? opts.kv_scales.k[static_cast<size_t>(layer)] : 1.f;
  }
  float v_scale(int layer) const {
    return kv_fp8() ? opts.kv_scales.v[static_cast<size_t>(layer)] : 1.f;
  }
  int64_t kv_elems_per_block(int bs) const { return cfg.num_key_value_heads * bs * cfg.head_dim; }
  // Bytes of one block (K and V of every layer) of this rank's cache.
  int64_t kv_bytes_per_block(int bs) const {
    return 2 * cfg.num_hidden_layers * kv_elems_per_block(bs) * kv_es();
  }
  void* k_cache(int layer) const;
  void* v_cache(int layer) const;

  // step_memory.cpp
  Status ensure_buffers(const KvCacheConfig& c);
  Status ensure_inputs(size_t elems);

  // step_plan.cpp
  StepPlan plan_step(const ForwardBatch& b) const;
  Status upload(const ForwardBatch& b, const StepPlan& plan);

  // FP8 activations already in mem.fp8_x / mem.fp8_x_scale: the op that produced the bf16
  // value x (an RMSNorm or a gated activation, op_runner.cpp) also wrote its FP8 copy for the FP8
  // linear right after it — m rows of k columns, q_stride k, per-token scales or (block) 1x128
  // group scales stored group-major, quantize_fp8's layout for that weight.
  struct Fp8Input {
    const void* x = nullptr;
    int m = 0, k = 0;
    bool block = false;
  };

  // linear_dispatch.cpp: y = x W^T (+ bias) for m rows, through the GEMV (m <= gemv_max_m, shape
  // supported) or cuBLASLt. `pre`: x's FP8 copy, when its producer wrote one (the scaled FP8 GEMM
  // then skips its quantize_fp8; any other path ignores it).
  Status linear(const void* x, int64_t ldx, const DeviceWeight& wt, void* y, int64_t ldy, int m,
                bool out_f32, const Fp8Input* pre = nullptr);
  // A linear op of the fused list: its prologue/epilogue in the GEMV. REQUIRES: fused_ok and
  // m <= gemv_max_m.
  void fused_linear(const Op& op, const StepLayout& L, int m);
  // An FP8 linear through cuBLASLt's scaled FP8 GEMM (or the dequantized fallback); bf16 y.
  Status fp8_gemm(const void* x, int64_t ldx, const DeviceWeight& wt, void* y, int64_t ldy, int m,
                  const Fp8Input* pre);
  // op_runner.cpp: the FP8 copy ops[i] (an RMSNorm or a gated activation over `rows` token
  // rows) writes for ops[i + 1], an FP8 linear reading its output through the scaled FP8 GEMM;
  // disabled (q == nullptr) otherwise. Fills *pre for that linear.
  Fp8Output fp8_output_for(const std::vector<Op>& ops, size_t i, int rows, Fp8Input* pre) const;
  // mem.fp8_x / mem.fp8_x_scale laid out for FP8 weight wt's scaled GEMM (gemm.h): q_stride
  // wt.cols, per-token scales, or (block-scaled weights) 1x128 group scales stored group-major.
  Fp8Output fp8_activations_for(const DeviceWeight& wt) const;
  bool fp8_gemm_fallback = false;  // no scaled FP8 GEMM here (or KITE_FP8_GEMM=dequant)
  bool fp8_fused_quant = true;     // producers write FP8 copies (KITE_FP8_FUSED_QUANT=0: off)
  size_t fp8_w_bf16_bytes = 0;     // the largest FP8 linear as bf16

  // op_runner.cpp: one MoE block (ModelGraph::moes[op.moe]) over `rows` tokens; `may_sync`: the
  // step is eager and not decode-only, so large steps may take the per-expert cuBLASLt path.
  Status run_moe(const Op& op, int rows, bool may_sync);
  // op_runner.cpp: the step's ops (fused when d.tokens <= gemv_max_m and fused_ok); FlashInfer
  // serves the prefill sequences of its plan when fi_works > 0 (work lists in mem.fi_work).
  Status run_model(const StepLayout& L, const StepDims& d, int fi_ctas, int fi_works,
                   float* logits_out);

  // graph_runner.cpp
  Status capture_graphs();
  // Replays the graph for this decode-only batch, if one fits; false when none applies.
  Result<bool> replay_graph(const ForwardBatch& b);

  Status forward_eager(const ForwardBatch& b, float** logits_out);
};

}  // namespace kite::cuda
