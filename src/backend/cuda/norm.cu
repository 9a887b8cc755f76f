#include "backend/cuda/common.cuh"
#include "backend/cuda/norm.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;

// One block per output row. Pass 1 forms x (and writes it back to the residual when asked) and
// its sum of squares; pass 2 re-reads x (from L1/L2) and normalizes.
template <bool kVec>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_launch_dependents();
  pdl_wait();
  const int row = blockIdx.x;
  const int64_t src = p.row_indices != nullptr ? p.row_indices[row] : row;
  const bool write_back = p.delta != nullptr && p.row_indices == nullptr;
  __nv_bfloat16* res = static_cast<__nv_bfloat16*>(p.residual) + src * p.hidden;
  const __nv_bfloat16* del =
      p.delta != nullptr ? static_cast<const __nv_bfloat16*>(p.delta) + src * p.hidden : nullptr;
  __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.out) + static_cast<int64_t>(row) * p.hidden;
  const __nv_bfloat16* w = static_cast<const __nv_bfloat16*>(p.weight);

  float ss = 0.f;
  if constexpr (kVec) {
    const int n = p.hidden / 8;
    for (int i = threadIdx.x; i < n; i += kThreads) {
      float x[8];
      uint4 rv = reinterpret_cast<const uint4*>(res)[i];
      unpack_bf16x8(rv, x);
      if (del != nullptr) {
        float d[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(del)[i], d);
#pragma unroll
        for (int j = 0; j < 8; ++j) x[j] = round_bf16(x[j] + d[j]);
        if (write_back) reinterpret_cast<uint4*>(res)[i] = pack_bf16x8(x);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += x[j] * x[j];
    }
  } else {
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
      float x = __bfloat162float(res[i]);
      if (del != nullptr) {
        x = round_bf16(x + __bfloat162float(del[i]));
        if (write_back) res[i] = __float2bfloat16_rn(x);
      }
      ss += x * x;
    }
  }
  ss = block_sum(ss, scratch);
  const float r = rsqrtf(ss / static_cast<float>(p.hidden) + p.eps);
  // Pass 2: when the residual was written back, each thread re-reads exactly the elements it
  // wrote, so no barrier is needed between the passes.
  if constexpr (kVec) {
    const int n = p.hidden / 8;
    for (int i = threadIdx.x; i < n; i += kThreads) {
      float x[8], wv[8];
      unpack_bf16x8(reinterpret_cast<const uint4*>(res)[i], x);
      if (del != nullptr && !write_back) {
        float d[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(del)[i], d);
#pragma unroll
        for (int j = 0; j < 8; ++j) x[j] = round_bf16(x[j] + d[j]);
      }
      unpack_bf16x8(reinterpret_cast<const uint4*>(w)[i], wv);
#pragma unroll
      for (int j = 0; j < 8; ++j) x[j] = wv[j] * round_bf16(x[j] * r);
      reinterpret_cast<uint4*>(out)[i] = pack_bf16x8(x);
    }
  } else {
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
      float x = __bfloat162float(res[i]);
      if (del != nullptr && !write_back) x = round_bf16(x + __bfloat162float(del[i]));
      out[i] = __float2bfloat16_rn(__bfloat162float(w[i]) * round_bf16(x * r));
    }
  }
}

// F32 rows, no rounding (the float32 compute mode). Same two passes.
__global__ void __launch_bounds__(kThreads) rms_norm_f32_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_launch_dependents();
  pdl_wait();
  const int row = blockIdx.x;
  const int64_t src = p.row_indices != nullptr ? p.row_indices[row] : row;
  const bool write_back = p.delta != nullptr && p.row_indices == nullptr;
  float* res = static_cast<float*>(p.residual) + src * p.hidden;
  const float* del =
      p.delta != nullptr ? static_cast<const float*>(p.delta) + src * p.hidden : nullptr;
  float* out = static_cast<float*>(p.out) + static_cast<int64_t>(row) * p.hidden;
  const float* w = static_cast<const float*>(p.weight);
  float ss = 0.f;
  for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
    float x = res[i];
    if (del != nullptr) {
      x += del[i];
      if (write_back) res[i] = x;
    }
    ss = fmaf(x, x, ss);
  }
  ss = block_sum(ss, scratch);
  const float r = 1.f / sqrtf(ss / static_cast<float>(p.hidden) + p.eps);
  for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
    float x = res[i];
    if (del != nullptr && !write_back) x += del[i];
    out[i] = x * r * w[i];
  }
}

}  // namespace

void rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  if (p.f32) {
    launch(rms_norm_f32_kernel, dim3(p.num_rows), dim3(kThreads), 0, stream, p);
  } else if (p.hidden % 8 == 0) {
    launch(rms_norm_kernel<true>, dim3(p.num_rows), dim3(kThreads), 0, stream, p);
  } else {
    launch(rms_norm_kernel<false>, dim3(p.num_rows), dim3(kThreads), 0, stream, p);
  }
}

}  // namespace kite::cuda
