// SiLU-gated activation: out[t, i] = bf16(bf16(silu(gate[t, i])) * up[t, i]) with
// gate_up = [num_tokens, 2 * inter] (gate columns first, then up), the rounding of a bf16
// PyTorch `act_fn(gate_proj(x)) * up_proj(x)`. With `f32`: F32 tensors, g / (1 + exp(-g)) * u
// unrounded (the CPU backend's arithmetic).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kite::cuda {

struct SiluMulParams {
  const void* gate_up = nullptr;  // [num_tokens, 2 * inter] bf16
  void* out = nullptr;            // [num_tokens, inter] bf16
  int num_tokens = 0;
  int inter = 0;
  bool f32 = false;
};

void silu_mul(const SiluMulParams& p, cudaStream_t stream);

}  // namespace kite::cuda
