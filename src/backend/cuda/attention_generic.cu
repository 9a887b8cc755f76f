// Generic attention for small head dims (<= 32) and any GQA group: one warp per (query token,
// q head); lanes take the context's tokens round-robin with their own online-softmax state and
// merge at the end. Used by the tiny models (head_dim 8 and 16); not a performance path.
// T = float is the float32 compute mode: F32 q, cache and output, softmax in natural exp as the
// CPU backend computes it; T = bf16 scores in log2 units (exp2f), as the tensor-core kernels.
// kFp8: the cache holds E4M3 bytes, each read as float(e4m3) * scale (the CPU's FP8 cache).
#include <cfloat>

#include "backend/cuda/attention.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/kv_fp8.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kMaxHeadDim = kGenericMaxHeadDim;  // q and o live in registers of this size
constexpr int kWarps = 4;
// exp in the kernel's domain: base 2 for bf16 (scores prescaled by log2 e), base e for f32.
template <typename T>
__device__ __forceinline__ float softmax_exp(float x) {
  if (x == -INFINITY) return 0.f;
  if constexpr (sizeof(T) == 4) {
    return expf(x);
  } else {
    return exp2f(x);
  }
}

// Element i of a cache row: T, or an E4M3 byte times scale.
template <typename T, bool kFp8>
__device__ __forceinline__ float cache_value(const void* cache, int64_t i, float scale) {
  if constexpr (kFp8) {
    return kv_fp8_value(static_cast<const uint8_t*>(cache)[i]) * scale;
  } else {
    return to_f(static_cast<const T*>(cache)[i]);
  }
}

template <typename T, bool kFp8>
__global__ void __launch_bounds__(kWarps * 32) generic_kernel(AttentionParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int lane = threadIdx.x & 31;
  const int item = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (item >= p.num_tokens * p.num_q_heads) return;
  const int t = item / p.num_q_heads;
  const int qh = item % p.num_q_heads;
  // Sequence of token t: the last s with query_start_loc[s] <= t.
  int lo = 0, hi = p.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (p.query_start_loc[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  const int seq = lo;
  const int qlen = p.query_start_loc[seq + 1] - p.query_start_loc[seq];
  const int qpos = p.seq_lens[seq] - qlen + (t - p.query_start_loc[seq]);
  const int group = p.num_q_heads / p.num_kv_heads;
  const int kvh = qh / group;
  const int hd = p.head_dim;

  float q[kMaxHeadDim];
  const T* qp = static_cast<const T*>(p.q) + static_cast<int64_t>(t) * p.q_stride +
                static_cast<int64_t>(qh) * hd;
  // bf16: q prescaled by scale * log2 e; f32: the score scaled after the dot, as the CPU does.
  constexpr bool kF32 = sizeof(T) == 4;
  // Soft-capping: the score scaled, capped, then (bf16) turned into log2 units.
  const float softcap = p.softcap;
  const float qscale = kF32 || softcap > 0.f ? 1.f : p.scale * kLog2e;
  const float sscale = kF32 ? p.scale : 1.f;
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) q[d] = d < hd ? to_f(qp[d]) * qscale : 0.f;

  float m = -INFINITY, l = 0.f, o[kMaxHeadDim];
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) o[d] = 0.f;
  const int32_t* bt = p.block_table + p.block_table_indptr[seq];
  // Sliding window: keys [qpos - sliding_window + 1, qpos] only.
  const int kv_first = p.sliding_window > 0 ? max(0, qpos - p.sliding_window + 1) : 0;
  for (int j = kv_first + lane; j <= qpos; j += 32) {
    const int64_t page = bt[j / p.block_size];
    const int64_t off = ((page * p.num_kv_heads + kvh) * p.block_size + j % p.block_size) * hd;
    float s = 0.f;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      if (d < hd) s = fmaf(q[d], cache_value<T, kFp8>(p.k_cache, off + d, p.k_scale), s);
    }
    if (softcap > 0.f) {
      s = softcap * tanhf(s * p.scale / softcap);
      if constexpr (!kF32) s *= kLog2e;
    } else {
      s *= sscale;
    }
    const float mx = fmaxf(m, s);
    const float corr = softmax_exp<T>(m - mx);
    const float pj = softmax_exp<T>(s - mx);
    l = l * corr + pj;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      if (d < hd) {
        o[d] = o[d] * corr + pj * cache_value<T, kFp8>(p.v_cache, off + d, p.v_scale);
      }
    }
    m = mx;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
    const float l2 = __shfl_xor_sync(0xffffffffu, l, off);
    const float mx = fmaxf(m, m2);
    const float ref = mx == -INFINITY ? 0.f : mx;
    const float a = softmax_exp<T>(m - ref);
    const float b = softmax_exp<T>(m2 - ref);
    l = l * a + l2 * b;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      const float o2 = __shfl_xor_sync(0xffffffffu, o[d], off);
      o[d] = o[d] * a + o2 * b;
    }
    m = mx;
  }
  T* out = static_cast<T*>(p.out) + (static_cast<int64_t>(t) * p.num_q_heads + qh) * hd;
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) {
    if (d < hd && lane == d) out[d] = from_f<T>(o[d] * inv);
  }
}

}  // namespace

void attention_generic(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_CHECK(generic_attention_supports(p.head_dim))
      << "attention_generic: head_dim " << p.head_dim << " is not supported (even, 2 to "
      << kGenericMaxHeadDim << ")";
  const int items = p.num_tokens * p.num_q_heads;
  const dim3 grid((items + kWarps - 1) / kWarps), block(kWarps * 32);
  KITE_DISPATCH_DTYPE("attention_generic", p.dtype, GenericDTypes, T, {
    if (p.kv_fp8) {
      launch(generic_kernel<T, true>, grid, block, 0, dev, stream, p);
    } else {
      launch(generic_kernel<T, false>, grid, block, 0, dev, stream, p);
    }
  });
}

}  // namespace kite::cuda
