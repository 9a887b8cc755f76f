#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe.h"
#include "core/check.h"

namespace kite::cuda {

namespace {

// One thread per token (num_experts is small: 8 to 256 in the published models).
__global__ void moe_route_kernel(MoeRouteParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= p.num_tokens) return;
  const float* l = p.router_logits + static_cast<int64_t>(t) * p.num_experts;
  float mx = l[0];
  for (int e = 1; e < p.num_experts; ++e) mx = fmaxf(mx, l[e]);
  double sum = 0;
  for (int e = 0; e < p.num_experts; ++e) sum += static_cast<double>(expf(l[e] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  int chosen[kMoeMaxTopK];
  float weight[kMoeMaxTopK];
  float total = 0.f;
  for (int j = 0; j < p.top_k; ++j) {
    int best = -1;
    float best_p = 0.f;
    for (int e = 0; e < p.num_experts; ++e) {
      bool taken = false;
      for (int i = 0; i < j; ++i) taken = taken || chosen[i] == e;
      if (taken) continue;
      const float v = expf(l[e] - mx) * inv;
      if (best < 0 || v > best_p || (isnan(best_p) && !isnan(v))) {
        best = e;
        best_p = v;
      }
    }
    chosen[j] = best;
    weight[j] = best_p;
    total += best_p;
  }
  for (int j = 0; j < p.top_k; ++j) {
    p.topk_experts[static_cast<int64_t>(t) * p.top_k + j] = chosen[j];
    p.topk_weights[static_cast<int64_t>(t) * p.top_k + j] =
        p.renormalize ? weight[j] / total : weight[j];
  }
}

constexpr int kPermuteThreads = 1024;

__global__ void __launch_bounds__(kPermuteThreads) moe_permute_kernel(MoePermuteParams p) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ int s_next[kMoeMaxExperts];
  for (int e = threadIdx.x; e < p.num_experts; e += blockDim.x) s_next[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < p.num_rows; i += blockDim.x)
    atomicAdd(&s_next[p.topk_experts[i]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int e = 0; e < p.num_experts; ++e) {
      const int c = s_next[e];
      s_next[e] = run;
      p.expert_offsets[e] = run;
      run += c;
    }
    p.expert_offsets[p.num_experts] = run;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < p.num_rows; i += blockDim.x) {
    const int r = atomicAdd(&s_next[p.topk_experts[i]], 1);
    p.row_token[r] = i / p.top_k;
    p.slot_row[i] = r;
  }
}

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kGemmThreads = 256;
constexpr int kSmallRows = 4;  // bf16 experts with at most this many rows: the GEMV path

// Decode: an expert with a handful of rows (at most kSmallRows; bf16, k and the x stride
// multiples of 8) is a GEMV over its weights — each warp streams whole weight rows of the CTA's
// kTileN columns in 16-byte vectors (coalesced) against every row of the expert, one F32 dot
// product per (row, column).
__device__ __forceinline__ void moe_gemv_small_rows(const MoeGemmParams& p, const __nv_bfloat16* w,
                                                    int n0, int begin, int rows) {
  using T = __nv_bfloat16;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T* xr[kSmallRows];
#pragma unroll
  for (int r = 0; r < kSmallRows; ++r) {
    const int64_t row = r < rows ? (p.x_rows != nullptr ? p.x_rows[begin + r] : begin + r)
                                 : (p.x_rows != nullptr ? p.x_rows[begin] : begin);
    xr[r] = x + row * p.x_stride;
  }
  for (int c = warp; c < kTileN; c += kGemmThreads / 32) {
    const int n = n0 + c;
    if (n >= p.n) break;
    const T* wr = w + static_cast<int64_t>(n) * p.k;
    float acc[kSmallRows];
#pragma unroll
    for (int r = 0; r < kSmallRows; ++r) acc[r] = 0.f;
#pragma unroll 4
    for (int k0 = lane * 8; k0 < p.k; k0 += 32 * 8) {
      float wv[8];
      unpack_bf16x8(*reinterpret_cast<const uint4*>(wr + k0), wv);
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r) {
        if (r < rows) {
          float xv[8];
          unpack_bf16x8(*reinterpret_cast<const uint4*>(xr[r] + k0), xv);
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[r] = fmaf(wv[j], xv[j], acc[r]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kSmallRows; ++r) acc[r] = warp_sum(acc[r]);
    if (lane == 0) {
      for (int r = 0; r < rows; ++r) {
        y[static_cast<int64_t>(begin + r) * p.y_stride + n] = from_f<T>(acc[r]);
      }
    }
  }
}

// The CUDA-core path. CTA (column tile, expert). An expert of at most kSmallRows rows: the GEMV
// above. Otherwise thread (ty, tx) of 16 x 16 owns rows ty + 16 i and columns tx + 16 j of each
// 64 x 64 output tile, operands staged as F32 in shared memory, k-major.
template <typename T>
__global__ void __launch_bounds__(kGemmThreads) moe_grouped_gemm_kernel(MoeGemmParams p) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float s_a[kTileK][kTileM + 1];
  __shared__ float s_b[kTileK][kTileN + 1];
  const int e = blockIdx.y;
  const int n0 = blockIdx.x * kTileN;
  const int begin = p.expert_offsets[e];
  const int end = p.expert_offsets[e + 1];
  if (begin == end) return;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weights[e]);
  T* y = static_cast<T*>(p.y);
  if constexpr (!kIsF32<T>) {
    const int rows = end - begin;
    if (rows <= kSmallRows && p.k % 8 == 0 && p.x_stride % 8 == 0) {
      moe_gemv_small_rows(p, w, n0, begin, rows);
      return;
    }
  }
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  for (int m0 = begin; m0 < end; m0 += kTileM) {
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    }
    for (int k0 = 0; k0 < p.k; k0 += kTileK) {
#pragma unroll
      for (int i = 0; i < kTileM * kTileK / kGemmThreads; ++i) {
        const int idx = threadIdx.x + i * kGemmThreads;
        const int r = idx / kTileK, kk = idx % kTileK;
        const int row = m0 + r, col = k0 + kk;
        float a = 0.f;
        if (row < end && col < p.k) {
          const int64_t src = p.x_rows != nullptr ? p.x_rows[row] : row;
          a = to_f(x[src * p.x_stride + col]);
        }
        s_a[kk][r] = a;
        const int n = n0 + r;
        s_b[kk][r] = n < p.n && col < p.k ? to_f(w[static_cast<int64_t>(n) * p.k + col]) : 0.f;
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kTileK; ++kk) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = s_a[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = s_b[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = m0 + ty + 16 * i;
      if (row >= end) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int n = n0 + tx + 16 * j;
        if (n < p.n) y[static_cast<int64_t>(row) * p.y_stride + n] = from_f<T>(acc[i][j]);
      }
    }
  }
}

// The tensor-core path (bf16; k and the x stride multiples of 8, x and the weights 16-byte
// aligned). Same grid and GEMV as above; an expert of more than kSmallRows rows walks its rows in
// 64 x 64 output tiles: k-steps of kTileK staged by cp.async into two shared-memory buffers (the
// next step's copy in flight while this one multiplies), rows past the expert's end, columns past
// n and k past p.k zero-filled (a 16-byte chunk is all in or all out since k % 8 == 0). Warp w
// owns rows 16 (w % 4) .. +16 and columns 32 (w / 4) .. +32 of the tile: per k16, one ldmatrix
// of x, two of the weights, four mma.sync m16n8k16 into F32 accumulators; a warp whose 16 rows
// all lie past the expert's end skips its math. Each output is rounded to bf16 once.
constexpr int kTcStride = kTileK + 8;  // bf16 per shared row: 80 bytes, ldmatrix conflict-free

__global__ void __launch_bounds__(kGemmThreads) moe_grouped_gemm_tc_kernel(MoeGemmParams p) {
  using T = __nv_bfloat16;
  pdl_launch_dependents();
  pdl_wait();
  __shared__ __align__(16) T s_a[2][kTileM][kTcStride];
  __shared__ __align__(16) T s_b[2][kTileN][kTcStride];
  const int e = blockIdx.y;
  const int n0 = blockIdx.x * kTileN;
  const int begin = p.expert_offsets[e];
  const int end = p.expert_offsets[e + 1];
  if (begin == end) return;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weights[e]);
  T* y = static_cast<T*>(p.y);
  if (end - begin <= kSmallRows) {
    moe_gemv_small_rows(p, w, n0, begin, end - begin);
    return;
  }
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  // Copy role: thread tid moves one 16-byte chunk of x and one of the weights per k-step: tile
  // row tid / 4, k chunk tid % 4 (kTileM * kTileK / 8 == kGemmThreads).
  static_assert(kTileM * kTileK / 8 == kGemmThreads && kTileN * kTileK / 8 == kGemmThreads);
  const int c_row = tid / 4, c_k = (tid % 4) * 8;
  const int n_load = n0 + c_row;
  const T* w_src = n_load < p.n ? w + static_cast<int64_t>(n_load) * p.k + c_k : nullptr;
  // Math role.
  const int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
  const int g_row = lane >> 2, t_col = lane & 3;
  const int num_k = (p.k + kTileK - 1) / kTileK;
  for (int m0 = begin; m0 < end; m0 += kTileM) {
    const int m_load = m0 + c_row;
    const T* x_src = nullptr;
    if (m_load < end) {
      const int64_t src = p.x_rows != nullptr ? p.x_rows[m_load] : m_load;
      x_src = x + src * p.x_stride + c_k;
    }
    auto load = [&](int stage, int k0) {
      const bool in_k = k0 + c_k < p.k;
      cp_async_16(smem_addr(&s_a[stage][c_row][c_k]), x_src != nullptr && in_k ? x_src + k0 : x,
                  x_src != nullptr && in_k ? 16 : 0);
      cp_async_16(smem_addr(&s_b[stage][c_row][c_k]), w_src != nullptr && in_k ? w_src + k0 : w,
                  w_src != nullptr && in_k ? 16 : 0);
    };
    const bool active = m0 + wm < end;  // warp-uniform
    float acc[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[j][i] = 0.f;
    }
    if (num_k > 0) {
      load(0, 0);
      cp_async_commit();
    }
    for (int kt = 0; kt < num_k; ++kt) {
      const int stage = kt & 1;
      if (kt + 1 < num_k) {
        load(stage ^ 1, (kt + 1) * kTileK);
        cp_async_commit();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      if (active) {
#pragma unroll
        for (int kk = 0; kk < kTileK; kk += 16) {
          uint32_t a[4];
          ldmatrix_x4(
              a, smem_addr(
                     &s_a[stage][wm + (lane & 7) + ((lane >> 3) & 1) * 8][kk + (lane >> 4) * 8]));
#pragma unroll
          for (int nn = 0; nn < 2; ++nn) {
            uint32_t b[4];
            ldmatrix_x4(b, smem_addr(&s_b[stage][wn + nn * 16 + (lane & 7) + (lane >> 4) * 8]
                                         [kk + ((lane >> 3) & 1) * 8]));
            mma_bf16_16816(acc[2 * nn], a, b[0], b[1]);
            mma_bf16_16816(acc[2 * nn + 1], a, b[2], b[3]);
          }
        }
      }
      __syncthreads();  // the next iteration's copy overwrites this stage
    }
    if (!active) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + wn + j * 8 + 2 * t_col;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = m0 + wm + g_row + 8 * h;
        if (row >= end) continue;
        T* out = y + static_cast<int64_t>(row) * p.y_stride;
        if (n < p.n) out[n] = from_f<T>(acc[j][2 * h]);
        if (n + 1 < p.n) out[n + 1] = from_f<T>(acc[j][2 * h + 1]);
      }
    }
  }
}

template <typename T>
__global__ void moe_combine_kernel(MoeCombineParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const T* y = static_cast<const T*>(p.y);
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(t) * p.hidden;
  for (int d = threadIdx.x; d < p.hidden; d += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < p.top_k; ++j) {
      const int64_t i = static_cast<int64_t>(t) * p.top_k + j;
      acc += p.topk_weights[i] * to_f(y[static_cast<int64_t>(p.slot_row[i]) * p.hidden + d]);
    }
    out[d] = from_f<T>(acc);
  }
}

}  // namespace

void moe_route(const MoeRouteParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_CHECK(p.num_experts > 0 && p.num_experts <= kMoeMaxExperts && p.top_k > 0 &&
             p.top_k <= kMoeMaxTopK && p.top_k <= p.num_experts)
      << "moe_route: " << p.num_experts << " experts, top " << p.top_k << " (at most "
      << kMoeMaxExperts << " experts, top " << kMoeMaxTopK << ")";
  constexpr int kThreads = 128;
  launch(moe_route_kernel, dim3((p.num_tokens + kThreads - 1) / kThreads), dim3(kThreads), 0, dev,
         stream, p);
}

void moe_permute(const MoePermuteParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  KITE_CHECK(p.num_experts > 0 && p.num_experts <= kMoeMaxExperts)
      << "moe_permute: " << p.num_experts << " experts";
  launch(moe_permute_kernel, dim3(1), dim3(kPermuteThreads), 0, dev, stream, p);
}

bool moe_gemm_uses_tensor_cores(const MoeGemmParams& p, const DeviceContext& dev) {
  const bool want = p.path == MoeGemmPath::kTensorCore ||
                    (p.path == MoeGemmPath::kDefault && dev.moe_tensor_cores());
  return want && p.dtype == DType::kBF16 && p.k % 8 == 0 && p.x_stride % 8 == 0 &&
         reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
}

void moe_grouped_gemm(const MoeGemmParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_experts == 0 || p.n == 0) return;
  const dim3 grid((p.n + kTileN - 1) / kTileN, p.num_experts), block(kGemmThreads);
  if (moe_gemm_uses_tensor_cores(p, dev)) {
    launch(moe_grouped_gemm_tc_kernel, grid, block, 0, dev, stream, p);
    return;
  }
  KITE_DISPATCH_DTYPE("moe_grouped_gemm", p.dtype, ElementwiseDTypes, T,
                      { launch(moe_grouped_gemm_kernel<T>, grid, block, 0, dev, stream, p); });
}

void moe_combine(const MoeCombineParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_DISPATCH_DTYPE("moe_combine", p.dtype, ElementwiseDTypes, T, {
    launch(moe_combine_kernel<T>, dim3(p.num_tokens), dim3(128), 0, dev, stream, p);
  });
}

}  // namespace kite::cuda
