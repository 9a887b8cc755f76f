#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <type_traits>

#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kv_fp8.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 4;  // weight rows per CTA (kRopeKv: two rotate-half pairs)

// Weights are read exactly once: keep them out of L1.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 load_stream(const uint2* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];"
               : "=r"(v.x), "=r"(v.y)
               : "l"(p));
  return v;
}

// 8 weights of one row: 16 bytes of bf16, or 8 bytes of FP8 E4M3.
template <bool kFp8>
using WVec = std::conditional_t<kFp8, uint2, uint4>;

__device__ __forceinline__ void unpack_w8(const uint4& v, float (&f)[8]) { unpack_bf16x8(v, f); }
__device__ __forceinline__ void unpack_w8(const uint2& v, float (&f)[8]) {
  const uint32_t words[2] = {v.x, v.y};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const auto pair = static_cast<__nv_fp8x2_storage_t>(words[i / 2] >> (16 * (i % 2)));
    const float2 h = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
    f[2 * i] = h.x;
    f[2 * i + 1] = h.y;
  }
}

// Weight row j of row group `grp`, or -1 past the end.
template <GemvEpilogue kEpi>
__device__ __forceinline__ int group_row(const GemvParams& p, int grp, int j) {
  if constexpr (kEpi == GemvEpilogue::kSiluMul) {
    const int half = p.n / 2;
    const int r = grp * (kRows / 2) + j % (kRows / 2);
    return r < half ? (j < kRows / 2 ? r : half + r) : -1;
  } else if constexpr (kEpi == GemvEpilogue::kRopeKv) {
    const int half = p.rope.head_dim / 2;
    const int pair = grp * (kRows / 2) + j / 2;
    if (pair >= p.n / 2) return -1;
    return (pair / half) * p.rope.head_dim + pair % half + (j % 2) * half;
  } else {
    const int r = grp * kRows + j;
    return r < p.n ? r : -1;
  }
}

template <GemvEpilogue kEpi>
int num_row_groups(const GemvParams& p) {
  return kEpi == GemvEpilogue::kNone ? (p.n + kRows - 1) / kRows
                                     : (p.n / 2 + kRows / 2 - 1) / (kRows / 2);
}

// Persistent: CTA b handles row groups b, b + gridDim.x, ... While it reduces one group, the
// first weights of its next group are already on their way (the memory system never drains
// between groups, which short-lived CTAs could not avoid).
template <int M, typename OutT, GemvEpilogue kEpi, bool kFp8>
__global__ void __launch_bounds__(kThreads, M == 1 ? 3 : (M <= 4 ? 2 : 1))
    gemv_kernel(GemvParams p, int num_groups) {
  constexpr int kUnroll = M <= 4 ? 2 : 1;
  __shared__ float red[kWarps][M * kRows];
  __shared__ float s_rnorm[M];

  const int nvec = p.k / 8;
  int grp = blockIdx.x;
  int row[kRows];
  auto set_rows = [&](int g) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) row[j] = max(group_row<kEpi>(p, g, j), 0);
  };
  set_rows(grp);
  using W8 = WVec<kFp8>;
  const W8* w = static_cast<const W8*>(p.w);
  // FP8: the dequantization scale of weight (row, k = 8 v .. 8 v + 7); one per row or per
  // 128 x 128 block (8-value vectors never straddle a block).
  const int scale_cols = (p.k + kGemvFp8ScaleBlock - 1) / kGemvFp8ScaleBlock;
  auto w_scale = [&](int r, int v) -> float {
    if constexpr (!kFp8) {
      return 1.f;
    } else {
      v = min(v, nvec - 1);  // past the row's end the weights are zeros; any scale will do
      return p.w_scale_block == 0
                 ? __ldg(p.w_scale + r)
                 : __ldg(p.w_scale + (r / kGemvFp8ScaleBlock) * scale_cols +
                         (v * 8) / kGemvFp8ScaleBlock);
    }
  };
  const uint4* x = static_cast<const uint4*>(p.x);
  const uint4* nw = static_cast<const uint4*>(p.norm_weight);
  const int64_t xs = p.x_stride / 8;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;

  pdl_launch_dependents();
  // The first weights do not depend on earlier kernels: start streaming them before waiting.
  W8 wv[kUnroll][kRows];
  auto load_w = [&](int v0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = v0 + u * kThreads;
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        wv[u][j] = v < nvec ? load_stream(w + static_cast<int64_t>(row[j]) * nvec + v) : W8{};
      }
    }
  };
  load_w(threadIdx.x);
  pdl_wait();

  // Prologue: 1 / rms of each x row.
  if (nw != nullptr) {
    float ss[M];
#pragma unroll
    for (int mi = 0; mi < M; ++mi) ss[mi] = 0.f;
    for (int v = threadIdx.x; v < nvec; v += kThreads) {
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        float xf[8];
        unpack_bf16x8(__ldg(x + mi * xs + v), xf);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss[mi] += xf[e] * xf[e];
      }
    }
#pragma unroll
    for (int mi = 0; mi < M; ++mi) {
      const float t = warp_sum(ss[mi]);
      if (lane == 0) red[warp][mi] = t;
    }
    __syncthreads();
    if (threadIdx.x < M) {
      float t = 0.f;
#pragma unroll
      for (int wi = 0; wi < kWarps; ++wi) t += red[wi][threadIdx.x];
      s_rnorm[threadIdx.x] = rsqrtf(t / static_cast<float>(p.k) + p.norm_eps);
    }
    __syncthreads();
  }

  for (; grp < num_groups; grp += gridDim.x) {
    float acc[M][kRows];
#pragma unroll
    for (int mi = 0; mi < M; ++mi) {
#pragma unroll
      for (int j = 0; j < kRows; ++j) acc[mi][j] = 0.f;
    }
    for (int v0 = threadIdx.x; v0 < nvec; v0 += kUnroll * kThreads) {
      uint4 xv[kUnroll][M];
      uint4 nv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int v = v0 + u * kThreads;
#pragma unroll
        for (int mi = 0; mi < M; ++mi) {
          xv[u][mi] = v < nvec ? __ldg(x + mi * xs + v) : make_uint4(0, 0, 0, 0);
        }
        if (nw != nullptr) nv[u] = v < nvec ? __ldg(nw + v) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float wf[kRows][8];
#pragma unroll
        for (int j = 0; j < kRows; ++j) {
          unpack_w8(wv[u][j], wf[j]);
          if constexpr (kFp8) {
            const float sc = w_scale(row[j], v0 + u * kThreads);
#pragma unroll
            for (int e = 0; e < 8; ++e) wf[j][e] *= sc;
          }
        }
        float nf[8];
        if (nw != nullptr) unpack_bf16x8(nv[u], nf);
#pragma unroll
        for (int mi = 0; mi < M; ++mi) {
          float xf[8];
          unpack_bf16x8(xv[u][mi], xf);
          if (nw != nullptr) {
            const float r = s_rnorm[mi];
#pragma unroll
            for (int e = 0; e < 8; ++e) xf[e] = round_bf16(nf[e] * round_bf16(xf[e] * r));
          }
#pragma unroll
          for (int j = 0; j < kRows; ++j) {
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[mi][j] = fmaf(wf[j][e], xf[e], acc[mi][j]);
          }
        }
      }
      if (v0 + kUnroll * kThreads < nvec) load_w(v0 + kUnroll * kThreads);
    }
    if (grp + static_cast<int>(gridDim.x) < num_groups) {
      set_rows(grp + gridDim.x);
      load_w(threadIdx.x);
    }

    __syncthreads();  // red[] may still be read by the prologue or the previous epilogue
#pragma unroll
    for (int mi = 0; mi < M; ++mi) {
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        const float v = warp_sum(acc[mi][j]);
        if (lane == 0) red[warp][mi * kRows + j] = v;
      }
    }
    __syncthreads();
    auto total = [&](int mi, int j) {
      float v = 0.f;
#pragma unroll
      for (int wi = 0; wi < kWarps; ++wi) v += red[wi][mi * kRows + j];
      return v;
    };
    const __nv_bfloat16* bias = static_cast<const __nv_bfloat16*>(p.bias);
    if constexpr (kEpi == GemvEpilogue::kSiluMul) {
      if (threadIdx.x < M * (kRows / 2)) {
        const int mi = threadIdx.x / (kRows / 2);
        const int jj = threadIdx.x % (kRows / 2);
        const int col = grp * (kRows / 2) + jj;
        if (col < p.n / 2) {
          const float v =
              silu_mul_bf16(round_bf16(total(mi, jj)), round_bf16(total(mi, kRows / 2 + jj)));
          static_cast<__nv_bfloat16*>(p.y)[mi * p.y_stride + col] = __float2bfloat16_rn(v);
        }
      }
    } else if constexpr (kEpi == GemvEpilogue::kRopeKv) {
      // Thread (mi, pp) finishes pair pp of row mi.
      if (threadIdx.x < M * (kRows / 2)) {
        const int mi = threadIdx.x / (kRows / 2);
        const int pp = threadIdx.x % (kRows / 2);
        const int pair = grp * (kRows / 2) + pp;
        if (pair < p.n / 2) {
          const GemvRope& rp = p.rope;
          const int hd = rp.head_dim, half = hd / 2;
          const int head = pair / half, i = pair % half;
          const int r1 = head * hd + i, r2 = r1 + half;
          float x1 = total(mi, 2 * pp), x2 = total(mi, 2 * pp + 1);
          if (bias != nullptr) {
            x1 += __bfloat162float(bias[r1]);
            x2 += __bfloat162float(bias[r2]);
          }
          x1 = round_bf16(x1);
          x2 = round_bf16(x2);
          const bool is_v = head >= rp.num_q_heads + rp.num_kv_heads;
          __nv_bfloat16 o1 = __float2bfloat16_rn(x1), o2 = __float2bfloat16_rn(x2);
          if (!is_v) {
            float s, c;
            sincosf(static_cast<float>(rp.positions[mi]) * rp.inv_freq[i], &s, &c);
            o1 = __float2bfloat16_rn(x1 * c - x2 * s);
            o2 = __float2bfloat16_rn(x2 * c + x1 * s);
          }
          __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y) + mi * p.y_stride;
          y[r1] = o1;
          y[r2] = o2;
          const int64_t slot = rp.slot_mapping[mi];
          if (head >= rp.num_q_heads && slot >= 0) {
            const int kvh = is_v ? head - rp.num_q_heads - rp.num_kv_heads : head - rp.num_q_heads;
            const int64_t blk = slot / rp.block_size, off = slot % rp.block_size;
            const int64_t row = ((blk * rp.num_kv_heads + kvh) * rp.block_size + off) * hd;
            if (rp.kv_fp8) {
              const float scale = is_v ? rp.v_scale : rp.k_scale;
              uint8_t* dst = static_cast<uint8_t*>(is_v ? rp.v_cache : rp.k_cache) + row;
              dst[i] = kv_fp8_quantize(__bfloat162float(o1), scale);
              dst[i + half] = kv_fp8_quantize(__bfloat162float(o2), scale);
            } else {
              __nv_bfloat16* dst =
                  static_cast<__nv_bfloat16*>(is_v ? rp.v_cache : rp.k_cache) + row;
              dst[i] = o1;
              dst[i + half] = o2;
            }
          }
        }
      }
    } else {
      if (threadIdx.x < M * kRows) {
        const int mi = threadIdx.x / kRows;
        const int j = threadIdx.x % kRows;
        const int n = grp * kRows + j;
        if (n < p.n) {
          float v = total(mi, j);
          if (bias != nullptr) v += __bfloat162float(bias[n]);
          if constexpr (sizeof(OutT) == 4) {
            static_cast<float*>(p.y)[mi * p.y_stride + n] = v;
          } else {
            __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y) + mi * p.y_stride + n;
            if (p.residual != nullptr) {
              const float r = __bfloat162float(
                  static_cast<const __nv_bfloat16*>(p.residual)[mi * p.y_stride + n]);
              v = r + round_bf16(v);
            }
            *y = __float2bfloat16_rn(v);
          }
        }
      }
    }
  }  // row groups
}

template <int M, typename OutT, GemvEpilogue kEpi>
void launch_kernel(const GemvParams& p, const DeviceContext& dev, cudaStream_t stream) {
  auto* kernel = p.w_dtype == DType::kF8E4M3 ? gemv_kernel<M, OutT, kEpi, true>
                                             : gemv_kernel<M, OutT, kEpi, false>;
  // Persistent: as many CTAs as fit on the device at once (occupancy computed once per context).
  const int ctas_per_sm = dev.ctas_per_sm(reinterpret_cast<const void*>(kernel), kThreads, 0);
  const int groups = num_row_groups<kEpi>(p);
  const int grid = std::min(groups, dev.num_sms() * ctas_per_sm);
  launch(kernel, dim3(grid), dim3(kThreads), 0, dev, stream, p, groups);
}

using GemvEpilogues = ValueSet<GemvEpilogue::kNone, GemvEpilogue::kSiluMul, GemvEpilogue::kRopeKv>;

}  // namespace

bool gemv_supported(const GemvParams& p) {
  if (!GemvDTypes::contains(p.dtype) || !GemvWeightDTypes::contains(p.w_dtype)) return false;
  if (p.w_dtype == DType::kF8E4M3 &&
      (p.w_scale == nullptr ||
       (p.w_scale_block != 0 && p.w_scale_block != kGemvFp8ScaleBlock))) {
    return false;
  }
  if (p.m < 1 || p.m > kGemvMaxM || p.k % kGemvKAlign != 0 || p.k <= 0 || p.n <= 0) return false;
  if (p.x_stride % kGemvKAlign != 0) return false;
  if (reinterpret_cast<uintptr_t>(p.x) % 16 != 0 || reinterpret_cast<uintptr_t>(p.w) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(p.norm_weight) % 16 != 0) {
    return false;
  }
  switch (p.epilogue) {
    case GemvEpilogue::kSiluMul:
      return p.n % 2 == 0 && p.out_dtype == DType::kBF16 && p.bias == nullptr &&
             p.residual == nullptr;
    case GemvEpilogue::kRopeKv: {
      const GemvRope& r = p.rope;
      return p.out_dtype == DType::kBF16 && p.residual == nullptr && r.head_dim > 0 &&
             r.head_dim % 2 == 0 && p.n == (r.num_q_heads + 2 * r.num_kv_heads) * r.head_dim &&
             r.positions != nullptr && r.slot_mapping != nullptr && r.inv_freq != nullptr &&
             r.block_size > 0;
    }
    case GemvEpilogue::kNone:
      return GemvOutDTypes::contains(p.out_dtype) &&
             !(p.out_dtype == DType::kF32 && p.residual != nullptr);
  }
  return false;
}

void gemv(const GemvParams& p, const DeviceContext& dev, cudaStream_t stream) {
  KITE_CHECK(gemv_supported(p)) << "gemv: unsupported m=" << p.m << " n=" << p.n << " k=" << p.k
                                << " dtype " << dtype_name(p.dtype) << " -> "
                                << dtype_name(p.out_dtype) << " epilogue "
                                << static_cast<int>(p.epilogue);
  KITE_DISPATCH_VALUE("gemv", "m", p.m, GemvRows, kM, {
    KITE_DISPATCH_VALUE("gemv", "epilogue", p.epilogue, GemvEpilogues, kEpi, {
      if constexpr (kEpi == GemvEpilogue::kNone) {
        KITE_DISPATCH_DTYPE("gemv", p.out_dtype, GemvOutDTypes, OutT,
                            { launch_kernel<kM, OutT, kEpi>(p, dev, stream); });
      } else {
        launch_kernel<kM, __nv_bfloat16, kEpi>(p, dev, stream);
      }
    });
  });
}

}  // namespace kite::cuda
