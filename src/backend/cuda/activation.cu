#include "backend/cuda/activation.h"
#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"

namespace kite::cuda {

namespace {

template <bool kVec>
__global__ void silu_mul_kernel(SiluMulParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.y;
  const __nv_bfloat16* g =
      static_cast<const __nv_bfloat16*>(p.gate_up) + static_cast<int64_t>(t) * 2 * p.inter;
  const __nv_bfloat16* u = g + p.inter;
  __nv_bfloat16* o = static_cast<__nv_bfloat16*>(p.out) + static_cast<int64_t>(t) * p.inter;
  if constexpr (kVec) {
    const int n = p.inter / 8;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
      float gv[8], uv[8];
      unpack_bf16x8(reinterpret_cast<const uint4*>(g)[i], gv);
      unpack_bf16x8(reinterpret_cast<const uint4*>(u)[i], uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) gv[j] = silu_mul_bf16(gv[j], uv[j]);
      reinterpret_cast<uint4*>(o)[i] = pack_bf16x8(gv);
    }
  } else {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.inter; i += gridDim.x * blockDim.x) {
      o[i] = __float2bfloat16_rn(silu_mul_bf16(__bfloat162float(g[i]), __bfloat162float(u[i])));
    }
  }
}

__global__ void silu_mul_f32_kernel(SiluMulParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.y;
  const float* g = static_cast<const float*>(p.gate_up) + static_cast<int64_t>(t) * 2 * p.inter;
  const float* u = g + p.inter;
  float* o = static_cast<float*>(p.out) + static_cast<int64_t>(t) * p.inter;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.inter; i += gridDim.x * blockDim.x) {
    o[i] = g[i] / (1.f + expf(-g[i])) * u[i];
  }
}

}  // namespace

void silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  if (p.f32) {
    const int blocks_x = (p.inter + 255) / 256;
    launch(silu_mul_f32_kernel, dim3(blocks_x, p.num_tokens), dim3(256), 0, stream, p);
    return;
  }
  const bool vec = p.inter % 8 == 0;
  const int items = vec ? p.inter / 8 : p.inter;
  const int threads = 256;
  const int blocks_x = (items + threads - 1) / threads;
  if (vec) {
    launch(silu_mul_kernel<true>, dim3(blocks_x, p.num_tokens), dim3(threads), 0, stream, p);
  } else {
    launch(silu_mul_kernel<false>, dim3(blocks_x, p.num_tokens), dim3(threads), 0, stream, p);
  }
}

}  // namespace kite::cuda
