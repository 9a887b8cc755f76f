// Skinny GEMM for the decode path (M <= kGemvMaxM rows): y = x W^T with W [N, K] row-major bf16
// or FP8 E4M3 with scales,
// streaming W once at close to the memory bandwidth, with the decode step's neighbours fused in.
// What it is instantiated for (bf16 inputs, bf16/f32 outputs, m, k alignment) is in the shapes
// table, kernel_support.h.
//
// Each CTA of 256 threads computes kGemvRows = 4 weight rows: the K dimension is spread over all
// threads (16-byte vectors), partial sums are reduced through shared memory.
//
// Prologue (norm_weight != nullptr): x rows are RMS-normalized on the fly, as rms_norm() would:
//   x'[m] = bf16(norm_weight * bf16(x[m] * rsqrt(mean(x[m]^2) + norm_eps)))
// Epilogues (acc = fp32 dot product; bf16 outputs):
//   kNone:    y = bf16(acc + bias)                       (out_dtype f32: y = acc + bias)
//             with residual: y = bf16(residual + bf16(acc)) (residual may alias y)
//   kSiluMul: W = [gate; up], N = 2 I: y[m, i] = bf16(bf16(silu(bf16(g))) * bf16(u)), I columns
//   kRopeKv:  W = fused [q; k; v] of `rope` heads: each CTA takes two rotate-half pairs (rows
//             i and i + head_dim/2 of one head), adds the bias, rounds to bf16, rotates q and k
//             exactly as rope_kv_write() does, writes q/k/v to y ([m, (nq + 2 nkv) head_dim]) and
//             k/v into the paged cache. Not for models with q/k norms.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/kernel_support.h"
#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

enum class GemvEpilogue { kNone, kSiluMul, kRopeKv };

struct GemvRope {
  const int32_t* positions = nullptr;     // [m]
  const int32_t* slot_mapping = nullptr;  // [m]; -1 = no cache write
  const float* inv_freq = nullptr;        // [head_dim / 2]
  void* k_cache = nullptr;                // [num_blocks, num_kv_heads, block_size, head_dim]
  void* v_cache = nullptr;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;
  bool kv_fp8 = false;  // E4M3 caches: the bf16 value v stored as e4m3(v / k_scale or v_scale)
  float k_scale = 1.f;
  float v_scale = 1.f;
};

struct GemvParams {
  const void* x = nullptr;     // [m, k] bf16, row stride x_stride
  const void* w = nullptr;     // [n, k] in w_dtype
  const void* bias = nullptr;  // nullptr or [n] bf16 (kNone, kRopeKv)
  void* y = nullptr;           // [m, n] (kSiluMul: [m, n / 2]), row stride y_stride
  int m = 0, n = 0, k = 0;
  int64_t x_stride = 0;  // elements
  int64_t y_stride = 0;  // elements
  GemvEpilogue epilogue = GemvEpilogue::kNone;
  DType dtype = DType::kBF16;         // x, bias, norm_weight, residual (GemvDTypes)
  // Weights: bf16 (dtype), or FP8 E4M3 read one byte per weight and dequantized in registers
  // (w = fp8 * scale, then the same FP32 dot product): w_scale is [n] per-row scales
  // (w_scale_block 0) or [ceil(n/128), ceil(k/128)] scales of 128x128 blocks (w_scale_block 128).
  DType w_dtype = DType::kBF16;       // GemvWeightDTypes
  const float* w_scale = nullptr;
  int w_scale_block = 0;
  DType out_dtype = DType::kBF16;     // y: GemvOutDTypes for kNone, bf16 for the others
  const void* norm_weight = nullptr;  // [k] bf16: RMS-normalize x first
  float norm_eps = 1e-6f;
  const void* residual = nullptr;  // kNone, bf16 output: [m, n] with row stride y_stride
  GemvRope rope;                   // kRopeKv
};

// Whether gemv() handles these arguments (the dtypes, m in [1, kGemvMaxM], k % kGemvKAlign == 0,
// 16-byte aligned x/w rows, the epilogue's constraints).
bool gemv_supported(const GemvParams& p);

// REQUIRES: gemv_supported(p).
void gemv(const GemvParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
