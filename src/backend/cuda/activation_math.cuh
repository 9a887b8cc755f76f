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

}  // namespace kite::cuda
