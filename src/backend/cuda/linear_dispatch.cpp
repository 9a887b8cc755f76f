// Linear layers on the device: the GEMV for decode-sized steps (m <= gemv_max_m; the only kernel
// that fuses a norm prologue and residual / RoPE+KV-write / SiLU·mul epilogues), cuBLASLt for
// everything else and for the float32 mode.
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/runner_state.h"
#include "core/check.h"

namespace kite::cuda {

Status CudaModelRunner::Impl::linear(const void* x, int64_t ldx, const DeviceWeight& wt, void* y,
                                     int64_t ldy, int m, bool out_f32) {
  const int n = static_cast<int>(wt.rows), k = static_cast<int>(wt.cols);
  if (!f32() && m <= opts.gemv_max_m) {
    GemvParams g;
    g.x = x;
    g.w = wt.data;
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
  g.w = wt.data;
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
      g.rope.inv_freq = inv_freq.as<float>();
      g.rope.k_cache = k_cache(op.layer);
      g.rope.v_cache = v_cache(op.layer);
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
