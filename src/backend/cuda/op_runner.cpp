// The model graph's ops on the device: each op of the (plain or fused) list becomes one kernel
// launch (or one GEMV / cuBLASLt call), in order, on the runner's stream. Ops over logits rows
// (the final norm and the LM head) run in chunks of cap.logits rows.
//
// FP8 W8A8 linears: an RMSNorm or gated activation (SiLU·mul, GeLU-tanh·mul, or a linear's SiLU
// epilogue run as two kernels) whose next op is an FP8 linear that will take the scaled FP8 GEMM
// writes the FP8 copy of its output itself (fp8_output_for), and that linear skips its
// quantize_fp8 — qkv, gate_up and down in a Llama layer; o_proj (after attention) keeps the
// standalone quantization. The copy is handed only to the very next op (`pending` below), so no
// other op can overwrite mem.fp8_x in between.
#include <algorithm>
#include <utility>

#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/moe.h"
#include "backend/cuda/norm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/runner_state.h"
#include "core/check.h"

namespace kite::cuda {

Fp8Output CudaModelRunner::Impl::fp8_output_for(const std::vector<Op>& ops, size_t i, int rows,
                                                Fp8Input* pre) const {
  *pre = Fp8Input{};
  // The scaled FP8 GEMM runs for more rows than the GEMV takes (fewer: the GEMV reads bf16
  // activations); bf16 compute only; never after the fallback to dequantized weights.
  if (!fp8_fused_quant || opts.dtype != DType::kBF16 || fp8_gemm_fallback ||
      rows <= opts.gemv_max_m || i + 1 >= ops.size()) {
    return {};
  }
  const Op& op = ops[i];
  const Op& next = ops[i + 1];
  if (next.kind != OpKind::kLinear || next.in != op.out || next.prologue_norm != kNoWeight ||
      (next.epilogue != Epilogue::kNone && next.epilogue != Epilogue::kSiluMul) ||
      graph.value(op.out).rows != RowSpace::kTokens || graph.value(op.out).f32) {
    return {};
  }
  const DeviceWeight& wt = w[next.weight];
  if (!wt.fp8() || wt.cols != graph.value(op.out).width || rows > mem.cap.tokens) return {};
  pre->x = mem.values[static_cast<size_t>(op.out)];
  pre->m = rows;
  pre->k = static_cast<int>(wt.cols);
  pre->block = wt.scale_block != 0;
  return fp8_activations_for(wt);
}

Status CudaModelRunner::Impl::run_moe(const Op& op, int rows, bool may_sync) {
  const MoeDecl& moe = graph.moes[static_cast<size_t>(op.moe)];
  const StepMemory::Moe& m = mem.moe;
  const int E = static_cast<int>(moe.gate_up.size());
  const int I = static_cast<int>(moe.intermediate);
  const int H = static_cast<int>(graph.value(op.in).width);
  const void* x = mem.values[static_cast<size_t>(op.in)];
  KITE_RETURN_IF_ERROR(linear(x, H, w[moe.router], m.router_logits, E, rows, /*out_f32=*/true));
  MoeRouteParams rp;
  rp.router_logits = m.router_logits;
  rp.topk_experts = m.topk_experts;
  rp.topk_weights = m.topk_weights;
  rp.num_tokens = rows;
  rp.num_experts = E;
  rp.top_k = moe.top_k;
  rp.renormalize = moe.renormalize;
  moe_route(rp, *dev, stream);
  MoePermuteParams pp;
  pp.topk_experts = m.topk_experts;
  pp.expert_offsets = m.expert_offsets;
  pp.row_token = m.row_token;
  pp.slot_row = m.slot_row;
  pp.num_rows = rows * moe.top_k;
  pp.num_experts = E;
  pp.top_k = moe.top_k;
  moe_permute(pp, *dev, stream);
  const auto* ptrs = moe_weight_ptrs.as<const void*>() + static_cast<size_t>(op.moe) * 2 * E;
  const int num_rows = rows * moe.top_k;
  auto silu_rows = [&] {
    // SiLU·mul over the permuted rows, in chunks: its grid has one y per row (at most 65535).
    constexpr int kSiluChunk = 32768;
    for (int r0 = 0; r0 < num_rows; r0 += kSiluChunk) {
      SiluMulParams sp;
      sp.gate_up = static_cast<char*>(m.gate_up) + static_cast<int64_t>(r0) * 2 * I * es();
      sp.out = static_cast<char*>(m.act) + static_cast<int64_t>(r0) * I * es();
      sp.num_tokens = std::min(kSiluChunk, num_rows - r0);
      sp.inter = I;
      sp.dtype = opts.dtype;
      silu_mul(sp, *dev, stream);
    }
  };
  // cuBLASLt's plans assume 256-byte aligned operands: every expert's segment of the permuted
  // rows is, when a row of x, gate_up and act is a multiple of 256 bytes (real models' shapes).
  const bool aligned = (H * es()) % 256 == 0 && (I * es()) % 256 == 0;
  if (may_sync && aligned && rows > opts.moe_grouped_max_tokens) {
    // Large prefill steps: the permuted rows gathered (into y, free until the down GEMMs), the
    // expert offsets read back, then each chosen expert's GEMMs on cuBLASLt (or the GEMV).
    EmbeddingParams gather;
    gather.token_ids = m.row_token;
    gather.table = x;
    gather.out = m.y;
    gather.num_tokens = num_rows;
    gather.hidden = H;
    gather.vocab = rows;
    gather.dtype = opts.dtype;
    embedding(gather, *dev, stream);
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.offsets_host.data(), m.expert_offsets,
                                              static_cast<size_t>(E + 1) * 4,
                                              cudaMemcpyDeviceToHost, stream));
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    const int32_t* off = m.offsets_host.as<int32_t>();
    const char* xs = static_cast<const char*>(m.y);
    for (int e = 0; e < E; ++e) {
      const int count = off[e + 1] - off[e];
      if (count == 0) continue;
      KITE_RETURN_IF_ERROR(linear(
          xs + static_cast<int64_t>(off[e]) * H * es(), H, w[moe.gate_up[static_cast<size_t>(e)]],
          static_cast<char*>(m.gate_up) + static_cast<int64_t>(off[e]) * 2 * I * es(), 2 * I, count,
          false));
    }
    silu_rows();
    for (int e = 0; e < E; ++e) {
      const int count = off[e + 1] - off[e];
      if (count == 0) continue;
      KITE_RETURN_IF_ERROR(linear(
          static_cast<const char*>(m.act) + static_cast<int64_t>(off[e]) * I * es(), I,
          w[moe.down[static_cast<size_t>(e)]],
          static_cast<char*>(m.y) + static_cast<int64_t>(off[e]) * H * es(), H, count, false));
    }
  } else {
    MoeGemmParams gp;
    gp.x = x;
    gp.x_stride = H;
    gp.x_rows = m.row_token;
    gp.weights = ptrs;
    gp.expert_offsets = m.expert_offsets;
    gp.y = m.gate_up;
    gp.y_stride = 2 * I;
    gp.num_experts = E;
    gp.n = 2 * I;
    gp.k = H;
    gp.dtype = opts.dtype;
    moe_grouped_gemm(gp, *dev, stream);
    silu_rows();
    gp.x = m.act;
    gp.x_stride = I;
    gp.x_rows = nullptr;
    gp.weights = ptrs + E;
    gp.y = m.y;
    gp.y_stride = H;
    gp.n = H;
    gp.k = I;
    moe_grouped_gemm(gp, *dev, stream);
  }
  MoeCombineParams cp;
  cp.y = m.y;
  cp.slot_row = m.slot_row;
  cp.topk_weights = m.topk_weights;
  cp.out = mem.values[static_cast<size_t>(op.out)];
  cp.num_tokens = rows;
  cp.hidden = H;
  cp.top_k = moe.top_k;
  cp.dtype = opts.dtype;
  moe_combine(cp, *dev, stream);
  return ok_status();
}

Status CudaModelRunner::Impl::run_model(const StepLayout& L, const StepDims& d, int fi_ctas,
                                        int fi_works, float* logits_out) {
  const int32_t* in = inputs_d.as<int32_t>();
  const int T = d.tokens;
  const bool fused = fused_ok && T <= opts.gemv_max_m && pool_rows == 0;
  const std::vector<Op>& ops = fused ? fused_ops : plain_ops;
  auto val = [&](ValueId v) { return mem.values[static_cast<size_t>(v)]; };
  auto width = [&](ValueId v) { return graph.value(v).width; };
  auto logit_rows = [&](ValueId v) { return graph.value(v).rows == RowSpace::kLogits; };
  // Several ranks: the LM head writes this rank's [rows, vocab_stride] columns (cfg.vocab_size
  // is the stride here) to lm_out, gathered into logits_out after the last chunk.
  float* lm_out = logits_out;
  float* gathered = nullptr;
  if (tensor_parallel()) {
    const bool big = d.logits > mem.cap.logits;
    lm_out = (big ? tp_logits_big : tp_logits).as<float>();
    gathered = (big ? tp_gathered_big : tp_gathered).as<float>();
  }
  // Several ranks: the sum over ranks of a row-parallel linear's or the vocab-parallel
  // embedding's partial output, in place on the compute stream (nothing with one rank).
  auto all_reduce = [&](ValueId v, int rows) -> Status {
    if (!tensor_parallel()) return ok_status();
    return nccl->all_reduce_sum(val(v), static_cast<int64_t>(rows) * width(v), opts.dtype);
  };

  AttentionParams ap;
  ap.query_start_loc = in + L.query_start_loc;
  ap.seq_lens = in + L.seq_lens;
  ap.block_table_indptr = in + L.block_table_indptr;
  ap.block_table = in + L.block_table;
  ap.num_tokens = T;
  ap.num_seqs = d.seqs;
  ap.num_q_heads = static_cast<int>(cfg.num_attention_heads);
  ap.num_kv_heads = static_cast<int>(cfg.num_key_value_heads);
  ap.head_dim = static_cast<int>(cfg.head_dim);
  ap.block_size = block_size;
  ap.dtype = opts.dtype;
  ap.prefill_tile_seq = in + L.tile_seq;
  ap.prefill_tile_q_start = in + L.tile_q_start;
  ap.num_prefill_tiles = d.tiles;
  ap.decode_seqs = d.all_decode ? nullptr : in + L.decode_seqs;
  ap.num_decode = d.decode;
  ap.num_splits = d.splits;
  ap.split_out = mem.split_ws.as<float>();
  ap.split_lse =
      mem.split_ws.as<float>() + static_cast<size_t>(kMaxSplitRows) * ap.num_q_heads * ap.head_dim;
  ap.split_counters = mem.split_counters.as<int32_t>();

  RopeKvWriteParams rp;
  rp.positions = in + L.positions;
  rp.slot_mapping = in + L.slot_mapping;
  rp.query_start_loc = ap.query_start_loc;
  rp.num_seqs = d.seqs;
  rp.num_tokens = T;
  rp.num_q_heads = ap.num_q_heads;
  rp.num_kv_heads = ap.num_kv_heads;
  rp.head_dim = ap.head_dim;
  rp.block_size = block_size;
  rp.dtype = opts.dtype;

  // The FP8 copy the previous op wrote for this one (fp8_output_for), if any.
  Fp8Input pending;
  // One op over `rows` rows; logits-row ops see chunk rows r0 .. r0 + rows - 1.
  auto run = [&](const Op& op, int rows, int r0) -> Status {
    const size_t i = static_cast<size_t>(&op - ops.data());
    const Fp8Input pre = std::exchange(pending, Fp8Input{});
    switch (op.kind) {
      case OpKind::kEmbedding: {
        prof_mark(StepPhase::kEmbedding, "embedding");
        EmbeddingParams ep;
        ep.token_ids = in + L.token_ids;
        ep.table = w[op.weight].data;
        ep.out = val(op.out);
        ep.num_tokens = rows;
        ep.hidden = static_cast<int>(width(op.out));
        ep.vocab = static_cast<int>(tp.vocab_rows);  // the whole vocabulary with one rank
        ep.vocab_begin = static_cast<int>(tp.vocab_begin);
        ep.dtype = opts.dtype;
        ep.scale = op.scale;
        embedding(ep, *dev, stream);
        return all_reduce(op.out, rows);  // one rank holds each token's row
      }
      case OpKind::kRmsNorm: {
        prof_mark(StepPhase::kNorm, op.delta != kNoValue ? "add_rms_norm" : "rms_norm");
        RmsNormParams np;
        np.residual = val(op.in);
        np.delta = op.delta == kNoValue ? nullptr : val(op.delta);
        np.row_indices = op.gather_logits ? in + L.logits_indices + r0 : nullptr;
        np.weight = w[op.weight].data;
        np.out = val(op.out);
        np.num_rows = rows;
        np.hidden = static_cast<int>(width(op.in));
        np.eps = op.eps;
        np.dtype = opts.dtype;
        if (!op.gather_logits) np.fp8 = fp8_output_for(ops, i, rows, &pending);
        rms_norm(np, *dev, stream);
        return ok_status();
      }
      case OpKind::kLinear: {
        if (profiler != nullptr) {
          prof_mark(StepPhase::kGemm, linear_label(graph.weight(op.weight).name));
        }
        if (op.prologue_norm != kNoWeight || op.epilogue == Epilogue::kResidualAdd ||
            op.epilogue == Epilogue::kRopeKv) {
          fused_linear(op, L, rows);
          // Several ranks fuse no residual add (cuda_model_runner.cpp), so a row-parallel
          // linear here has only a prologue: its product is summed over ranks as below.
          if (graph.weight(op.weight).shard == ShardDim::kRow) return all_reduce(op.out, rows);
          return ok_status();
        }
        if (op.epilogue == Epilogue::kSiluMul) {
          // The GEMV's SiLU epilogue when it fits this step, else the product then the SiLU.
          GemvParams g;
          g.x = val(op.in);
          g.x_stride = width(op.in);
          set_gemv_weight(&g, w[op.weight]);
          g.y = val(op.out);
          g.y_stride = width(op.out);
          g.m = rows;
          g.n = static_cast<int>(w[op.weight].rows);
          g.k = static_cast<int>(w[op.weight].cols);
          g.epilogue = GemvEpilogue::kSiluMul;
          g.dtype = opts.dtype;
          if (!f32() && rows <= opts.gemv_max_m && gemv_supported(g)) {
            gemv(g, *dev, stream);
            return ok_status();
          }
          KITE_CHECK_NE(op.scratch, kNoValue);
          KITE_RETURN_IF_ERROR(linear(val(op.in), width(op.in), w[op.weight], val(op.scratch),
                                      width(op.scratch), rows, false, &pre));
          prof_mark(StepPhase::kActivation, "silu_mul");
          SiluMulParams sp;
          sp.gate_up = val(op.scratch);
          sp.out = val(op.out);
          sp.num_tokens = rows;
          sp.inter = static_cast<int>(width(op.out));
          sp.dtype = opts.dtype;
          sp.fp8 = fp8_output_for(ops, i, rows, &pending);
          silu_mul(sp, *dev, stream);
          return ok_status();
        }
        const bool to_logits = op.out == graph.logits;
        void* y = to_logits ? static_cast<void*>(lm_out + static_cast<int64_t>(r0) * cfg.vocab_size)
                            : val(op.out);
        KITE_RETURN_IF_ERROR(linear(val(op.in), width(op.in), w[op.weight], y, width(op.out), rows,
                                    graph.value(op.out).f32, &pre));
        // Row-parallel (o_proj, down_proj): partial sums over this rank's input columns.
        if (graph.weight(op.weight).shard == ShardDim::kRow) return all_reduce(op.out, rows);
        return ok_status();
      }
      case OpKind::kRopeKvWrite: {
        prof_mark(StepPhase::kRopeKv, "rope_kv_write");
        RopeKvWriteParams r = rp;
        r.qkv = val(op.in);
        r.qkv_stride = width(op.in);
        r.q_norm = op.weight == kNoWeight ? nullptr : w[op.weight].data;
        r.k_norm = op.weight2 == kNoWeight ? nullptr : w[op.weight2].data;
        r.eps = op.eps;
        const RopeTable& rt = ropes[static_cast<size_t>(op.rope)];
        r.inv_freq = rt.inv_freq.as<float>();
        r.inv_freq64 = rt.inv_freq64.as<double>();
        r.rotary_dim = rt.rotary_dim;
        r.attention_factor = rt.attention_factor;
        r.inv_freq_long = rt.inv_freq_long.as<float>();
        r.inv_freq64_long = rt.inv_freq64_long.as<double>();
        r.long_after = rt.long_after;
        r.k_cache = k_cache(op.layer);
        r.v_cache = v_cache(op.layer);
        r.kv_fp8 = kv_fp8();
        r.k_scale = k_scale(op.layer);
        r.v_scale = v_scale(op.layer);
        rope_kv_write(r, *dev, stream);
        return ok_status();
      }
      case OpKind::kAttention: {
        // Our kernels for the decode rows (and the prefill tiles left in d.tiles), FlashInfer's
        // for the prefill sequences of its plan.
        const char* attention_label = d.all_decode   ? "decode"
                                      : fi_works > 0 ? "decode_rows"
                                                     : "prefill";
        prof_mark(StepPhase::kAttention, attention_label);
        AttentionParams a = ap;
        a.q = val(op.in);
        a.q_stride = width(op.in);
        a.out = val(op.out);
        a.k_cache = k_cache(op.layer);
        a.v_cache = v_cache(op.layer);
        a.kv_fp8 = kv_fp8();
        a.k_scale = k_scale(op.layer);
        a.v_scale = v_scale(op.layer);
        a.scale = op.scale;
        a.sliding_window = op.sliding_window;
        a.softcap = op.softcap;
        attention(a, attn_path, *dev, stream);
        if (fi_works > 0) {
          prof_mark(StepPhase::kAttention, "flashinfer_prefill");
          flashinfer_prefill(a, mem.fi_work.as<int32_t>(), fi_ctas, fi_works, *dev, stream);
        }
        return ok_status();
      }
      case OpKind::kSiluMul:
      case OpKind::kGeluTanhMul: {  // act(gate) * up over [gate | up] rows
        prof_mark(StepPhase::kActivation,
                  op.kind == OpKind::kSiluMul ? "silu_mul" : "gelu_tanh_mul");
        SiluMulParams sp;
        sp.gate_up = val(op.in);
        sp.out = val(op.out);
        sp.num_tokens = rows;
        sp.inter = static_cast<int>(width(op.out));
        sp.dtype = opts.dtype;
        sp.fp8 = fp8_output_for(ops, i, rows, &pending);
        if (op.kind == OpKind::kSiluMul) {
          silu_mul(sp, *dev, stream);
        } else {
          gelu_tanh_mul(sp, *dev, stream);
        }
        return ok_status();
      }
      case OpKind::kSoftcap: {
        // In place (Gemma 2's final logits); the logits live in logits_out.
        KITE_CHECK_EQ(op.in, op.out) << "softcap out of place";
        prof_mark(StepPhase::kOther, "softcap");
        float* x = op.out == graph.logits ? lm_out + static_cast<int64_t>(r0) * cfg.vocab_size
                                          : static_cast<float*>(val(op.out));
        KITE_CHECK(graph.value(op.out).f32) << "softcap of a non-F32 value";
        softcap_inplace(x, static_cast<int64_t>(rows) * width(op.out), op.softcap, *dev, stream);
        return ok_status();
      }
      case OpKind::kMoe:
        prof_mark(StepPhase::kGemm, "moe");
        return run_moe(op, rows, !d.all_decode);
    }
    return internal_error("unknown op");
  };

  size_t first_logits_op = ops.size();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (logit_rows(ops[i].out)) {
      first_logits_op = i;
      break;
    }
  }
  for (size_t i = 0; i < first_logits_op; ++i) KITE_RETURN_IF_ERROR(run(ops[i], T, 0));
  // The step's last pool_rows logits rows are pooling rows: no LM head (0 in graph capture).
  const int first_pool_row = d.logits - pool_rows;
  for (int r0 = 0; r0 < d.logits; r0 += mem.cap.logits) {
    const int rows = std::min(mem.cap.logits, d.logits - r0);
    for (size_t i = first_logits_op; i < ops.size(); ++i) {
      const Op& op = ops[i];
      const int op_rows = op.out == graph.logits ? std::clamp(first_pool_row - r0, 0, rows) : rows;
      if (op_rows > 0) KITE_RETURN_IF_ERROR(run(op, op_rows, r0));
      if (pool_rows > 0 && op.out == final_hidden && r0 + rows > first_pool_row) {
        // This chunk's pooling rows of the final norm, before the next chunk overwrites them.
        const int from = std::max(r0, first_pool_row);
        const int64_t row_bytes = dtype_bytes(opts.dtype, width(final_hidden));
        prof_mark(StepPhase::kOther, "pooling_copy");
        KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
            pool_host.data() + (from - first_pool_row) * row_bytes,
            static_cast<const uint8_t*>(val(final_hidden)) + (from - r0) * row_bytes,
            static_cast<size_t>((r0 + rows - from) * row_bytes), cudaMemcpyDeviceToHost, stream));
      }
    }
  }
  if (tensor_parallel() && first_pool_row > 0) {
    KITE_RETURN_IF_ERROR(gather_logits(lm_out, gathered, first_pool_row, logits_out));
  }
  return ok_status();
}

}  // namespace kite::cuda
