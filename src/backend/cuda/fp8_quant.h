// FP8 E4M3 conversions around the FP8 linear layers:
//  - quantize_fp8: dynamic quantization of bf16 activations for the FP8 GEMM, per token
//    (group 0: scale[t] = max|x[t, :]| / 448) or per token and 128-column group (group 128:
//    scale[t, g] over x[t, 128 g .. 128 g + 127], the block-scaled checkpoints' activations);
//    q = fp8(x / scale), round to nearest even, saturating; an all-zero group gets scale 1.
//    The same rule as checkpoint/dequant.h's quantize_fp8_rows, so the CPU emulation in the
//    tests reproduces it. The rule lives in fp8_quant.cuh; RMSNorm (norm.h) and the gated
//    activations (activation.h) apply it to the bf16 rows they write when given an Fp8Output,
//    so that their FP8 copy equals quantize_fp8 of their bf16 output bit for bit.
//  - dequantize_fp8_weight: an FP8 weight to bf16 (bf16(fp8 * scale)), the GEMM path when the
//    device has no scaled FP8 GEMM for the shape.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kite::cuda {

class DeviceContext;

constexpr int kFp8Group = 128;  // column group of block-scaled activations and weights

// Where E4M3 bytes and their scales go: quantize_fp8's output, and the FP8 copy a producing
// kernel writes next to its bf16 output (RmsNormParams::fp8, SiluMulParams::fp8), which then
// equals quantize_fp8 of that output bit for bit. q == nullptr: no FP8 copy.
struct Fp8Output {
  uint8_t* q = nullptr;  // [rows, cols] E4M3, row stride q_stride (bytes)
  int64_t q_stride = 0;
  float* scale = nullptr;  // [rows] (group 0) or per group, laid out as group_major says
  int group = 0;           // 0: one scale per row; kFp8Group: per 128 columns
  // Group scales stored [ceil(cols / 128), rows] (scale[g * rows + r], the token index
  // contiguous): the layout cuBLASLt's VEC128_32F operand scales take ("outer-dim-major");
  // false: [rows, ceil(cols / 128)].
  bool group_major = false;
  bool enabled() const { return q != nullptr; }
};

struct QuantizeFp8Params {
  const void* x = nullptr;  // [rows, cols] bf16, row stride x_stride
  int64_t x_stride = 0;     // elements
  int rows = 0, cols = 0;
  Fp8Output out;
};

void quantize_fp8(const QuantizeFp8Params& p, const DeviceContext& dev, cudaStream_t stream);

struct DequantizeFp8Params {
  const uint8_t* w = nullptr;    // [rows, cols] E4M3
  const float* scale = nullptr;  // [rows] (block 0) or [ceil(rows/128), ceil(cols/128)]
  int block = 0;                 // 0 or kFp8Group
  int rows = 0, cols = 0;
  void* out = nullptr;  // [rows, cols] bf16
};

void dequantize_fp8_weight(const DequantizeFp8Params& p, const DeviceContext& dev,
                           cudaStream_t stream);

}  // namespace kite::cuda
