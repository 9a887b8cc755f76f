// Decode attention: one query token per sequence, CUDA cores, split-KV.
//
// CTA = (split, kv head, decode sequence), 4 warps. A token's head_dim values are spread over
// kLanes = head_dim / 8 lanes (16 bytes each), so a warp covers 32 / kLanes tokens per step and
// every lane keeps the online-softmax state of all kGroup query heads for its 8 dims. Each lane
// loads kUnroll tokens' K and V before using them (memory-level parallelism). kFp8: the cache
// holds E4M3 bytes (8 bytes per lane and token), dequantized with the layer's scales on load.
#include <cfloat>

#include "backend/cuda/attention.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/kv_fp8.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kUnroll = 4;
constexpr int kPageWindow = 128;  // block-table entries staged in shared memory at a time

__device__ __forceinline__ float exp2_or_zero(float x) { return x == -INFINITY ? 0.f : exp2f(x); }

// K or V of 8 dims as floats: bf16 (16 bytes of v) or E4M3 (v.x, v.y) times scale.
template <bool kFp8>
__device__ __forceinline__ void unpack_kv8(const uint4& v, float scale, float (&f)[8]) {
  if constexpr (kFp8) {
    unpack_fp8x8(make_uint2(v.x, v.y), scale, f);
  } else {
    unpack_bf16x8(v, f);
  }
}

template <int kHeadDim, int kGroup, bool kFp8>
__global__ void __launch_bounds__(kWarps * 32, kGroup <= 4 ? 4 : 1)
    decode_kernel(AttentionParams p) {
  constexpr int kLanes = kHeadDim / 8;
  constexpr int kTokPerWarp = 32 / kLanes;
  constexpr int kStep = kWarps * kTokPerWarp;  // tokens per CTA step (per unroll slot)
  __shared__ float s_o[kWarps][kGroup][kHeadDim];
  __shared__ float s_ml[kWarps][kGroup][2];
  __shared__ int s_last;
  __shared__ int32_t s_pages[kPageWindow];
  __shared__ float s_w[kGroup][kMaxDecodeSplits];  // split maxima, then merge weights
  __shared__ float s_l[kGroup][kMaxDecodeSplits];  // split sums

  pdl_launch_dependents();

  // The step's inputs (lengths, block table) were copied before the step's first kernel: read
  // them before waiting for the previous kernel; q is that kernel's output.
  const int split = blockIdx.x;
  const int kvh = blockIdx.y;
  const int di = blockIdx.z;
  const int seq = p.decode_seqs != nullptr ? p.decode_seqs[di] : di;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int sub = lane / kLanes;  // token slot within the warp
  const int d8 = lane % kLanes;   // which 8 dims
  const int group = p.num_q_heads / p.num_kv_heads;
  const int seq_len = p.seq_lens[seq];
  const int qtok = p.query_start_loc[seq + 1] - 1;
  const int S = p.num_splits;

  // Sliding window: only the last sliding_window keys (the query's own included).
  const int kv_first = p.sliding_window > 0 ? max(0, seq_len - p.sliding_window) : 0;
  int chunk = (seq_len - kv_first + S - 1) / S;
  chunk = (chunk + kStep - 1) / kStep * kStep;
  const int t_begin = min(seq_len, kv_first + split * chunk);
  const int t_end = min(seq_len, t_begin + chunk);

  const int32_t* bt = p.block_table + p.block_table_indptr[seq];
  const int bs = p.block_size;
  const int bs_shift = (bs & (bs - 1)) == 0 ? __ffs(bs) - 1 : -1;
  auto stage_pages = [&](int pb, int npages) {
    for (int i = threadIdx.x; i < npages; i += kWarps * 32) s_pages[i] = bt[pb + i];
  };
  auto window_end = [&](int win) { return min(t_end, (win / bs + kPageWindow) * bs); };
  if (t_begin < t_end) {
    stage_pages(t_begin / bs, (window_end(t_begin) - 1) / bs - t_begin / bs + 1);
  }
  pdl_wait();

  // q, pre-scaled so that scores are in log2 units (with soft-capping: by the softmax scale
  // only, the cap's tanh and log2 e applied to each score).
  const float softcap = p.softcap;
  const float qscale = softcap > 0.f ? p.scale : p.scale * kLog2e;
  float q[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    if (g < group) {
      const __nv_bfloat16* qp = static_cast<const __nv_bfloat16*>(p.q) +
                                static_cast<int64_t>(qtok) * p.q_stride +
                                static_cast<int64_t>(kvh * group + g) * kHeadDim + d8 * 8;
      unpack_bf16x8(*reinterpret_cast<const uint4*>(qp), q[g]);
#pragma unroll
      for (int j = 0; j < 8; ++j) q[g][j] *= qscale;
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) q[g][j] = 0.f;
    }
  }

  float m[kGroup], l[kGroup], o[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) o[g][j] = 0.f;
  }

  const char* kc = static_cast<const char*>(p.k_cache);
  const char* vc = static_cast<const char*>(p.v_cache);
  constexpr int kElemBytes = kFp8 ? 1 : 2;

  // Windows of up to kPageWindow blocks: their ids go to shared memory first, so the K/V loads
  // of the whole window wait on one block-table round trip instead of one per iteration.
  for (int win = t_begin; win < t_end;) {
    const int pb = win / bs;
    const int win_end = window_end(win);
    if (win != t_begin) {  // the first window was staged before pdl_wait()
      __syncthreads();     // the previous window's readers are done
      stage_pages(pb, (win_end - 1) / bs - pb + 1);
    }
    __syncthreads();
    for (int wb = win + warp * kTokPerWarp; wb < win_end; wb += kStep * kUnroll) {
      uint4 kv_k[kUnroll], kv_v[kUnroll];
      bool valid[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int t = wb + sub + u * kStep;
        valid[u] = t < win_end;
        if (valid[u]) {
          const int blk = bs_shift >= 0 ? t >> bs_shift : t / bs;
          const int in_blk = bs_shift >= 0 ? t & (bs - 1) : t - blk * bs;
          const int64_t page = s_pages[blk - pb];
          const int64_t off =
              (((page * p.num_kv_heads + kvh) * bs + in_blk) * kHeadDim + d8 * 8) * kElemBytes;
          if constexpr (kFp8) {
            const uint2 k8 = *reinterpret_cast<const uint2*>(kc + off);
            const uint2 v8 = *reinterpret_cast<const uint2*>(vc + off);
            kv_k[u] = make_uint4(k8.x, k8.y, 0, 0);
            kv_v[u] = make_uint4(v8.x, v8.y, 0, 0);
          } else {
            kv_k[u] = *reinterpret_cast<const uint4*>(kc + off);
            kv_v[u] = *reinterpret_cast<const uint4*>(vc + off);
          }
        } else {
          kv_k[u] = make_uint4(0, 0, 0, 0);
          kv_v[u] = make_uint4(0, 0, 0, 0);
        }
      }
      float s[kUnroll][kGroup];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float kf[8];
        unpack_kv8<kFp8>(kv_k[u], p.k_scale, kf);
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          float acc = 0.f;
#pragma unroll
          for (int j = 0; j < 8; ++j) acc = fmaf(q[g][j], kf[j], acc);
#pragma unroll
          for (int off = kLanes / 2; off > 0; off >>= 1) {
            acc += __shfl_xor_sync(0xffffffffu, acc, off);
          }
          if (softcap > 0.f) acc = softcap_log2(acc, softcap);
          s[u][g] = valid[u] ? acc : -INFINITY;
        }
      }
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float mx = m[g];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, s[u][g]);
        const float ref = mx == -INFINITY ? 0.f : mx;
        const float corr = exp2_or_zero(m[g] - ref);
        l[g] *= corr;
#pragma unroll
        for (int j = 0; j < 8; ++j) o[g][j] *= corr;
        m[g] = mx;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const float pu = exp2_or_zero(s[u][g] - ref);
          l[g] += pu;
          float vf[8];
          unpack_kv8<kFp8>(kv_v[u], p.v_scale, vf);
#pragma unroll
          for (int j = 0; j < 8; ++j) o[g][j] = fmaf(pu, vf[j], o[g][j]);
        }
      }
    }
    win = win_end;
  }

  // Merge the token slots of the warp (lanes d8, d8 + kLanes, ...).
#pragma unroll
  for (int off = kLanes; off < 32; off <<= 1) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], off);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[g], off);
      const float mx = fmaxf(m[g], m2);
      const float ref = mx == -INFINITY ? 0.f : mx;
      const float a = exp2_or_zero(m[g] - ref);
      const float b = exp2_or_zero(m2 - ref);
      l[g] = l[g] * a + l2 * b;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float o2 = __shfl_xor_sync(0xffffffffu, o[g][j], off);
        o[g][j] = o[g][j] * a + o2 * b;
      }
      m[g] = mx;
    }
  }
  if (sub == 0) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
#pragma unroll
      for (int j = 0; j < 8; ++j) s_o[warp][g][d8 * 8 + j] = o[g][j];
      if (d8 == 0) {
        s_ml[warp][g][0] = m[g];
        s_ml[warp][g][1] = l[g];
      }
    }
  }
  __syncthreads();

  // Merge the warps; thread i handles (g, d) pairs i, i + 128, ...
  const int di_base = di * p.num_q_heads;
  for (int i = threadIdx.x; i < group * kHeadDim; i += kWarps * 32) {
    const int g = i / kHeadDim;
    const int d = i % kHeadDim;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_ml[w][g][0]);
    const float ref = mx == -INFINITY ? 0.f : mx;
    float lsum = 0.f, osum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float a = exp2_or_zero(s_ml[w][g][0] - ref);
      lsum += s_ml[w][g][1] * a;
      osum += s_o[w][g][d] * a;
    }
    const int qh = kvh * group + g;
    if (S == 1) {
      __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.out) +
                           static_cast<int64_t>(qtok) * p.num_q_heads * kHeadDim +
                           static_cast<int64_t>(qh) * kHeadDim;
      out[d] = __float2bfloat16_rn(lsum > 0.f ? osum / lsum : 0.f);
    } else {
      const int64_t row = static_cast<int64_t>(di_base + qh) * S + split;
      p.split_out[row * kHeadDim + d] = osum;
      if (d == 0) {
        p.split_lse[row * 2] = mx;
        p.split_lse[row * 2 + 1] = lsum;
      }
    }
  }
  if (S == 1) return;

  // The last split of this (sequence, kv head) to finish merges all splits.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t* counter = p.split_counters + di * p.num_kv_heads + kvh;
    const int prev = atomicAdd(counter, 1);
    s_last = prev == S - 1;
    if (s_last) *counter = 0;  // ready for the next launch (graph replays included)
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  // Merge: every (max, sum) of the splits into shared memory with one load each, then
  // normalized weights per head, then every output element sums its splits with all loads
  // issued at once.
  for (int i = threadIdx.x; i < group * S; i += kWarps * 32) {
    const int g = i / S, sp = i % S;
    const int64_t row = static_cast<int64_t>(di_base + kvh * group + g) * S + sp;
    s_w[g][sp] = __ldcg(p.split_lse + row * 2);
    s_l[g][sp] = __ldcg(p.split_lse + row * 2 + 1);
  }
  __syncthreads();
  if (threadIdx.x < group) {
    const int g = threadIdx.x;
    float mx = -INFINITY;
    for (int sp = 0; sp < S; ++sp) mx = fmaxf(mx, s_w[g][sp]);
    const float ref = mx == -INFINITY ? 0.f : mx;
    float lsum = 0.f;
    for (int sp = 0; sp < S; ++sp) {
      s_w[g][sp] = exp2_or_zero(s_w[g][sp] - ref);
      lsum += s_l[g][sp] * s_w[g][sp];
    }
    const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
    for (int sp = 0; sp < S; ++sp) s_w[g][sp] *= inv;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * kHeadDim; i += kWarps * 32) {
    const int g = i / kHeadDim;
    const int d = i % kHeadDim;
    const int qh = kvh * group + g;
    const float* po = p.split_out + static_cast<int64_t>(di_base + qh) * S * kHeadDim + d;
    // Eight splits' loads in flight at a time (more would cost registers, hence occupancy).
    float osum = 0.f;
    for (int sp0 = 0; sp0 < S; sp0 += 8) {
      float vals[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        vals[j] = sp0 + j < S ? __ldcg(po + static_cast<int64_t>(sp0 + j) * kHeadDim) : 0.f;
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (sp0 + j < S) osum = fmaf(s_w[g][sp0 + j], vals[j], osum);
      }
    }
    __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.out) +
                         static_cast<int64_t>(qtok) * p.num_q_heads * kHeadDim +
                         static_cast<int64_t>(qh) * kHeadDim;
    out[d] = __float2bfloat16_rn(osum);
  }
}

}  // namespace

void attention_decode(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_decode == 0) return;
  KITE_CHECK(p.num_splits == 1 || (p.split_out != nullptr && p.split_counters != nullptr))
      << "decode attention: split-KV needs a workspace";
  check_supported("attention_decode", "dtype", p.dtype, TensorCoreDTypes{});
  static_assert(DecodeGroups::contains(kDecodeMaxGroup));
  const int group = p.num_q_heads / p.num_kv_heads;
  KITE_CHECK(decode_kernel_supports_group(group))
      << "attention_decode: GQA group " << group << " is not supported (1 to " << kDecodeMaxGroup
      << "; plan_attention routes these to the prefill kernel)";
  const dim3 grid(p.num_splits, p.num_kv_heads, p.num_decode);
  const dim3 block(kWarps * 32);
  KITE_DISPATCH_VALUE("attention_decode", "head_dim", p.head_dim, TensorCoreHeadDims, kHeadDim, {
    KITE_DISPATCH_AT_LEAST("attention_decode", "GQA group", group, DecodeGroups, kGroup, {
      if (p.kv_fp8) {
        launch(decode_kernel<kHeadDim, kGroup, true>, grid, block, 0, dev, stream, p);
      } else {
        launch(decode_kernel<kHeadDim, kGroup, false>, grid, block, 0, dev, stream, p);
      }
    });
  });
}

}  // namespace kite::cuda
