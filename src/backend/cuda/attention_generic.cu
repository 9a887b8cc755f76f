// Generic attention for small head dims (<= 32) and any GQA group: one warp per (query token,
// q head); lanes take the context's tokens round-robin with their own online-softmax state and
// merge at the end. Used by the tiny models (head_dim 8 and 16); not a performance path.
#include <cfloat>

#include "backend/cuda/attention.h"
#include "backend/cuda/common.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kMaxHeadDim = 32;
constexpr int kWarps = 4;

__device__ __forceinline__ float exp2_or_zero(float x) { return x == -INFINITY ? 0.f : exp2f(x); }

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
  const __nv_bfloat16* qp = static_cast<const __nv_bfloat16*>(p.q) +
                            static_cast<int64_t>(t) * p.q_stride + static_cast<int64_t>(qh) * hd;
  const float qscale = p.scale * kLog2e;
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) q[d] = d < hd ? __bfloat162float(qp[d]) * qscale : 0.f;

  float m = -INFINITY, l = 0.f, o[kMaxHeadDim];
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) o[d] = 0.f;
  const int32_t* bt = p.block_table + p.block_table_indptr[seq];
  const __nv_bfloat16* kc = static_cast<const __nv_bfloat16*>(p.k_cache);
  const __nv_bfloat16* vc = static_cast<const __nv_bfloat16*>(p.v_cache);
  for (int j = lane; j <= qpos; j += 32) {
    const int64_t page = bt[j / p.block_size];
    const int64_t off = ((page * p.num_kv_heads + kvh) * p.block_size + j % p.block_size) * hd;
    float s = 0.f;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      if (d < hd) s = fmaf(q[d], __bfloat162float(kc[off + d]), s);
    }
    const float mx = fmaxf(m, s);
    const float corr = exp2_or_zero(m - mx);
    const float pj = exp2f(s - mx);
    l = l * corr + pj;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      if (d < hd) o[d] = o[d] * corr + pj * __bfloat162float(vc[off + d]);
    }
    m = mx;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
    const float l2 = __shfl_xor_sync(0xffffffffu, l, off);
    const float mx = fmaxf(m, m2);
    const float ref = mx == -INFINITY ? 0.f : mx;
    const float a = exp2_or_zero(m - ref);
    const float b = exp2_or_zero(m2 - ref);
    l = l * a + l2 * b;
#pragma unroll
    for (int d = 0; d < kMaxHeadDim; ++d) {
      const float o2 = __shfl_xor_sync(0xffffffffu, o[d], off);
      o[d] = o[d] * a + o2 * b;
    }
    m = mx;
  }
  __nv_bfloat16* out =
      static_cast<__nv_bfloat16*>(p.out) + (static_cast<int64_t>(t) * p.num_q_heads + qh) * hd;
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; ++d) {
    if (d < hd && lane == d) out[d] = __float2bfloat16_rn(o[d] * inv);
  }
}

}  // namespace

void attention_generic(const AttentionParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_CHECK(p.head_dim <= kMaxHeadDim) << "generic attention: head_dim " << p.head_dim;
  const int items = p.num_tokens * p.num_q_heads;
  launch(generic_kernel, dim3((items + kWarps - 1) / kWarps), dim3(kWarps * 32), 0, stream, p);
}

}  // namespace kite::cuda
