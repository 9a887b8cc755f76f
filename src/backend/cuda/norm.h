// RMSNorm, optionally fused with the residual add and with a row gather.
//
// dtype bf16: with x = residual[src] (+ delta[src] when delta != nullptr), rounded to bf16, the
// output row is
//   out = bf16(weight * bf16(x * rsqrt(mean(x^2) + eps)))
// which is how Hugging Face's LlamaRMSNorm rounds. dtype f32 (the float32 compute mode): every
// tensor is F32 and nothing is rounded: out = x * (1 / sqrt(mean(x^2) + eps)) * weight, the sum of
// squares accumulated with fmaf, the CPU backend's arithmetic. src =
// row_indices[i] when row_indices is given, else i. The residual is updated in place (residual[i] =
// x) only when delta is given and row_indices is not.
//
// With fp8.q set (bf16 only): the kernel also writes the FP8 E4M3 copy of each output row and
// its scales (per row, or per 128 columns, fp8_quant.h's Fp8Output) — bit for bit what
// quantize_fp8 writes for `out` — for an FP8 W8A8 linear that reads the norm's output. `out` is
// still written. The FP8 row index is the output row i.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/fp8_quant.h"
#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct RmsNormParams {
  void* residual = nullptr;              // [*, hidden] of dtype, row stride `hidden`
  const void* delta = nullptr;           // nullptr or [*, hidden] of dtype
  const int32_t* row_indices = nullptr;  // nullptr or [num_rows]
  const void* weight = nullptr;          // [hidden] of dtype
  void* out = nullptr;                   // [num_rows, hidden] of dtype
  int num_rows = 0;
  int hidden = 0;
  float eps = 1e-6f;
  DType dtype = DType::kBF16;  // ElementwiseDTypes (kernel_support.h)
  Fp8Output fp8{};             // optional FP8 copy of `out` (bf16 only)
};

void rms_norm(const RmsNormParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
