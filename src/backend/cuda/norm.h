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
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

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
};

void rms_norm(const RmsNormParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
