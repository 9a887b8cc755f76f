// Skinny GEMM for the decode path (M <= kGemvMaxM rows): y = x W^T with W [N, K] row-major bf16,
// streaming W once at close to the memory bandwidth.
//
// Each CTA of 256 threads computes kGemvRows consecutive output features: the K dimension is
// spread over all threads (16-byte vectors), partial sums are reduced through shared memory.
// Epilogues: bias add (bf16 out = bf16(acc + bias)); SiLU gate (W = [gate; up] with N = 2 * I,
// y[m, i] = bf16(bf16(silu(bf16(g))) * bf16(u)), I columns); f32 output (for logits).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kite::cuda {

constexpr int kGemvMaxM = 8;

enum class GemvEpilogue { kNone, kSiluMul };

struct GemvParams {
  const void* x = nullptr;     // [m, k] bf16, row stride x_stride
  const void* w = nullptr;     // [n, k] bf16
  const void* bias = nullptr;  // nullptr or [n] bf16 (kNone only)
  void* y = nullptr;           // [m, n] (kSiluMul: [m, n / 2]), row stride y_stride
  int m = 0, n = 0, k = 0;
  int64_t x_stride = 0;  // elements
  int64_t y_stride = 0;  // elements
  GemvEpilogue epilogue = GemvEpilogue::kNone;
  bool out_f32 = false;  // kNone only
};

// Whether gemv() handles these arguments (m in [1, kGemvMaxM], k % 8 == 0, 16-byte aligned x/w
// rows, n even for kSiluMul).
bool gemv_supported(const GemvParams& p);

// REQUIRES: gemv_supported(p).
void gemv(const GemvParams& p, cudaStream_t stream);

}  // namespace kite::cuda
