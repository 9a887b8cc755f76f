// SiLU-gated activation over gate_up = [num_tokens, 2 * inter] (gate columns first, then up):
//   bf16: out[t, i] = bf16(bf16(silu(gate[t, i])) * up[t, i]), the rounding of a bf16 PyTorch
//         `act_fn(gate_proj(x)) * up_proj(x)`;
//   f32 (the float32 compute mode): g / (1 + exp(-g)) * u unrounded, the CPU backend's
//         arithmetic.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct SiluMulParams {
  const void* gate_up = nullptr;  // [num_tokens, 2 * inter] of dtype
  void* out = nullptr;            // [num_tokens, inter] of dtype
  int num_tokens = 0;
  int inter = 0;
  DType dtype = DType::kBF16;  // ElementwiseDTypes (kernel_support.h)
};

void silu_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
