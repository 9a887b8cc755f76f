// Linear layers on the device: the GEMV for decode-sized steps (m <= gemv_max_m; the only kernel
// that fuses a norm prologue and residual / RoPE+KV-write / SiLU·mul epilogues; bf16 or FP8
// weights), cuBLASLt for everything else and for the float32 mode. FP8 weights with more rows
// than the GEMV takes: the activations are quantized per token (or per token and 128-column
// group for block-scaled weights) — by quantize_fp8, or already by the RMSNorm / gated activation
// that produced them (op_runner.cpp) — and cuBLASLt's scaled FP8 GEMM runs; where the device or
// cuBLASLt has none (or KITE_FP8_GEMM=dequant), the weight is dequantized to bf16 into a scratch
// buffer and the bf16 GEMM runs.
#include <cstdlib>
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/runner_state.h"
#include "core/check.h"
#include "core/logging.h"

namespace kite::cuda {

void set_gemv_weight(GemvParams* g, const DeviceWeight& wt) {
  g->w = wt.data;
  if (wt.fp8()) {
    g->w_dtype = DType::kF8E4M3;
    g->w_scale = wt.scale;
    g->w_scale_block = wt.scale_block;
  }
}

Fp8Output CudaModelRunner::Impl::fp8_activations_for(const DeviceWeight& wt) const {
  const bool block = wt.scale_block != 0;
  Fp8Output o;
  o.q = mem.fp8_x.as<uint8_t>();
  o.q_stride = wt.cols;
  o.scale = mem.fp8_x_scale.as<float>();
  o.group = block ? kFp8Group : 0;
  o.group_major = block;  // VEC128_32F's layout (gemm.h)
  return o;
}

Status CudaModelRunner::Impl::fp8_gemm(const void* x, int64_t ldx, const DeviceWeight& wt, void* y,
                                       int64_t ldy, int m, const Fp8Input* pre) {
  const int n = static_cast<int>(wt.rows), k = static_cast<int>(wt.cols);
  if (!fp8_gemm_fallback) {
    const bool block = wt.scale_block != 0;
    QuantizeFp8Params qp;
    qp.x = x;
    qp.x_stride = ldx;
    qp.rows = m;
    qp.cols = k;
    qp.out = fp8_activations_for(wt);
    // The producer of x already wrote this quantization (the same rule, the same layout).
    const bool quantized =
        pre != nullptr && pre->x == x && pre->m == m && pre->k == k && pre->block == block;
    if (!quantized) quantize_fp8(qp, *dev, stream);
    GemmArgs a;
    a.x = qp.out.q;
    a.ldx = k;
    a.w = wt.data;
    a.ldw = k;
    a.bias = wt.bias;
    a.y = y;
    a.ldy = ldy;
    a.m = m;
    a.n = n;
    a.k = k;
    a.dtype = DType::kF8E4M3;
    a.out_dtype = DType::kBF16;
    a.fp8_scaling = block ? Fp8Scaling::kBlock : Fp8Scaling::kRowwise;
    a.w_scale = wt.scale;
    a.x_scale = qp.out.scale;
    const Status st = dev->gemm().gemm(a, stream);
    if (st.code() != StatusCode::kUnimplemented) return st;
    KITE_LOG_WARN("cuda: {}; FP8 linears larger than the GEMV run as dequantized bf16 GEMMs",
                  st.message());
    fp8_gemm_fallback = true;
  }
  // Dequantize into the scratch (grown once, outside any graph: eager steps only reach here
  // with more than gemv_max_m rows, and decode graphs above that size were warmed up eagerly).
  const size_t need = static_cast<size_t>(n) * k * 2;
  if (mem.fp8_w_bf16.size() < need) {
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    mem.fp8_w_bf16.reset();
    KITE_ASSIGN_OR_RETURN(mem.fp8_w_bf16,
                          DeviceBuffer::allocate(fp8_w_bf16_bytes, "FP8 weight dequantized"));
  }
  DequantizeFp8Params dp;
  dp.w = static_cast<const uint8_t*>(wt.data);
  dp.scale = wt.scale;
  dp.block = wt.scale_block;
  dp.rows = n;
  dp.cols = k;
  dp.out = mem.fp8_w_bf16.data();
  dequantize_fp8_weight(dp, *dev, stream);
  GemmArgs a;
  a.x = x;
  a.ldx = ldx;
  a.w = dp.out;
  a.ldw = k;
  a.bias = wt.bias;
  a.y = y;
  a.ldy = ldy;
  a.m = m;
  a.n = n;
  a.k = k;
  a.dtype = DType::kBF16;
  a.out_dtype = DType::kBF16;
  return dev->gemm().gemm(a, stream);
}

Status CudaModelRunner::Impl::linear(const void* x, int64_t ldx, const DeviceWeight& wt, void* y,
                                     int64_t ldy, int m, bool out_f32, const Fp8Input* pre) {
  const int n = static_cast<int>(wt.rows), k = static_cast<int>(wt.cols);
  if (!f32() && m <= opts.gemv_max_m) {
    GemvParams g;
    g.x = x;
    set_gemv_weight(&g, wt);
    g.bias = wt.bias;
    g.y = y;
    g.m = m;
    g.n = n;
    g.k = k;
    g.x_stride = ldx;
    g.y_stride = ldy;
    g.dtype = opts.dtype;
    g.out_dtype = out_f32 ? DType::kF32 : opts.dtype;
    if (gemv_supported(g)) {
      gemv(g, *dev, stream);
      return ok_status();
    }
  }
  if (wt.fp8()) {
    KITE_CHECK(!out_f32) << "FP8 linear with an F32 output";
    return fp8_gemm(x, ldx, wt, y, ldy, m, pre);
  }
  GemmArgs a;
  a.x = x;
  a.ldx = ldx;
  a.w = wt.data;
  a.ldw = k;
  a.bias = wt.bias;
  a.y = y;
  a.ldy = ldy;
  a.m = m;
  a.n = n;
  a.k = k;
  a.dtype = opts.dtype;
  a.out_dtype = out_f32 ? DType::kF32 : opts.dtype;
  return dev->gemm().gemm(a, stream);
}

void CudaModelRunner::Impl::fused_linear(const Op& op, const StepLayout& L, int m) {
  const int32_t* in = inputs_d.as<int32_t>();
  const DeviceWeight& wt = w[op.weight];
  const int64_t in_width = graph.value(op.in).width;
  const int64_t out_width = graph.value(op.out).width;
  GemvParams g;
  g.x = mem.values[static_cast<size_t>(op.in)];
  g.x_stride = in_width;
  set_gemv_weight(&g, wt);
  g.bias = wt.bias;
  g.y = mem.values[static_cast<size_t>(op.out)];
  g.y_stride = out_width;
  g.m = m;
  g.n = static_cast<int>(wt.rows);
  g.k = static_cast<int>(wt.cols);
  g.dtype = opts.dtype;
  if (op.prologue_norm != kNoWeight) {
    g.norm_weight = w[op.prologue_norm].data;
    g.norm_eps = op.eps;
  }
  switch (op.epilogue) {
    case Epilogue::kNone:
      break;
    case Epilogue::kResidualAdd:
      g.residual = g.y;  // the residual stream, updated in place
      break;
    case Epilogue::kSiluMul:
      g.epilogue = GemvEpilogue::kSiluMul;
      break;
    case Epilogue::kRopeKv:
      g.epilogue = GemvEpilogue::kRopeKv;
      g.rope.positions = in + L.positions;
      g.rope.slot_mapping = in + L.slot_mapping;
      // fused only for plain RoPEs (create(): full rotary, no LongRoPE)
      g.rope.inv_freq = ropes[static_cast<size_t>(op.rope)].inv_freq.as<float>();
      g.rope.k_cache = k_cache(op.layer);
      g.rope.v_cache = v_cache(op.layer);
      g.rope.kv_fp8 = kv_fp8();
      g.rope.k_scale = k_scale(op.layer);
      g.rope.v_scale = v_scale(op.layer);
      g.rope.num_q_heads = static_cast<int>(cfg.num_attention_heads);
      g.rope.num_kv_heads = static_cast<int>(cfg.num_key_value_heads);
      g.rope.head_dim = static_cast<int>(cfg.head_dim);
      g.rope.block_size = block_size;
      break;
  }
  KITE_CHECK(gemv_supported(g)) << "fused linear " << graph.weight(op.weight).name
                                << " does not fit the GEMV (m " << m << ")";
  gemv(g, *dev, stream);
}

}  // namespace kite::cuda
