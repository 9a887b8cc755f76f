// Gated activations over gate_up = [num_tokens, 2 * inter] (gate columns first, then up), act =
// SiLU (silu_mul) or tanh-approximated GELU (gelu_tanh_mul, Gemma's GeGLU:
// 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))):
//   bf16: out[t, i] = bf16(bf16(act(gate[t, i])) * up[t, i]), the rounding of a bf16 PyTorch
//         `act_fn(gate_proj(x)) * up_proj(x)`;
//   f32 (the float32 compute mode): act(g) * u unrounded, the CPU backend's arithmetic.
// With fp8.q set (bf16 only): the kernel also writes the FP8 E4M3 copy of each output row and its
// scales (per row, or per 128 columns, fp8_quant.h's Fp8Output) — bit for bit what quantize_fp8
// writes for `out` — for an FP8 W8A8 down projection. `out` is still written. One thread block
// per token then (the row's amax is a reduction over the row); without it a token's row is
// spread over several blocks.
// And soft-capping (Gemma 2's final logits): x = cap * tanh(x / cap) over F32 values.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/fp8_quant.h"
#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct SiluMulParams {
  const void* gate_up = nullptr;  // [num_tokens, 2 * inter] of dtype
  void* out = nullptr;            // [num_tokens, inter] of dtype
  int num_tokens = 0;
  int inter = 0;
  DType dtype = DType::kBF16;  // ElementwiseDTypes (kernel_support.h)
  Fp8Output fp8{};             // optional FP8 copy of `out` (bf16 only)
};

void silu_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream);
void gelu_tanh_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream);

// x[i] = cap * tanh(x[i] / cap) for i in [0, n), in place, F32. REQUIRES: cap > 0.
void softcap_inplace(float* x, int64_t n, float cap, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
