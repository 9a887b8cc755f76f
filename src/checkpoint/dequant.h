// Dequantisation of GGUF block-quantized weights (and conversion of F16/BF16) to F32.
//
// Formats follow ggml (ggml-common.h / the `gguf` Python package's reference dequantisers):
//   Q8_0  32 values: f16 d, int8 q[32];                      x = d * q
//   Q4_0  32 values: f16 d, u8 qs[16];                       x = d * (nibble - 8), low nibbles
//                                                            are values 0-15, high 16-31
//   Q4_1  32 values: f16 d, f16 m, u8 qs[16];                x = d * nibble + m
//   Q4_K  256 values: f16 d, f16 dmin, u8 scales[12] (8 x 6-bit scale/min), u8 qs[128]
//                                                            x = d*sc * nibble - dmin*m
//   Q5_K  as Q4_K plus u8 qh[32] (the fifth bit)             x = d*sc * q5 - dmin*m
//   Q6_K  256 values: u8 ql[128], u8 qh[64], int8 scales[16], f16 d
//                                                            x = d*scale * (q6 - 32)
// Arithmetic is F32 in the reference's order, so results are bit-identical to it.
#pragma once

#include <cstdint>
#include <vector>

#include "checkpoint/config.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "kite/status.h"

namespace kite {

// True for the dtypes dequantize_row handles: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
// Q6_K.
bool can_dequantize(DType dtype);

// Writes n values decoded from `src` (which starts on a block boundary) to dst.
// REQUIRES: can_dequantize(dtype), n % block_elems(dtype) == 0.
void dequantize_row(DType dtype, const void* src, float* dst, int64_t n);

// The whole tensor as F32 (row-major, same shape). kUnimplemented for other dtypes;
// REQUIRES: contiguous.
Result<std::vector<float>> dequantize_to_f32(const TensorView& t);

// An FP8 E4M3 weight [rows, cols] times its dequantization scale (F32 or BF16): one scale
// ([1] or a 0-d tensor) for kFp8PerTensor, [rows, 1] for kFp8PerChannel, [ceil(rows/block_rows),
// ceil(cols/block_cols)] for kFp8Block (HF's weight_scale_inv, despite its name, multiplies).
// value = float(fp8) * scale, one F32 rounding — what the checkpoint's writers mean by it.
// kInvalidArgument for a weight or scale of another dtype or shape.
Result<std::vector<float>> dequantize_fp8(const TensorView& weight, const TensorView& scale,
                                          QuantScheme scheme, int64_t block_rows,
                                          int64_t block_cols);

// Per-channel FP8 quantization of an F32 matrix [rows, cols] (--quantization fp8 on a BF16
// checkpoint, as vLLM does it): scale[r] = max|w[r, :]| / 448 (1 for an all-zero row),
// q[r, c] = fp8(w[r, c] / scale[r]) rounded to nearest even, saturating.
void quantize_fp8_rows(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale);

}  // namespace kite
