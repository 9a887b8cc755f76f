// CudaModelRunner's lifecycle: create (device context, model graph, weights on the device),
// KV sizing by a profiling forward, KV allocation and graph capture, and each step (replay a
// decode graph or run eagerly). The parts of a step live in the files runner_state.h lists.
#include "backend/cuda/cuda_model_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/graph_support.h"
#include "backend/cuda/kernel_support.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/runner_state.h"
#include "core/logging.h"
#include "models/fusion.h"
#include "models/model_weights.h"
#include "models/registry.h"
#include "models/tensor_parallel.h"
#include "parallel/communicator.h"

namespace kite::cuda {

namespace {

// Device memory kept free beyond the measured peak: CUDA graphs, lazily loaded modules.
constexpr int64_t kGraphReserveBytes = 256ll << 20;

}  // namespace

Status CudaModelRunner::Impl::forward_eager(const ForwardBatch& b, float** logits_out) {
  const StepPlan plan = plan_step(b);
  KITE_RETURN_IF_ERROR(ensure_inputs(plan.layout.total(static_cast<int>(b.block_table.size()))));
  prof_mark(StepPhase::kOther, "inputs");
  KITE_RETURN_IF_ERROR(upload(b, plan));
  float* out = step_logits();
  if (b.num_logits() > mem.cap.logits) {
    const size_t need = static_cast<size_t>(b.num_logits()) * full_cfg.vocab_size * 4;
    if (mem.logits_big.size() < need) {
      KITE_LOG_WARN("cuda: allocating {} logits rows ({:.2f} GiB) for one step", b.num_logits(),
                    static_cast<double>(need) / (1u << 30));
      KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
      mem.logits_big.reset();
      KITE_ASSIGN_OR_RETURN(mem.logits_big, DeviceBuffer::allocate(need, "prompt logits"));
    }
    out = mem.logits_big.as<float>();
  }
  if (tensor_parallel() && b.num_logits() > mem.cap.logits) {
    KITE_RETURN_IF_ERROR(ensure_tp_logits(b.num_logits(), /*big=*/true));
  }
  KITE_RETURN_IF_ERROR(run_model(plan.layout, plan.dims, plan.fi_ctas, plan.fi_works, out));
  *logits_out = out;
  return ok_status();
}

Result<DType> choose_compute_dtype(const ModelConfig& cfg, const WeightLookup& weights,
                                   std::string_view requested) {
  if (requested == "bfloat16") return DType::kBF16;
  if (requested == "float16") {
    return unimplemented("the CUDA backend computes in bfloat16 or float32, not float16");
  }
  KITE_ASSIGN_OR_RETURN(
      AttentionPath path,
      attention_path(static_cast<int>(cfg.head_dim), static_cast<int>(cfg.num_attention_heads),
                     static_cast<int>(cfg.num_key_value_heads)));
  if (requested == "float32") {
    if (!attention_path_supports(path, DType::kF32)) {
      return unimplemented(
          "float32 compute needs the generic attention path (head_dim <= 32); "
          "head_dim " +
          std::to_string(cfg.head_dim) + " runs in bfloat16 only");
    }
    return DType::kF32;
  }
  if (requested != "auto") {
    return invalid_argument("dtype must be auto, bfloat16 or float32, got '" +
                            std::string(requested) + "'");
  }
  // The embedding table as the model definition declares it (either name when tied).
  KITE_ASSIGN_OR_RETURN(ModelGraph g, build_model_graph(cfg));
  bool f32_checkpoint = false;
  for (const WeightDecl& d : g.weights) {
    if (d.kind != WeightKind::kEmbedding) continue;
    Result<TensorView> embed = weights(d.parts[0].name);
    if (!embed.ok() && !d.tied_to.empty()) embed = weights(d.tied_to);
    f32_checkpoint = embed.ok() && embed->dtype == DType::kF32;
  }
  return f32_checkpoint && attention_path_supports(path, DType::kF32) ? DType::kF32 : DType::kBF16;
}

// ---- CudaModelRunner -------------------------------------------------------------------------

CudaModelRunner::CudaModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaModelRunner::~CudaModelRunner() {
  if (impl_ != nullptr) impl_->release_workers();
  if (impl_ != nullptr && impl_->stream != nullptr) {
    KITE_CUDA_WARN(cudaStreamSynchronize(impl_->stream));
  }
}

Result<std::unique_ptr<CudaModelRunner>> CudaModelRunner::create(const ModelConfig& model_cfg,
                                                                 const WeightLookup& weights,
                                                                 const CudaRunnerOptions& opts) {
  KITE_RETURN_IF_ERROR(model_cfg.validate());
  // Several ranks: this rank's part of the model (its heads, intermediate rows, vocabulary rows);
  // the kernels see its local config. No collective here (connect_ranks() makes NCCL).
  TpLayout tp;
  tp.num_q_heads = model_cfg.num_attention_heads;
  tp.num_kv_heads = model_cfg.num_key_value_heads;
  tp.intermediate = model_cfg.intermediate_size;
  tp.vocab_rows = tp.vocab_stride = model_cfg.vocab_size;
  ModelConfig cfg = model_cfg;
  const bool tp_path = opts.comm != nullptr &&
                       (opts.comm->world_size() > 1 || opts.force_tensor_parallel_path);
  if (tp_path) {
    if (opts.pipeline_parallel_size != 1) {
      return unimplemented(
          "pipeline parallelism on the CUDA backend is not implemented yet (tensor parallelism "
          "is; several stages run with --device cpu)");
    }
    KITE_ASSIGN_OR_RETURN(tp,
                          make_tp_layout(model_cfg, opts.comm->rank(), opts.comm->world_size()));
    cfg = local_config(model_cfg, tp);
  }
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<DeviceContext> dev, DeviceContext::create(opts.device));
  KITE_ASSIGN_OR_RETURN(
      AttentionPath path,
      attention_path(static_cast<int>(cfg.head_dim), static_cast<int>(cfg.num_attention_heads),
                     static_cast<int>(cfg.num_key_value_heads)));
  if (cfg.head_dim % 2 != 0) return unimplemented("rotary embedding needs an even head_dim");
  if (!ElementwiseDTypes::contains(opts.dtype)) {
    return unimplemented("the CUDA backend computes in bfloat16 or float32, not " +
                         std::string(dtype_name(opts.dtype)));
  }
  if (!attention_path_supports(path, opts.dtype)) {
    return unimplemented(
        "float32 compute needs the generic attention path (head_dim <= 32); "
        "head_dim " +
        std::to_string(cfg.head_dim) + " runs in bfloat16 only");
  }
  if (opts.kv_cache_dtype != DType::kBF16 && opts.kv_cache_dtype != DType::kF32 &&
      opts.kv_cache_dtype != DType::kF8E4M3) {
    return unimplemented("the CUDA KV cache holds the compute dtype (" +
                         std::string(dtype_name(opts.dtype)) + ") or FP8 E4M3, not " +
                         std::string(dtype_name(opts.kv_cache_dtype)));
  }
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->full_cfg = model_cfg;
  impl->tp = tp;
  impl->tp_path = tp_path;
  impl->opts = opts;
  if (opts.kv_cache_dtype == DType::kF8E4M3) {
    KITE_RETURN_IF_ERROR(complete_kv_cache_scales(&impl->opts.kv_scales, cfg.num_hidden_layers));
  } else {
    impl->opts.kv_cache_dtype = opts.dtype;
  }
  impl->stream = dev->stream();
  impl->dev = std::move(dev);
  // The GEMV kernels are bf16: the float32 mode runs every linear layer on cuBLASLt.
  impl->opts.gemv_max_m =
      GemvDTypes::contains(opts.dtype) ? std::clamp(opts.gemv_max_m, 0, kGemvMaxM) : 0;
  impl->attn_path = path;
  // The model definition, bound to the host tensors, and its two op lists.
  KITE_ASSIGN_OR_RETURN(impl->graph, build_model_graph(cfg));
  KITE_RETURN_IF_ERROR(check_graph_support(impl->graph, cfg));
  {
    // FlashInfer's prefill is built without logit soft-capping: models that soft-cap (Gemma 2)
    // take our prefill kernel, which honours it.
    bool softcap = false;
    for (const Op& op : impl->graph.ops) {
      softcap = softcap || (op.kind == OpKind::kAttention && op.softcap > 0.f);
    }
    const char* env = std::getenv("KITE_FLASHINFER");
    impl->use_flashinfer = path == AttentionPath::kTensorCore && opts.dtype != DType::kF32 &&
                           !softcap && flashinfer_prefill_available(*impl->dev) &&
                           flashinfer_prefill_supports(static_cast<int>(cfg.head_dim)) &&
                           opts.kv_cache_dtype != DType::kF8E4M3 &&
                           !(env != nullptr && std::string(env) == "0");
  }
  std::map<std::string, TensorView, std::less<>> fetched;
  Status lookup_error;
  TensorLookup lookup = [&](std::string_view name) -> const TensorView* {
    auto it = fetched.find(name);
    if (it != fetched.end()) return &it->second;
    Result<TensorView> t = weights(name);
    if (!t.ok()) {
      if (t.status().code() != StatusCode::kNotFound) lookup_error = t.status();
      return nullptr;
    }
    return &fetched.emplace(std::string(name), *t).first->second;
  };
  // The checkpoint binds to the full model's declarations; several ranks then cut their shard
  // (row views, or F32 copies of the row-parallel columns, kept in `owned` until uploaded),
  // shaped as the rank's graph declares.
  ModelGraph full_graph;
  if (tp.size > 1) {
    KITE_ASSIGN_OR_RETURN(full_graph, build_model_graph(model_cfg));
  }
  Result<ModelWeights> bound = bind_weights(tp.size > 1 ? full_graph : impl->graph, lookup);
  KITE_RETURN_IF_ERROR(lookup_error);
  KITE_RETURN_IF_ERROR(bound.status());
  std::deque<std::vector<float>> owned;
  if (tp.size > 1) {
    if (full_graph.weights.size() != impl->graph.weights.size()) {
      return internal_error("a rank's graph declares other weights than the model's");
    }
    KITE_RETURN_IF_ERROR(shard_model_weights(full_graph, model_cfg, tp, &*bound, &owned));
  }
  FusionOptions plain;
  plain.silu_epilogue = true;  // the GEMV's SiLU epilogue where a step fits it, else two kernels
  impl->plain_ops = fuse_ops(impl->graph, plain);
  impl->final_hidden = lm_head_input(impl->graph, impl->plain_ops);
  FusionOptions all;
  all.norm_prologue = all.silu_epilogue = true;
  // Several ranks: the row-parallel linears' partial sums are all-reduced before the residual
  // add, so the add stays in the next norm (no residual epilogue in the GEMV).
  all.residual_epilogue = !tp_path;
  // The GEMV's RoPE epilogue rotates whole heads without LongRoPE's tables or factor.
  all.rope_epilogue = true;
  for (const RopeDecl& r : impl->graph.ropes) {
    if (r.rotary_dim != cfg.head_dim || r.scaling.type == RopeScaling::Type::kLongRope) {
      all.rope_epilogue = false;
    }
  }
  impl->fused_ops = fuse_ops(impl->graph, all);
  // Decode-sized steps take the fused list when every linear fits the GEMV (its dtype, k a
  // multiple of kGemvKAlign).
  impl->fused_ok = GemvDTypes::contains(opts.dtype);
  for (const Op& op : impl->fused_ops) {
    if (op.kind == OpKind::kLinear && impl->graph.weight(op.weight).cols % kGemvKAlign != 0) {
      impl->fused_ok = false;
    }
  }
  KITE_LOG_DEBUG("cuda: fused decode ops:\n{}", format_ops(impl->graph, impl->fused_ops));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->inputs_copied, cudaEventDisableTiming));
  KITE_ASSIGN_OR_RETURN(impl->w, load_device_weights(impl->graph, *bound, opts.dtype,
                                                     opts.fp8_online, *impl->dev, impl->stream));
  if (const char* env = std::getenv("KITE_STEP_PROFILE"); env != nullptr && *env != '\0') {
    // N[:LEAD_US]
    char* end = nullptr;
    impl->auto_profile_every = std::max(0, static_cast<int>(std::strtol(env, &end, 10)));
    if (end != nullptr && *end == ':') {
      impl->auto_profile_lead_us = std::max(0, static_cast<int>(std::strtol(end + 1, nullptr, 10)));
    }
    if (impl->auto_profile_every > 0) {
      KITE_LOG_INFO("cuda: KITE_STEP_PROFILE: every {}th step profiled (delay {} us), logged",
                    impl->auto_profile_every, impl->auto_profile_lead_us);
    }
  }
  {
    const char* env = std::getenv("KITE_FP8_GEMM");
    impl->fp8_gemm_fallback = env != nullptr && std::string(env) == "dequant";
    // KITE_FP8_FUSED_QUANT=0: every FP8 linear quantizes its input itself (the tests' reference
    // for the producers' fused FP8 copies, op_runner.cpp).
    const char* fused = std::getenv("KITE_FP8_FUSED_QUANT");
    impl->fp8_fused_quant = !(fused != nullptr && std::string(fused) == "0");
  }
  const float* factors =
      impl->w.rope_freq_factors.empty() ? nullptr : impl->w.rope_freq_factors.data();
  auto upload_table = [](const auto& v, const char* what) -> Result<DeviceBuffer> {
    using E = typename std::decay_t<decltype(v)>::value_type;
    KITE_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(v.size() * sizeof(E), what));
    KITE_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(b.data(), v.data(), v.size() * sizeof(E), cudaMemcpyHostToDevice));
    return b;
  };
  for (size_t i = 0; i < impl->graph.ropes.size(); ++i) {
    const RopeDecl& r = impl->graph.ropes[i];
    Impl::RopeTable t;
    t.rotary_dim = static_cast<int>(r.rotary_dim);
    // rope_freqs (GGUF) belongs to ropes[0].
    const std::vector<double> inv64 =
        rope_inv_freq64(r.rotary_dim, r.theta, r.scaling, i == 0 ? factors : nullptr);
    KITE_ASSIGN_OR_RETURN(t.inv_freq64, upload_table(inv64, "rope table"));
    KITE_ASSIGN_OR_RETURN(
        t.inv_freq, upload_table(std::vector<float>(inv64.begin(), inv64.end()), "rope table"));
    if (r.scaling.type == RopeScaling::Type::kLongRope) {
      const std::vector<double> long64 =
          rope_inv_freq64(r.rotary_dim, r.theta, r.scaling, nullptr, /*long_factors=*/true);
      KITE_ASSIGN_OR_RETURN(t.inv_freq64_long, upload_table(long64, "rope table"));
      KITE_ASSIGN_OR_RETURN(
          t.inv_freq_long,
          upload_table(std::vector<float>(long64.begin(), long64.end()), "rope table"));
      t.attention_factor = static_cast<float>(r.scaling.attention_factor);
      t.long_after = r.scaling.original_max_position_embeddings;
    }
    impl->ropes.push_back(std::move(t));
  }
  // MoE: each block's expert weight pointers on the device (the grouped GEMM's operand list).
  if (!impl->graph.moes.empty()) {
    std::vector<const void*> ptrs;
    for (const MoeDecl& m : impl->graph.moes) {
      for (int part = 0; part < 2; ++part) {
        for (WeightId id : part == 0 ? m.gate_up : m.down) {
          const DeviceWeight& dw = impl->w[id];
          if (dw.fp8() || dw.bias != nullptr) {
            return unimplemented(
                "the CUDA MoE kernels take BF16/F32 expert weights without "
                "biases; " +
                impl->graph.weight(id).name + " is FP8 or has a bias");
          }
          ptrs.push_back(dw.data);
        }
      }
      impl->moe_max_experts = std::max(impl->moe_max_experts, static_cast<int>(m.gate_up.size()));
      impl->moe_max_top_k = std::max(impl->moe_max_top_k, m.top_k);
      impl->moe_max_inter = std::max(impl->moe_max_inter, m.intermediate);
    }
    KITE_ASSIGN_OR_RETURN(impl->moe_weight_ptrs, upload_table(ptrs, "MoE expert pointers"));
  }
  if (tp.size > 1) {
    KITE_LOG_INFO(
        "cuda: rank {} of {}: {} of {} query heads, {} KV heads, {} MLP rows, "
        "vocabulary rows {}..{}",
        tp.rank, tp.size, tp.num_q_heads, model_cfg.num_attention_heads, tp.num_kv_heads,
        tp.intermediate, tp.vocab_begin, tp.vocab_begin + tp.vocab_rows);
  }
  KITE_LOG_INFO("cuda: {} on device {} ({} SMs), {} compute, {} KV cache, attention path {}",
                cfg.architecture, opts.device, impl->dev->num_sms(), dtype_name(opts.dtype),
                dtype_name(impl->opts.kv_cache_dtype),
                path == AttentionPath::kGeneric ? "generic"
                : impl->use_flashinfer          ? "tensor-core (prefill: FlashInfer sm90)"
                                                : "tensor-core");
  return std::unique_ptr<CudaModelRunner>(new CudaModelRunner(std::move(impl)));
}

const ModelConfig& CudaModelRunner::config() const { return impl_->full_cfg; }

DType CudaModelRunner::kv_cache_dtype() const { return impl_->opts.kv_cache_dtype; }

int64_t CudaModelRunner::kv_block_bytes(int block_size) const {
  return impl_->kv_bytes_per_block(block_size);
}

Result<int64_t> CudaModelRunner::determine_num_kv_blocks(const KvCacheConfig& c) {
  Impl& m = *impl_;
  if (!m.tensor_parallel()) return m.local_num_kv_blocks(c);
  KITE_RETURN_IF_ERROR(m.send_kv_call(/*kNumKvBlocks*/ 1, 0, c));
  return m.min_over_ranks(m.local_num_kv_blocks(c));
}

Result<int64_t> CudaModelRunner::Impl::local_num_kv_blocks(const KvCacheConfig& c) {
  Impl& m = *this;
  if (m.tensor_parallel() && m.nccl == nullptr) {
    return failed_precondition("several ranks: connect_ranks() first");
  }
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  if (!(c.gpu_memory_utilization > 0.0 && c.gpu_memory_utilization <= 1.0)) {
    return invalid_argument("gpu_memory_utilization must be in (0, 1], got " +
                            std::to_string(c.gpu_memory_utilization));
  }
  KITE_RETURN_IF_ERROR(m.ensure_buffers(c));
  m.block_size = c.block_size;
  // Profiling forward: one sequence of max_num_batched_tokens tokens through every layer, over
  // a throwaway cache, then the sampler on the step's logits.
  const int T = m.mem.cap.tokens;
  const int64_t tmp_blocks = (T + c.block_size - 1) / c.block_size + 1;
  m.num_blocks = tmp_blocks;
  KITE_ASSIGN_OR_RETURN(
      m.kv,
      DeviceBuffer::allocate(static_cast<size_t>(m.kv_bytes_per_block(c.block_size)) * tmp_blocks,
                             "profiling KV cache"));
  ForwardBatch b;
  for (int t = 0; t < T; ++t) {
    b.token_ids.push_back(t % static_cast<int>(m.full_cfg.vocab_size));
    b.positions.push_back(t);
    b.slot_mapping.push_back(c.block_size + t);
  }
  b.query_start_loc = {0, T};
  b.seq_lens = {T};
  b.block_table_indptr = {0, static_cast<int32_t>(tmp_blocks - 1)};
  for (int64_t i = 1; i < tmp_blocks; ++i) b.block_table.push_back(static_cast<int32_t>(i));
  b.logits_indices = {T - 1};
  b.max_query_len = T;
  b.max_seq_len = T;
  float* out = nullptr;
  Status st = m.forward_eager(b, &out);
  if (st.ok()) {
    // Several ranks: bounded (the profiling forward all-reduces with the peers).
    st = m.tensor_parallel() ? m.nccl->synchronize()
                             : cuda_status(cudaStreamSynchronize(m.stream), "profiling forward");
  }
  m.kv.reset();
  m.num_blocks = 0;
  KITE_RETURN_IF_ERROR(st.with_context("profiling forward"));
  size_t free_b = 0, total_b = 0;
  KITE_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
  const int64_t used = static_cast<int64_t>(total_b - free_b);
  // An explicit budget (--kv-cache-memory-bytes) wins over gpu_memory_utilization.
  const int64_t budget =
      c.memory_budget_bytes > 0
          ? std::min<int64_t>(c.memory_budget_bytes,
                              static_cast<int64_t>(free_b) - kGraphReserveBytes)
          : static_cast<int64_t>(static_cast<double>(total_b) * c.gpu_memory_utilization) - used -
                kGraphReserveBytes;
  const int64_t blocks = budget / m.kv_bytes_per_block(c.block_size);
  KITE_LOG_INFO(
      "cuda: {:.2f} GiB of {:.2f} GiB in use after profiling (weights {:.2f} GiB); "
      "KV budget {:.2f} GiB = {} blocks of {} tokens",
      used / 1073741824.0, total_b / 1073741824.0, m.w.bytes / 1073741824.0,
      std::max<int64_t>(budget, 0) / 1073741824.0, std::max<int64_t>(blocks, 0), c.block_size);
  if (blocks < 2) {
    return resource_exhausted("no room for the KV cache: " + std::to_string(used >> 20) +
                              " MiB in use of " + std::to_string(total_b >> 20) +
                              " MiB with gpu_memory_utilization " +
                              std::to_string(c.gpu_memory_utilization) +
                              "; raise it or lower max_num_batched_tokens / max_num_seqs");
  }
  return blocks;
}

Status CudaModelRunner::allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& c) {
  Impl& m = *impl_;
  if (!m.tensor_parallel()) return m.local_allocate_kv_cache(num_blocks, c);
  KITE_RETURN_IF_ERROR(m.send_kv_call(/*kAllocateKv*/ 2, num_blocks, c));
  return parallel::agree(*m.opts.comm, m.local_allocate_kv_cache(num_blocks, c),
                         "allocate_kv_cache");
}

Status CudaModelRunner::Impl::local_allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& c) {
  Impl& m = *this;
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  // The cache holds CudaRunnerOptions::kv_cache_dtype (the compute dtype or FP8 E4M3) whatever
  // c.dtype says.
  if (num_blocks < 2) return invalid_argument("allocate_kv_cache: need at least 2 blocks");
  KITE_RETURN_IF_ERROR(m.ensure_buffers(c));
  m.block_size = c.block_size;
  for (auto& [bsz, g] : m.graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
  m.graphs.clear();
  m.kv.reset();
  m.num_blocks = 0;
  KITE_ASSIGN_OR_RETURN(
      m.kv, DeviceBuffer::allocate(
                static_cast<size_t>(m.kv_bytes_per_block(c.block_size)) * num_blocks, "KV cache"));
  KITE_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(m.kv.data(), 0, m.kv.size(), m.stream));
  m.num_blocks = num_blocks;
  // Block-table capacity: every sequence at the model's full length (or all blocks).
  const int64_t per_seq = std::min<int64_t>(
      num_blocks,
      (std::max<int64_t>(m.cfg.max_position_embeddings, m.mem.cap.tokens) + c.block_size - 1) /
              c.block_size +
          1);
  m.mem.cap.block_table = static_cast<int>(std::min<int64_t>(per_seq * m.mem.cap.seqs, 1ll << 28));
  StepCapacity worst = m.mem.cap;
  worst.logits = worst.tokens;  // prompt logprobs may ask for every token's logits
  KITE_RETURN_IF_ERROR(m.ensure_inputs(make_step_layout(worst).total(m.mem.cap.block_table)));
  KITE_LOG_INFO("cuda: KV cache {} blocks x {} tokens = {:.2f} GiB ({})", num_blocks, c.block_size,
                static_cast<double>(m.kv.size()) / (1u << 30), dtype_name(m.opts.kv_cache_dtype));
  return m.capture_graphs();
}

Status CudaModelRunner::forward(const ForwardBatch& b, TensorView* logits) {
  Impl& m = *impl_;
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  if (m.num_blocks == 0) return failed_precondition("forward before allocate_kv_cache");
  if (m.tensor_parallel() && b.num_pooling_rows > 0) {
    return unimplemented("pooling (embeddings) with tensor parallelism on the CUDA backend");
  }
  BatchLimits limits;
  limits.vocab_size = m.full_cfg.vocab_size;
  limits.num_blocks = m.num_blocks;
  limits.block_size = m.block_size;
  limits.max_tokens = m.mem.cap.tokens;
  limits.max_seqs = m.mem.cap.seqs;
  limits.max_block_table = m.mem.cap.block_table;
  limits.planned = true;
  KITE_RETURN_IF_ERROR(validate_batch(b, limits));
  // Several ranks: the workers run the same step (before this rank's, so that they overlap).
  if (m.tensor_parallel()) KITE_RETURN_IF_ERROR(m.send_forward(b));
  float* out = nullptr;
  KITE_RETURN_IF_ERROR(m.local_forward(b, &out));
  *logits = TensorView(out, DType::kF32,
                       {b.num_logits() - b.num_pooling_rows, m.full_cfg.vocab_size}, Device::kCuda);
  return ok_status();
}

Status CudaModelRunner::Impl::local_forward(const ForwardBatch& b, float** logits_out) {
  Impl& m = *this;
  if (b.num_pooling_rows > 0 && m.final_hidden == kNoValue) {
    return unimplemented("pooling: this model's LM head has no separate final-norm output");
  }
  m.pool_rows = b.num_pooling_rows;
  m.pool_host.resize(static_cast<size_t>(
      dtype_bytes(m.opts.dtype, static_cast<int64_t>(m.pool_rows) * m.cfg.hidden_size)));
  float* out = m.step_logits();
  if (m.auto_profile_every > 0) {
    // The previous profiled step had no sample(): log it now.
    if (m.auto_profiling) KITE_RETURN_IF_ERROR(m.log_auto_profile());
    if (m.profiler == nullptr && m.auto_profile_count++ % m.auto_profile_every == 0) {
      if (m.auto_profiler == nullptr) {
        KITE_ASSIGN_OR_RETURN(m.auto_profiler, StepProfiler::create(m.auto_profile_lead_us));
      }
      m.profiler = std::move(m.auto_profiler);
      m.auto_profiling = true;
      int decodes = 0;
      for (int i = 0; i < b.num_seqs(); ++i) {
        decodes += b.query_start_loc[i + 1] - b.query_start_loc[i] == 1 ? 1 : 0;
      }
      m.auto_profile_step = std::to_string(b.num_tokens()) + " tokens, " +
                            std::to_string(b.num_seqs()) + " seqs (" + std::to_string(decodes) +
                            " decode), max context " + std::to_string(b.max_seq_len);
    }
  }
  // Pooling steps run eagerly on the plain list (the graphs and the fused list have no
  // final-norm output to copy); so do profiled steps (their events sit between the ops).
  m.last_used_graph = false;
  if (m.pool_rows == 0 && m.graph_replay && m.profiler == nullptr) {
    KITE_ASSIGN_OR_RETURN(m.last_used_graph, m.replay_graph(b));
  }
  if (!m.last_used_graph) {
    if (m.profiler == nullptr) {
      KITE_RETURN_IF_ERROR(m.forward_eager(b, &out));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      if (!m.profiler->in_step()) KITE_RETURN_IF_ERROR(m.profiler->begin(m.stream));
      KITE_RETURN_IF_ERROR(m.forward_eager(b, &out));
      m.profiler->add_host_forward_ms(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  // Several ranks: the step's collectives complete within KITE_COLLECTIVE_TIMEOUT_S, or the
  // step fails (a dead or hung peer), never a hang in a later stream synchronization.
  if (m.tensor_parallel()) KITE_RETURN_IF_ERROR(m.nccl->synchronize());
  *logits_out = out;
  return ok_status();
}

Status CudaModelRunner::sample(const TensorView& logits, const SamplingBatch& params,
                               SamplerOutput* out) {
  Impl& m = *impl_;
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  if (logits.device != Device::kCuda || logits.dtype != DType::kF32 || logits.ndim != 2 ||
      logits.dim(1) != m.full_cfg.vocab_size) {
    return invalid_argument(
        "sample: logits must be the F32 [rows, vocab] device tensor of "
        "forward(), got " +
        logits.to_string());
  }
  if (m.sampler == nullptr) return failed_precondition("sample before allocate_kv_cache");
  if (m.profiler == nullptr || !m.profiler->in_step()) {
    return m.sampler->sample(logits.as<float>(), static_cast<int>(logits.dim(0)), params, out,
                             *m.dev, m.stream);
  }
  const auto t0 = std::chrono::steady_clock::now();
  m.prof_mark(StepPhase::kSampling, "sample");
  const Status st = m.sampler->sample(logits.as<float>(), static_cast<int>(logits.dim(0)), params,
                                      out, *m.dev, m.stream);
  m.prof_mark(StepPhase::kOther, "");  // the sampler synced: idle until the next op
  m.profiler->add_host_sample_ms(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  if (m.auto_profiling) KITE_RETURN_IF_ERROR(m.log_auto_profile());
  return st;
}

Status CudaModelRunner::Impl::log_auto_profile() {
  auto_profiling = false;
  Result<StepProfile> p = profiler->end(stream);
  auto_profiler = std::move(profiler);
  KITE_RETURN_IF_ERROR(p.status());
  std::string phases;
  for (int i = 0; i < kNumStepPhases; ++i) {
    phases += fmt::format(" {} {:.3f}", step_phase_name(static_cast<StepPhase>(i)),
                          p->phase_ms[static_cast<size_t>(i)]);
  }
  KITE_LOG_INFO("cuda step profile: {}: device {:.3f} ms, host forward {:.3f} ms; ms:{}",
                auto_profile_step, p->device_ms, p->host_forward_ms, phases);
  return ok_status();
}

Status CudaModelRunner::set_step_profiling(bool on, int lead_us) {
  Impl& m = *impl_;
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  if (m.auto_profiling) KITE_RETURN_IF_ERROR(m.log_auto_profile());
  if (!on) {
    if (m.profiler != nullptr && m.profiler->in_step()) {
      KITE_RETURN_IF_ERROR(m.profiler->end(m.stream).status());
    }
    m.profiler.reset();
    return ok_status();
  }
  if (m.profiler != nullptr) return ok_status();
  KITE_ASSIGN_OR_RETURN(m.profiler, StepProfiler::create(lead_us));
  return ok_status();
}

Result<StepProfile> CudaModelRunner::take_step_profile() {
  Impl& m = *impl_;
  if (m.profiler == nullptr || m.auto_profiling) {
    return failed_precondition("take_step_profile: profiling is off");
  }
  if (!m.profiler->in_step()) return failed_precondition("take_step_profile: no profiled step");
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  return m.profiler->end(m.stream);
}

void CudaModelRunner::set_graph_replay(bool on) { impl_->graph_replay = on; }

Status CudaModelRunner::logits_to_host(const TensorView& logits, float* out) {
  Impl& m = *impl_;
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  if (logits.device != Device::kCuda || logits.dtype != DType::kF32) {
    return invalid_argument("logits_to_host: expected F32 device logits, got " +
                            logits.to_string());
  }
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(out, logits.data, logits.nbytes(), cudaMemcpyDeviceToHost, m.stream));
  return cuda_status(cudaStreamSynchronize(m.stream), "logits_to_host");
}

std::vector<int> CudaModelRunner::decode_graph_sizes() const {
  std::vector<int> s;
  for (const auto& [b, g] : impl_->graphs) s.push_back(b);
  return s;
}

bool CudaModelRunner::supports_pooling() const {
  return impl_->final_hidden != kNoValue && !impl_->tensor_parallel();
}

Status CudaModelRunner::hidden_states_to_host(int64_t first, int64_t num_rows, float* out) {
  Impl& m = *impl_;
  if (first < 0 || num_rows < 0 || first + num_rows > m.pool_rows) {
    return invalid_argument("hidden_states_to_host: rows outside the last forward's pooling rows");
  }
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  KITE_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(m.stream), "hidden_states_to_host"));
  const int64_t h = m.cfg.hidden_size;
  const int64_t n = num_rows * h;
  if (m.opts.dtype == DType::kF32) {
    std::memcpy(out, m.pool_host.data() + first * h * 4, static_cast<size_t>(n) * 4);
  } else if (m.opts.dtype == DType::kBF16) {
    const auto* src = reinterpret_cast<const bf16_t*>(m.pool_host.data()) + first * h;
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
  } else {
    return unimplemented("hidden_states_to_host: compute dtype " +
                         std::string(dtype_name(m.opts.dtype)));
  }
  return ok_status();
}

DType CudaModelRunner::compute_dtype() const { return impl_->opts.dtype; }

const char* CudaModelRunner::attention_path_name() const {
  return impl_->attn_path == AttentionPath::kGeneric ? "generic" : "tensor-core";
}

bool CudaModelRunner::last_forward_used_graph() const { return impl_->last_used_graph; }

parallel::Communicator* CudaModelRunner::device_communicator() const { return impl_->nccl.get(); }

}  // namespace kite::cuda
