#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/gemv.h"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRows = 4;  // weight rows per CTA

// Weights are read exactly once: keep them out of L1.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

template <int M, typename OutT, bool kGated>
__global__ void __launch_bounds__(kThreads) gemv_kernel(GemvParams p) {
  constexpr int kUnroll = M <= 4 ? 2 : 1;
  __shared__ float red[kThreads / 32][M * kRows];

  const int nvec = p.k / 8;
  const int half = p.n / 2;
  int row[kRows];
  bool ok[kRows];
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
    if constexpr (kGated) {
      const int base = blockIdx.x * (kRows / 2);
      const int jj = j % (kRows / 2);
      ok[j] = base + jj < half;
      row[j] = (j < kRows / 2 ? 0 : half) + base + jj;
    } else {
      row[j] = blockIdx.x * kRows + j;
      ok[j] = row[j] < p.n;
    }
    if (!ok[j]) row[j] = 0;
  }
  const uint4* w = static_cast<const uint4*>(p.w);
  const uint4* x = static_cast<const uint4*>(p.x);
  const int64_t xs = p.x_stride / 8;

  float acc[M][kRows];
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) acc[mi][j] = 0.f;
  }

  pdl_launch_dependents();
  // The first weights do not depend on earlier kernels: start streaming them before waiting.
  uint4 wv[kUnroll][kRows];
  auto load_w = [&](int v0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = v0 + u * kThreads;
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        wv[u][j] = v < nvec ? load_stream(w + static_cast<int64_t>(row[j]) * nvec + v)
                            : make_uint4(0, 0, 0, 0);
      }
    }
  };
  load_w(threadIdx.x);
  pdl_wait();

  for (int v0 = threadIdx.x; v0 < nvec; v0 += kUnroll * kThreads) {
    uint4 xv[kUnroll][M];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = v0 + u * kThreads;
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        xv[u][mi] = v < nvec ? __ldg(x + mi * xs + v) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float wf[kRows][8];
#pragma unroll
      for (int j = 0; j < kRows; ++j) unpack_bf16x8(wv[u][j], wf[j]);
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        float xf[8];
        unpack_bf16x8(xv[u][mi], xf);
#pragma unroll
        for (int j = 0; j < kRows; ++j) {
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[mi][j] = fmaf(wf[j][e], xf[e], acc[mi][j]);
        }
      }
    }
    if (v0 + kUnroll * kThreads < nvec) load_w(v0 + kUnroll * kThreads);
  }

  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const float v = warp_sum(acc[mi][j]);
      if (lane == 0) red[warp][mi * kRows + j] = v;
    }
  }
  __syncthreads();
  if constexpr (kGated) {
    if (threadIdx.x < M * (kRows / 2)) {
      const int mi = threadIdx.x / (kRows / 2);
      const int jj = threadIdx.x % (kRows / 2);
      if (ok[jj]) {
        float g = 0.f, u = 0.f;
#pragma unroll
        for (int wi = 0; wi < kThreads / 32; ++wi) {
          g += red[wi][mi * kRows + jj];
          u += red[wi][mi * kRows + kRows / 2 + jj];
        }
        const float v = silu_mul_bf16(round_bf16(g), round_bf16(u));
        static_cast<__nv_bfloat16*>(p.y)[mi * p.y_stride + blockIdx.x * (kRows / 2) + jj] =
            __float2bfloat16_rn(v);
      }
    }
  } else {
    if (threadIdx.x < M * kRows) {
      const int mi = threadIdx.x / kRows;
      const int j = threadIdx.x % kRows;
      if (ok[j]) {
        float v = 0.f;
#pragma unroll
        for (int wi = 0; wi < kThreads / 32; ++wi) v += red[wi][mi * kRows + j];
        const int n = blockIdx.x * kRows + j;
        if (p.bias != nullptr) v += __bfloat162float(static_cast<const __nv_bfloat16*>(p.bias)[n]);
        if constexpr (sizeof(OutT) == 4) {
          static_cast<float*>(p.y)[mi * p.y_stride + n] = v;
        } else {
          static_cast<__nv_bfloat16*>(p.y)[mi * p.y_stride + n] = __float2bfloat16_rn(v);
        }
      }
    }
  }
}

template <int M>
void launch_m(const GemvParams& p, cudaStream_t stream) {
  if (p.epilogue == GemvEpilogue::kSiluMul) {
    const int half = p.n / 2;
    const int blocks = (half + kRows / 2 - 1) / (kRows / 2);
    launch(gemv_kernel<M, __nv_bfloat16, true>, dim3(blocks), dim3(kThreads), 0, stream, p);
  } else if (p.out_f32) {
    launch(gemv_kernel<M, float, false>, dim3((p.n + kRows - 1) / kRows), dim3(kThreads), 0,
           stream, p);
  } else {
    launch(gemv_kernel<M, __nv_bfloat16, false>, dim3((p.n + kRows - 1) / kRows), dim3(kThreads),
           0, stream, p);
  }
}

}  // namespace

bool gemv_supported(const GemvParams& p) {
  if (p.m < 1 || p.m > kGemvMaxM || p.k % 8 != 0 || p.k <= 0 || p.n <= 0) return false;
  if (p.x_stride % 8 != 0) return false;
  if (reinterpret_cast<uintptr_t>(p.x) % 16 != 0 || reinterpret_cast<uintptr_t>(p.w) % 16 != 0) {
    return false;
  }
  if (p.epilogue == GemvEpilogue::kSiluMul && (p.n % 2 != 0 || p.out_f32 || p.bias != nullptr)) {
    return false;
  }
  return true;
}

void gemv(const GemvParams& p, cudaStream_t stream) {
  KITE_CHECK(gemv_supported(p)) << "gemv: unsupported m=" << p.m << " n=" << p.n << " k=" << p.k;
  switch (p.m) {
    case 1: launch_m<1>(p, stream); break;
    case 2: launch_m<2>(p, stream); break;
    case 3: launch_m<3>(p, stream); break;
    case 4: launch_m<4>(p, stream); break;
    case 5: launch_m<5>(p, stream); break;
    case 6: launch_m<6>(p, stream); break;
    case 7: launch_m<7>(p, stream); break;
    case 8: launch_m<8>(p, stream); break;
    default: KITE_CHECK(false) << "gemv: m=" << p.m;
  }
}

}  // namespace kite::cuda
