// The SiLU-gate arithmetic shared by the activation kernel and the fused GEMV epilogue.
#pragma once

#include <cuda_bf16.h>

namespace kite::cuda {

// g and u are bf16 values held in floats; returns the float of
// bf16(float(bf16(silu(g))) * u) before the final rounding by the caller's store.
__device__ __forceinline__ float silu_mul_bf16(float g, float u) {
  const float s = __bfloat162float(__float2bfloat16_rn(g / (1.f + __expf(-g))));
  return s * u;
}

// gelu_pytorch_tanh(g), in float (the CPU backend's formula).
__device__ __forceinline__ float gelu_tanh(float g) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * g * (1.f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
}

// As silu_mul_bf16 for GeGLU: bf16(gelu_tanh(g)) * u, before the caller's rounding.
__device__ __forceinline__ float gelu_tanh_mul_bf16(float g, float u) {
  return __bfloat162float(__float2bfloat16_rn(gelu_tanh(g))) * u;
}

}  // namespace kite::cuda
