// Device-side helpers shared by the kernels: bf16 vectors, element conversions, warp/block
// reductions, programmatic dependent launch (PDL), and the launch wrapper every launcher uses.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/device_context.h"
#include "backend/cuda/launch.h"

namespace kite::cuda {

constexpr float kLog2e = 1.4426950408889634f;

// Attention logit soft-capping (Gemma 2): a score already multiplied by the softmax scale
// becomes cap * tanh(score / cap), returned in log2 units (the kernels' exp2 domain).
__device__ __forceinline__ float softcap_log2(float score, float cap) {
  return cap * tanhf(score / cap) * kLog2e;
}

// ---- bf16 <-> float over 16-byte vectors (8 values) ------------------------------------------
__device__ __forceinline__ void unpack_bf16x8(const uint4& v, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ uint4 pack_bf16x8(const float (&f)[8]) {
  uint4 v;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return v;
}

__device__ __forceinline__ float round_bf16(float x) {
  return __bfloat162float(__float2bfloat16_rn(x));
}

// Element <-> float for the kernels templated on their element type (bf16 or f32): to_f is exact,
// from_f rounds to nearest even for bf16 and is the identity for f32.
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_f(float x) {
  if constexpr (sizeof(T) == 4) {
    return x;
  } else {
    return __float2bfloat16_rn(x);
  }
}

__device__ __forceinline__ uint32_t pack_bf16x2(float a, float b) {
  __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

// ---- reductions ------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// A reduction over the whole block; every thread receives it. warp_op reduces over a warp
// (warp_sum, warp_max); identity is its neutral element. `scratch` holds >= 32 floats.
// REQUIRES: blockDim.x is a multiple of 32; every thread of the block calls it.
template <typename WarpOp>
__device__ __forceinline__ float block_reduce(float v, float* scratch, WarpOp warp_op,
                                              float identity) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  v = warp_op(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_op(lane < num_warps ? scratch[lane] : identity);
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  return block_reduce(v, scratch, [](float x) { return warp_sum(x); }, 0.f);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  return block_reduce(v, scratch, [](float x) { return warp_max(x); }, -INFINITY);
}

// ---- programmatic dependent launch (sm_90+) -----------------------------------------------------
// A kernel launched with PDL may start while the previous kernel of the stream still runs.
// pdl_wait() blocks until that kernel has finished and its writes are visible: call it before
// the first read of anything an earlier kernel wrote and before the first global write.
// Reading weights (never written on the step path) may happen before it.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel of the stream start launching (its pdl_wait still waits for us).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Launches `kernel` on `stream` (a stream of `dev`'s device, which is current), with the PDL
// attribute when dev.pdl(). Aborts when the launch is rejected (a bad configuration is a bug in
// the launcher, never user input).
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
            const DeviceContext& dev, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem_bytes;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = dev.pdl() ? 1 : 0;
  check_launch(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), grid, block,
               smem_bytes);
}

}  // namespace kite::cuda
