#include "backend/cuda/cuda_model_runner.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "backend/cuda/activation.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/norm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/step_inputs.h"
#include "core/logging.h"

namespace kite::cuda {

namespace {

constexpr size_t kAlign = 256;
// Device memory kept free beyond the measured peak: CUDA graphs, lazily loaded modules.
constexpr int64_t kGraphReserveBytes = 256ll << 20;

// Decode batches with a captured graph: 1-8, then every 8 up to 256, every 16 above (a padded
// row costs ~1/256 of a step there), and max_batch itself.
std::vector<int> graph_batch_sizes(int max_batch) {
  std::vector<int> sizes;
  for (int b = 1; b <= std::min(8, max_batch); ++b) sizes.push_back(b);
  for (int b = 16; b <= max_batch; b += b < 256 ? 8 : 16) sizes.push_back(b);
  if (!sizes.empty() && sizes.back() != max_batch && max_batch > 8) sizes.push_back(max_batch);
  return sizes;
}

}  // namespace

struct CudaModelRunner::Impl {
  ModelConfig cfg;
  CudaRunnerOptions opts;
  cudaStream_t stream = nullptr;
  DeviceWeights w;
  DeviceBuffer inv_freq;
  DeviceBuffer inv_freq64;  // float32 mode: RoPE angles in double, as the CPU backend
  AttentionPath attn_path = AttentionPath::kTensorCore;
  // Prefill attention through FlashInfer's sm90 kernel (builds with KITE_FLASHINFER_INCLUDE, bf16,
  // head_dim 64/128; KITE_FLASHINFER=0 turns it off). Eager steps only: graphs are decode-only.
  bool use_flashinfer = false;
  DeviceBuffer fi_work;           // int32 [flashinfer_plan_capacity]: the step's work lists
  int fi_ctas = 0, fi_works = 0;  // of the current step's plan; 0 works = not used this step
  std::unique_ptr<GemmRunner> gemm;
  std::unique_ptr<GpuSampler> sampler;
  int sms = 1;

  // Activations (sized by ensure_buffers).
  bool buffers_ready = false;
  KvCacheConfig kv_cfg;
  StepCapacity cap;
  DeviceBuffer act;
  void *h = nullptr, *x = nullptr, *qkv = nullptr, *attn = nullptr, *delta = nullptr,
       *gate_up = nullptr, *mlp = nullptr, *xf = nullptr;
  float* logits = nullptr;  // [cap.logits, vocab]
  DeviceBuffer logits_big;  // eager steps with more logits rows than cap.logits
  DeviceBuffer split_ws;
  DeviceBuffer split_counters;

  // Step inputs.
  DeviceBuffer inputs_d;
  PinnedBuffer inputs_h;
  size_t inputs_capacity = 0;  // int32 elements
  cudaEvent_t inputs_copied = nullptr;
  bool inputs_pending = false;

  // KV cache.
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

  ~Impl() {
    for (auto& [b, g] : graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
    if (inputs_copied != nullptr) KITE_CUDA_WARN(cudaEventDestroy(inputs_copied));
    if (stream != nullptr) KITE_CUDA_WARN(cudaStreamDestroy(stream));
  }

  bool f32() const { return opts.dtype == DType::kF32; }
  int64_t es() const { return f32() ? 4 : 2; }  // bytes per weight / activation / KV element
  int64_t hidden() const { return cfg.hidden_size; }
  int64_t qkv_dim() const {
    return (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * cfg.head_dim;
  }
  int64_t q_dim() const { return cfg.num_attention_heads * cfg.head_dim; }
  int64_t kv_elems_per_block(int bs) const { return cfg.num_key_value_heads * bs * cfg.head_dim; }
  void* k_cache(int l) const {
    return kv.as<char>() +
           (2 * static_cast<int64_t>(l)) * num_blocks * kv_elems_per_block(block_size) * es();
  }
  void* v_cache(int l) const {
    return kv.as<char>() +
           (2 * static_cast<int64_t>(l) + 1) * num_blocks * kv_elems_per_block(block_size) * es();
  }

  Status ensure_buffers(const KvCacheConfig& c);
  Status ensure_inputs(size_t elems);
  Status upload(const ForwardBatch& b, const AttentionPlan& plan, const StepLayout& layout,
                int pad_seqs);
  Status linear(const void* xin, int64_t ldx, const void* wt, const void* bias, void* y,
                int64_t ldy, int m, int n, int k, bool out_f32);
  struct StepDims {
    int tokens, seqs, logits, tiles, decode, splits;
    bool all_decode;
  };
  Status run_model(const StepLayout& L, const StepDims& d, float* logits_out);
  Status capture_graphs();
  Status forward_eager(const ForwardBatch& b, float** logits_out);
};

Status CudaModelRunner::Impl::ensure_buffers(const KvCacheConfig& c) {
  if (buffers_ready && c.max_num_batched_tokens == kv_cfg.max_num_batched_tokens &&
      c.max_num_seqs == kv_cfg.max_num_seqs) {
    kv_cfg = c;
    return ok_status();
  }
  if (c.max_num_seqs <= 0 || c.max_num_batched_tokens <= 0) {
    return invalid_argument("kv cache config: max_num_seqs and max_num_batched_tokens must be > 0");
  }
  if (c.block_size <= 0) return invalid_argument("kv cache config: block_size must be > 0");
  kv_cfg = c;
  cap.seqs = c.max_num_seqs;
  cap.tokens = static_cast<int>(std::max<int64_t>(c.max_num_batched_tokens, c.max_num_seqs));
  cap.logits = c.max_num_seqs;
  const int tpt = attn_path == AttentionPath::kTensorCore
                      ? prefill_tokens_per_tile(static_cast<int>(cfg.num_attention_heads),
                                                static_cast<int>(cfg.num_key_value_heads))
                      : 1;
  cap.tiles = cap.tokens / tpt + cap.seqs;
  const int64_t T = cap.tokens, H = hidden(), I = cfg.intermediate_size, e = es();
  size_t total = 0;
  auto slot = [&](int64_t bytes) {
    const size_t o = total;
    total = align_up(total + static_cast<size_t>(bytes), kAlign);
    return o;
  };
  const size_t o_h = slot(T * H * e), o_x = slot(T * H * e), o_qkv = slot(T * qkv_dim() * e),
               o_attn = slot(T * q_dim() * e), o_delta = slot(T * H * e),
               o_gu = slot(T * 2 * I * e), o_mlp = slot(T * I * e),
               o_xf = slot(static_cast<int64_t>(cap.logits) * H * e),
               o_logits = slot(static_cast<int64_t>(cap.logits) * cfg.vocab_size * 4);
  act.reset();
  KITE_ASSIGN_OR_RETURN(act, DeviceBuffer::allocate(total, "activations"));
  char* base = act.as<char>();
  h = base + o_h;
  x = base + o_x;
  qkv = base + o_qkv;
  attn = base + o_attn;
  delta = base + o_delta;
  gate_up = base + o_gu;
  mlp = base + o_mlp;
  xf = base + o_xf;
  logits = reinterpret_cast<float*>(base + o_logits);
  KITE_ASSIGN_OR_RETURN(
      split_ws, DeviceBuffer::allocate(
                    decode_workspace_bytes(kMaxSplitRows, static_cast<int>(cfg.num_attention_heads),
                                           static_cast<int>(cfg.head_dim)),
                    "decode split-KV workspace"));
  KITE_ASSIGN_OR_RETURN(
      split_counters, DeviceBuffer::allocate(
                          decode_counter_bytes(cap.seqs, static_cast<int>(cfg.num_key_value_heads)),
                          "decode split-KV counters"));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(split_counters.data(), 0, split_counters.size(), stream));
  KITE_ASSIGN_OR_RETURN(sampler, GpuSampler::create(cap.logits, cfg.vocab_size));
  if (use_flashinfer) {
    const size_t ints =
        flashinfer_plan_capacity(cap.tokens, cap.seqs, static_cast<int>(cfg.num_attention_heads),
                                 static_cast<int>(cfg.head_dim), sms);
    KITE_ASSIGN_OR_RETURN(fi_work, DeviceBuffer::allocate(ints * 4, "flashinfer work lists"));
  }
  buffers_ready = true;
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

Status CudaModelRunner::Impl::upload(const ForwardBatch& b, const AttentionPlan& plan,
                                     const StepLayout& layout, int pad_seqs) {
  const size_t n = layout.total(static_cast<int>(b.block_table.size()));
  KITE_CHECK_LE(n, inputs_capacity);
  if (inputs_pending) KITE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(inputs_copied));
  pack_step(b, plan, layout, pad_seqs, inputs_h.as<int32_t>());
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(inputs_d.data(), inputs_h.data(), n * 4, cudaMemcpyHostToDevice, stream));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventRecord(inputs_copied, stream));
  inputs_pending = true;
  return ok_status();
}

Status CudaModelRunner::Impl::linear(const void* xin, int64_t ldx, const void* wt, const void* bias,
                                     void* y, int64_t ldy, int m, int n, int k, bool out_f32) {
  if (!f32() && m <= opts.gemv_max_m) {
    GemvParams g;
    g.x = xin;
    g.w = wt;
    g.bias = bias;
    g.y = y;
    g.m = m;
    g.n = n;
    g.k = k;
    g.x_stride = ldx;
    g.y_stride = ldy;
    g.out_f32 = out_f32;
    if (gemv_supported(g)) {
      gemv(g, stream);
      return ok_status();
    }
  }
  GemmArgs a;
  a.x = xin;
  a.ldx = ldx;
  a.w = wt;
  a.ldw = k;
  a.bias = bias;
  a.y = y;
  a.ldy = ldy;
  a.m = m;
  a.n = n;
  a.k = k;
  a.out_f32 = out_f32;
  a.f32 = f32();
  return gemm->gemm(a, stream);
}

Status CudaModelRunner::Impl::run_model(const StepLayout& L, const StepDims& d, float* logits_out) {
  const int32_t* in = inputs_d.as<int32_t>();
  const int T = d.tokens;
  const int H = static_cast<int>(hidden());
  const int I = static_cast<int>(cfg.intermediate_size);
  const int nq = static_cast<int>(cfg.num_attention_heads);
  const int nkv = static_cast<int>(cfg.num_key_value_heads);
  const int hd = static_cast<int>(cfg.head_dim);
  const float eps = static_cast<float>(cfg.rms_norm_eps);

  EmbeddingParams ep;
  ep.token_ids = in + L.token_ids;
  ep.table = w.embed;
  ep.out = h;
  ep.num_tokens = T;
  ep.hidden = H;
  ep.vocab = static_cast<int>(cfg.vocab_size);
  ep.f32 = f32();
  embedding(ep, stream);

  AttentionParams ap;
  ap.q = qkv;
  ap.q_stride = qkv_dim();
  ap.out = attn;
  ap.query_start_loc = in + L.query_start_loc;
  ap.seq_lens = in + L.seq_lens;
  ap.block_table_indptr = in + L.block_table_indptr;
  ap.block_table = in + L.block_table;
  ap.num_tokens = T;
  ap.num_seqs = d.seqs;
  ap.num_q_heads = nq;
  ap.num_kv_heads = nkv;
  ap.head_dim = hd;
  ap.block_size = block_size;
  ap.scale = 1.f / std::sqrt(static_cast<float>(hd));
  ap.f32 = f32();
  ap.prefill_tile_seq = in + L.tile_seq;
  ap.prefill_tile_q_start = in + L.tile_q_start;
  ap.num_prefill_tiles = d.tiles;
  ap.decode_seqs = d.all_decode ? nullptr : in + L.decode_seqs;
  ap.num_decode = d.decode;
  ap.num_splits = d.splits;
  ap.split_out = split_ws.as<float>();
  ap.split_lse = split_ws.as<float>() + static_cast<size_t>(kMaxSplitRows) * nq * hd;
  ap.split_counters = split_counters.as<int32_t>();
  ap.sliding_window = static_cast<int>(cfg.sliding_window.value_or(0));

  RopeKvWriteParams rp;
  rp.qkv = qkv;
  rp.qkv_stride = qkv_dim();
  rp.positions = in + L.positions;
  rp.slot_mapping = in + L.slot_mapping;
  rp.inv_freq = inv_freq.as<float>();
  rp.num_tokens = T;
  rp.num_q_heads = nq;
  rp.num_kv_heads = nkv;
  rp.head_dim = hd;
  rp.block_size = block_size;
  rp.eps = eps;
  rp.f32 = f32();
  rp.inv_freq64 = inv_freq64.as<double>();

  // Attention of one layer (ap's caches set): our kernels for the decode rows (and the prefill
  // tiles left in d.tiles), FlashInfer's for the prefill sequences of its plan. Both the fused
  // and the unfused layer loop must go through here, or the prefill rows of `attn` keep stale
  // values when FlashInfer serves them.
  auto attend = [&] {
    attention(ap, attn_path, stream);
    if (fi_works > 0) flashinfer_prefill(ap, fi_work.as<int32_t>(), fi_ctas, fi_works, stream);
  };

  // Decode-sized steps (every linear layer on the GEMV) fuse the neighbours of each GEMV:
  // RMSNorm into the prologue of the qkv and gate/up GEMVs, the residual add into the epilogue
  // of the o and down GEMVs, RoPE + KV write into the qkv GEMV (models without q/k norms).
  // 5 kernels per layer instead of 8. Otherwise the unfused sequence below runs.
  auto gemv_ok = [&](int k) { return !f32() && T <= opts.gemv_max_m && k % 8 == 0; };
  const bool fused = gemv_ok(H) && gemv_ok(static_cast<int>(q_dim())) && gemv_ok(I);
  for (size_t l = 0; l < w.layers.size() && fused; ++l) {
    const LayerWeights& lw = w.layers[l];
    GemvParams g;
    g.x = h;
    g.x_stride = H;
    g.w = lw.qkv;
    g.bias = lw.qkv_bias;
    g.y = qkv;
    g.y_stride = qkv_dim();
    g.m = T;
    g.n = static_cast<int>(qkv_dim());
    g.k = H;
    g.norm_weight = lw.input_norm;
    g.norm_eps = eps;
    rp.q_norm = lw.q_norm;
    rp.k_norm = lw.k_norm;
    rp.k_cache = k_cache(static_cast<int>(l));
    rp.v_cache = v_cache(static_cast<int>(l));
    if (lw.q_norm == nullptr) {
      g.epilogue = GemvEpilogue::kRopeKv;
      g.rope.positions = rp.positions;
      g.rope.slot_mapping = rp.slot_mapping;
      g.rope.inv_freq = rp.inv_freq;
      g.rope.k_cache = rp.k_cache;
      g.rope.v_cache = rp.v_cache;
      g.rope.num_q_heads = nq;
      g.rope.num_kv_heads = nkv;
      g.rope.head_dim = hd;
      g.rope.block_size = block_size;
      gemv(g, stream);
    } else {
      gemv(g, stream);
      rope_kv_write(rp, stream);
    }
    ap.k_cache = rp.k_cache;
    ap.v_cache = rp.v_cache;
    attend();
    GemvParams o;
    o.x = attn;
    o.x_stride = q_dim();
    o.w = lw.o;
    o.bias = lw.o_bias;
    o.y = h;
    o.residual = h;
    o.y_stride = H;
    o.m = T;
    o.n = H;
    o.k = static_cast<int>(q_dim());
    gemv(o, stream);
    GemvParams gu;
    gu.x = h;
    gu.x_stride = H;
    gu.w = lw.gate_up;
    gu.y = mlp;
    gu.y_stride = I;
    gu.m = T;
    gu.n = 2 * I;
    gu.k = H;
    gu.epilogue = GemvEpilogue::kSiluMul;
    gu.norm_weight = lw.post_norm;
    gu.norm_eps = eps;
    gemv(gu, stream);
    GemvParams dn;
    dn.x = mlp;
    dn.x_stride = I;
    dn.w = lw.down;
    dn.y = h;
    dn.residual = h;
    dn.y_stride = H;
    dn.m = T;
    dn.n = H;
    dn.k = I;
    gemv(dn, stream);
  }

  for (size_t l = 0; l < w.layers.size() && !fused; ++l) {
    const LayerWeights& lw = w.layers[l];
    RmsNormParams np;
    np.residual = h;
    np.delta = l == 0 ? nullptr : delta;
    np.weight = lw.input_norm;
    np.out = x;
    np.num_rows = T;
    np.hidden = H;
    np.eps = eps;
    np.f32 = f32();
    rms_norm(np, stream);
    KITE_RETURN_IF_ERROR(linear(x, H, lw.qkv, lw.qkv_bias, qkv, qkv_dim(), T,
                                static_cast<int>(qkv_dim()), H, false));
    rp.q_norm = lw.q_norm;
    rp.k_norm = lw.k_norm;
    rp.k_cache = k_cache(static_cast<int>(l));
    rp.v_cache = v_cache(static_cast<int>(l));
    rope_kv_write(rp, stream);
    ap.k_cache = rp.k_cache;
    ap.v_cache = rp.v_cache;
    attend();
    KITE_RETURN_IF_ERROR(
        linear(attn, q_dim(), lw.o, lw.o_bias, delta, H, T, H, static_cast<int>(q_dim()), false));
    np.delta = delta;
    np.weight = lw.post_norm;
    rms_norm(np, stream);
    GemvParams g;
    g.x = x;
    g.w = lw.gate_up;
    g.y = mlp;
    g.m = T;
    g.n = 2 * I;
    g.k = H;
    g.x_stride = H;
    g.y_stride = I;
    g.epilogue = GemvEpilogue::kSiluMul;
    if (!f32() && T <= opts.gemv_max_m && gemv_supported(g)) {
      gemv(g, stream);
    } else {
      KITE_RETURN_IF_ERROR(linear(x, H, lw.gate_up, nullptr, gate_up, 2 * I, T, 2 * I, H, false));
      SiluMulParams sp;
      sp.gate_up = gate_up;
      sp.out = mlp;
      sp.num_tokens = T;
      sp.inter = I;
      sp.f32 = f32();
      silu_mul(sp, stream);
    }
    KITE_RETURN_IF_ERROR(linear(mlp, I, lw.down, nullptr, delta, H, T, H, I, false));
  }

  // Final norm of the logits rows only (gathered), then the LM head, in chunks of cap.logits.
  for (int r0 = 0; r0 < d.logits; r0 += cap.logits) {
    const int rows = std::min(cap.logits, d.logits - r0);
    RmsNormParams np;
    np.residual = h;
    np.delta = fused ? nullptr : delta;  // the fused path keeps the residual sum in h
    np.row_indices = in + L.logits_indices + r0;
    np.weight = w.final_norm;
    np.out = xf;
    np.num_rows = rows;
    np.hidden = H;
    np.eps = eps;
    np.f32 = f32();
    rms_norm(np, stream);
    KITE_RETURN_IF_ERROR(linear(xf, H, w.lm_head, nullptr,
                                logits_out + static_cast<int64_t>(r0) * cfg.vocab_size,
                                cfg.vocab_size, rows, static_cast<int>(cfg.vocab_size), H, true));
  }
  return ok_status();
}

Status CudaModelRunner::Impl::forward_eager(const ForwardBatch& b, float** logits_out) {
  const AttentionPlan plan = plan_attention(
      b.query_start_loc.data(), b.seq_lens.data(), b.num_seqs(), b.max_seq_len,
      static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.num_key_value_heads), sms);
  StepCapacity c;
  c.tokens = b.num_tokens();
  c.seqs = b.num_seqs();
  c.logits = b.num_logits();
  c.tiles = static_cast<int>(plan.prefill_tile_seq.size());
  const StepLayout layout = make_step_layout(c);
  KITE_RETURN_IF_ERROR(ensure_inputs(layout.total(static_cast<int>(b.block_table.size()))));
  KITE_RETURN_IF_ERROR(upload(b, plan, layout, b.num_seqs()));
  float* out = logits;
  if (b.num_logits() > cap.logits) {
    const size_t need = static_cast<size_t>(b.num_logits()) * cfg.vocab_size * 4;
    if (logits_big.size() < need) {
      KITE_LOG_WARN("cuda: allocating {} logits rows ({:.2f} GiB) for one step", b.num_logits(),
                    static_cast<double>(need) / (1u << 30));
      KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
      logits_big.reset();
      KITE_ASSIGN_OR_RETURN(logits_big, DeviceBuffer::allocate(need, "prompt logits"));
    }
    out = logits_big.as<float>();
  }
  StepDims d{b.num_tokens(),  b.num_seqs(),    b.num_logits(), c.tiles,
             plan.num_decode, plan.num_splits, plan.all_decode};
  if (attn_path == AttentionPath::kGeneric) d.tiles = d.decode = 0;
  fi_works = 0;
  if (use_flashinfer && d.tiles > 0) {
    // The sequences our prefill kernel would have served go to FlashInfer's; decodes stay ours.
    std::vector<char> mark(b.num_seqs(), 0);
    std::vector<int32_t> seqs;
    for (const int32_t s : plan.prefill_tile_seq) {
      if (!mark[s]) seqs.push_back(s), mark[s] = 1;
    }
    const FlashInferPlan fp = plan_flashinfer_prefill(
        b.query_start_loc.data(), b.seq_lens.data(), b.block_table_indptr.data(), seqs,
        static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.head_dim), sms);
    KITE_CHECK_LE(fp.work.size() * 4, fi_work.size());
    // Pageable source: the copy is staged before cudaMemcpyAsync returns.
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(fi_work.data(), fp.work.data(), fp.work.size() * 4,
                                              cudaMemcpyHostToDevice, stream));
    fi_ctas = fp.num_ctas;
    fi_works = fp.num_works;
    d.tiles = 0;
  }
  const Status st = run_model(layout, d, out);
  fi_works = 0;
  KITE_RETURN_IF_ERROR(st);
  *logits_out = out;
  return ok_status();
}

Status CudaModelRunner::Impl::capture_graphs() {
  for (auto& [bsz, g] : graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
  graphs.clear();
  if (!opts.use_cuda_graphs) return ok_status();
  const int max_b = std::min(opts.max_graph_batch, cap.seqs);
  for (int B : graph_batch_sizes(max_b)) {
    ForwardBatch b;
    b.token_ids.assign(B, 0);
    b.positions.assign(B, 0);
    b.slot_mapping.assign(B, -1);
    b.seq_lens.assign(B, 1);
    for (int i = 0; i <= B; ++i) {
      b.query_start_loc.push_back(i);
      b.block_table_indptr.push_back(i);
    }
    b.block_table.assign(B, 0);
    for (int i = 0; i < B; ++i) b.logits_indices.push_back(i);
    b.max_query_len = 1;
    b.max_seq_len = 1;
    Graph g;
    StepCapacity c;
    c.tokens = B;
    c.seqs = B;
    c.logits = B;
    c.tiles = 0;
    g.layout = make_step_layout(c);
    g.splits = decode_num_splits(B, static_cast<int>(cfg.num_key_value_heads), 0, sms);
    AttentionPlan plan;
    plan.all_decode = true;
    plan.num_decode = B;
    plan.num_splits = g.splits;
    StepDims d{B, B, B, 0, B, g.splits, true};
    if (attn_path == AttentionPath::kGeneric) d.decode = 0;
    KITE_RETURN_IF_ERROR(upload(b, plan, g.layout, B));
    // Warm-up outside the capture: cuBLASLt plans, lazily loaded kernels.
    KITE_RETURN_IF_ERROR(run_model(g.layout, d, logits));
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    cudaGraph_t graph = nullptr;
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const Status st = run_model(g.layout, d, logits);
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    KITE_RETURN_IF_ERROR(st.with_context("capturing decode graph"));
    KITE_CUDA_RETURN_IF_ERROR(end);
    const cudaError_t inst = cudaGraphInstantiate(&g.exec, graph, 0);
    KITE_CUDA_WARN(cudaGraphDestroy(graph));
    KITE_CUDA_RETURN_IF_ERROR(inst);
    graphs.emplace(B, g);
  }
  KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  KITE_LOG_INFO("cuda: captured {} decode graphs (batch 1..{})", graphs.size(), max_b);
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
    if (path != AttentionPath::kGeneric) {
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
  Result<TensorView> embed = weights("model.embed_tokens.weight");
  const bool f32_checkpoint = embed.ok() && embed->dtype == DType::kF32;
  return f32_checkpoint && path == AttentionPath::kGeneric ? DType::kF32 : DType::kBF16;
}

// ---- CudaModelRunner
// -----------------------------------------------------------------------------

CudaModelRunner::CudaModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaModelRunner::~CudaModelRunner() {
  if (impl_ != nullptr && impl_->stream != nullptr) {
    KITE_CUDA_WARN(cudaStreamSynchronize(impl_->stream));
  }
}

Result<std::unique_ptr<CudaModelRunner>> CudaModelRunner::create(const ModelConfig& cfg,
                                                                 const WeightLookup& weights,
                                                                 const CudaRunnerOptions& opts) {
  KITE_RETURN_IF_ERROR(cfg.validate());
  int count = 0;
  KITE_RETURN_IF_ERROR(cuda_status(cudaGetDeviceCount(&count), "looking for a CUDA device"));
  if (opts.device < 0 || opts.device >= count) {
    return unavailable("CUDA device " + std::to_string(opts.device) + " does not exist (" +
                       std::to_string(count) + " visible)");
  }
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts.device));
  int major = 0;
  KITE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, opts.device));
  if (major < 8) {
    return unimplemented(
        "the CUDA backend needs compute capability 8.0 or newer (bf16 tensor "
        "cores); device " +
        std::to_string(opts.device) + " has " + std::to_string(major) + ".x");
  }
  KITE_ASSIGN_OR_RETURN(
      AttentionPath path,
      attention_path(static_cast<int>(cfg.head_dim), static_cast<int>(cfg.num_attention_heads),
                     static_cast<int>(cfg.num_key_value_heads)));
  if (cfg.head_dim % 2 != 0) return unimplemented("rotary embedding needs an even head_dim");
  if (opts.dtype != DType::kBF16 && opts.dtype != DType::kF32) {
    return unimplemented("the CUDA backend computes in bfloat16 or float32, not " +
                         std::string(dtype_name(opts.dtype)));
  }
  if (opts.dtype == DType::kF32 && path != AttentionPath::kGeneric) {
    return unimplemented(
        "float32 compute needs the generic attention path (head_dim <= 32); "
        "head_dim " +
        std::to_string(cfg.head_dim) + " runs in bfloat16 only");
  }
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->opts = opts;
  // The GEMV kernels are bf16: the float32 mode runs every linear layer on cuBLASLt.
  impl->opts.gemv_max_m = opts.dtype == DType::kF32 ? 0 : std::clamp(opts.gemv_max_m, 0, kGemvMaxM);
  impl->attn_path = path;
  impl->sms = num_sms();
  {
    const char* env = std::getenv("KITE_FLASHINFER");
    impl->use_flashinfer = path == AttentionPath::kTensorCore && opts.dtype != DType::kF32 &&
                           flashinfer_prefill_available() &&
                           flashinfer_prefill_supports(static_cast<int>(cfg.head_dim)) &&
                           !(env != nullptr && std::string(env) == "0");
  }
  KITE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->inputs_copied, cudaEventDisableTiming));
  KITE_ASSIGN_OR_RETURN(impl->w, load_device_weights(cfg, weights, opts.dtype, impl->stream));
  const float* factors =
      impl->w.rope_freq_factors.empty() ? nullptr : impl->w.rope_freq_factors.data();
  const std::vector<float> inv = rope_inv_freq(cfg, factors);
  const std::vector<double> inv64 = rope_inv_freq64(cfg, factors);
  KITE_ASSIGN_OR_RETURN(impl->inv_freq, DeviceBuffer::allocate(inv.size() * 4, "rope table"));
  KITE_ASSIGN_OR_RETURN(impl->inv_freq64, DeviceBuffer::allocate(inv64.size() * 8, "rope table"));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(impl->inv_freq.data(), inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(impl->inv_freq64.data(), inv64.data(), inv64.size() * 8, cudaMemcpyHostToDevice));
  KITE_ASSIGN_OR_RETURN(impl->gemm, GemmRunner::create());
  KITE_LOG_INFO("cuda: {} on device {} ({} SMs), {} compute, attention path {}", cfg.architecture,
                opts.device, impl->sms, dtype_name(opts.dtype),
                path == AttentionPath::kGeneric ? "generic"
                : impl->use_flashinfer          ? "tensor-core (prefill: FlashInfer sm90)"
                                                : "tensor-core");
  return std::unique_ptr<CudaModelRunner>(new CudaModelRunner(std::move(impl)));
}

const ModelConfig& CudaModelRunner::config() const { return impl_->cfg; }

int64_t CudaModelRunner::kv_block_bytes(int block_size) const {
  return 2 * impl_->cfg.num_hidden_layers * impl_->kv_elems_per_block(block_size) * impl_->es();
}

Result<int64_t> CudaModelRunner::determine_num_kv_blocks(const KvCacheConfig& c) {
  Impl& m = *impl_;
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(m.opts.device));
  if (!(c.gpu_memory_utilization > 0.0 && c.gpu_memory_utilization <= 1.0)) {
    return invalid_argument("gpu_memory_utilization must be in (0, 1], got " +
                            std::to_string(c.gpu_memory_utilization));
  }
  KITE_RETURN_IF_ERROR(m.ensure_buffers(c));
  m.block_size = c.block_size;
  // Profiling forward: one sequence of max_num_batched_tokens tokens through every layer, over
  // a throwaway cache, then the sampler on the step's logits.
  const int T = m.cap.tokens;
  const int64_t tmp_blocks = (T + c.block_size - 1) / c.block_size + 1;
  m.num_blocks = tmp_blocks;
  KITE_ASSIGN_OR_RETURN(
      m.kv, DeviceBuffer::allocate(static_cast<size_t>(kv_block_bytes(c.block_size)) * tmp_blocks,
                                   "profiling KV cache"));
  ForwardBatch b;
  for (int t = 0; t < T; ++t) {
    b.token_ids.push_back(t % static_cast<int>(m.cfg.vocab_size));
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
  if (st.ok()) st = cuda_status(cudaStreamSynchronize(m.stream), "profiling forward");
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
  const int64_t blocks = budget / kv_block_bytes(c.block_size);
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
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(m.opts.device));
  // The cache holds the compute dtype (BF16, or F32 in the float32 mode) whatever c.dtype says;
  // create_cuda_model_runner rejects kv_cache_dtype values that would differ.
  if (c.dtype != DType::kBF16 && c.dtype != DType::kF32) {
    return unimplemented("the CUDA KV cache holds BF16 or F32 (kv cache dtype " +
                         std::string(dtype_name(c.dtype)) + " is not supported)");
  }
  if (num_blocks < 2) return invalid_argument("allocate_kv_cache: need at least 2 blocks");
  KITE_RETURN_IF_ERROR(m.ensure_buffers(c));
  m.block_size = c.block_size;
  for (auto& [bsz, g] : m.graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
  m.graphs.clear();
  m.kv.reset();
  m.num_blocks = 0;
  KITE_ASSIGN_OR_RETURN(
      m.kv, DeviceBuffer::allocate(static_cast<size_t>(kv_block_bytes(c.block_size)) * num_blocks,
                                   "KV cache"));
  KITE_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(m.kv.data(), 0, m.kv.size(), m.stream));
  m.num_blocks = num_blocks;
  // Block-table capacity: every sequence at the model's full length (or all blocks).
  const int64_t per_seq = std::min<int64_t>(
      num_blocks, (std::max<int64_t>(m.cfg.max_position_embeddings, m.cap.tokens) + c.block_size -
                   1) / c.block_size +
                      1);
  m.cap.block_table = static_cast<int>(std::min<int64_t>(per_seq * m.cap.seqs, 1ll << 28));
  StepCapacity worst = m.cap;
  worst.logits = worst.tokens;  // prompt logprobs may ask for every token's logits
  KITE_RETURN_IF_ERROR(m.ensure_inputs(make_step_layout(worst).total(m.cap.block_table)));
  KITE_LOG_INFO("cuda: KV cache {} blocks x {} tokens = {:.2f} GiB", num_blocks, c.block_size,
                static_cast<double>(m.kv.size()) / (1u << 30));
  return m.capture_graphs();
}

Status CudaModelRunner::forward(const ForwardBatch& b, TensorView* logits) {
  Impl& m = *impl_;
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(m.opts.device));
  if (m.num_blocks == 0) return failed_precondition("forward before allocate_kv_cache");
  KITE_RETURN_IF_ERROR(validate_batch(b, m.cfg.vocab_size, m.num_blocks, m.block_size, m.cap));
  m.last_used_graph = false;
  float* out = nullptr;
  bool graph_ok =
      b.decode_only() && b.num_tokens() == b.num_seqs() && b.num_logits() == b.num_seqs();
  for (int i = 0; graph_ok && i < b.num_logits(); ++i) graph_ok = b.logits_indices[i] == i;
  auto it = graph_ok ? m.graphs.lower_bound(b.num_seqs()) : m.graphs.end();
  if (it != m.graphs.end()) {
    const Impl::Graph& g = it->second;
    AttentionPlan plan;
    plan.all_decode = true;
    plan.num_decode = it->first;
    plan.num_splits = g.splits;
    KITE_RETURN_IF_ERROR(m.upload(b, plan, g.layout, it->first));
    KITE_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(g.exec, m.stream));
    out = m.logits;
    m.last_used_graph = true;
  } else {
    KITE_RETURN_IF_ERROR(m.forward_eager(b, &out));
  }
  *logits = TensorView(out, DType::kF32, {b.num_logits(), m.cfg.vocab_size}, Device::kCuda);
  return ok_status();
}

Status CudaModelRunner::sample(const TensorView& logits, const SamplingBatch& params,
                               SamplerOutput* out) {
  Impl& m = *impl_;
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(m.opts.device));
  if (logits.device != Device::kCuda || logits.dtype != DType::kF32 || logits.ndim != 2 ||
      logits.dim(1) != m.cfg.vocab_size) {
    return invalid_argument(
        "sample: logits must be the F32 [rows, vocab] device tensor of "
        "forward(), got " +
        logits.to_string());
  }
  if (m.sampler == nullptr) return failed_precondition("sample before allocate_kv_cache");
  return m.sampler->sample(logits.as<float>(), static_cast<int>(logits.dim(0)), params, out,
                           m.stream);
}

Status CudaModelRunner::logits_to_host(const TensorView& logits, float* out) {
  Impl& m = *impl_;
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(m.opts.device));
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

DType CudaModelRunner::compute_dtype() const { return impl_->opts.dtype; }

const char* CudaModelRunner::attention_path_name() const {
  return impl_->attn_path == AttentionPath::kGeneric ? "generic" : "tensor-core";
}

bool CudaModelRunner::last_forward_used_graph() const { return impl_->last_used_graph; }

}  // namespace kite::cuda
