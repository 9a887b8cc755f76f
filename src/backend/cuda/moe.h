// Sparse mixture-of-experts on the device (models/model_graph.h MoeDecl; the CPU reference is
// backend/cpu/moe.h). One MoE block of a step of n tokens, top_k experts per token, is five
// launches whose grids depend on n only, never on the routing — so a captured decode graph stays
// valid whatever the router picks (no host sync):
//   1. router logits = x @ router^T, F32 [n, num_experts]     (the runner's linear: GEMV/cuBLASLt)
//   2. moe_route:   softmax top-k per token (ties: lower expert first), renormalized on request
//   3. moe_permute: a counting sort of the n * top_k (token, j) rows by expert: expert_offsets,
//                   row_token (the token of each permuted row), slot_row (the permuted row of
//                   each (token, j))
//   4. moe_grouped_gemm (twice, SiLU·mul between): every expert's rows times its weight in one
//      launch; gate_up rows read x through row_token (the gather is in the GEMM's loads)
//   5. moe_combine: out[t] = sum_j w[t, j] * y[slot_row[t, j]], summed in j order
// The permutation places a token's rows in any order within its expert (atomics), but every
// row's arithmetic is the same wherever it lands, so the output is deterministic.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/kernel_support.h"
#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct MoeRouteParams {
  const float* router_logits = nullptr;  // [num_tokens, num_experts]
  int32_t* topk_experts = nullptr;       // [num_tokens, top_k], by descending probability
  float* topk_weights = nullptr;         // [num_tokens, top_k]
  int num_tokens = 0;
  int num_experts = 0;
  int top_k = 0;
  bool renormalize = false;  // divide the top_k probabilities by their sum
};

// Per token: p = softmax(logits) (max subtracted, exp in float, the sum in double, as
// cpu::softmax), then top_k times the largest untaken p (a NaN only after every number).
void moe_route(const MoeRouteParams& p, const DeviceContext& dev, cudaStream_t stream);

struct MoePermuteParams {
  const int32_t* topk_experts = nullptr;  // [num_rows] = [num_tokens, top_k]
  int32_t* expert_offsets = nullptr;      // [num_experts + 1]: expert e's permuted rows
  int32_t* row_token = nullptr;           // [num_rows]: token of each permuted row
  int32_t* slot_row = nullptr;            // [num_rows]: permuted row of (token, j)
  int num_rows = 0;
  int num_experts = 0;
  int top_k = 0;
};

// One CTA (a few microseconds at decode sizes).
void moe_permute(const MoePermuteParams& p, const DeviceContext& dev, cudaStream_t stream);

// Which kernel runs the experts with more than 4 rows (those with at most 4 always take the
// GEMV). kDefault: the tensor-core kernel where the DeviceContext says so (KITE_MOE_TC=1),
// else the CUDA-core one. The tensor-core kernel is bf16 only and needs k and x_stride multiples
// of 8 and x 16-byte aligned (the weights too, as the GEMV already assumes); anything else runs
// the CUDA-core kernel whatever the path asks.
enum class MoeGemmPath { kDefault, kCudaCore, kTensorCore };

struct MoeGemmParams {
  const void* x = nullptr;               // rows of dtype; permuted row r reads row x_rows[r] (or r)
  int64_t x_stride = 0;                  // elements
  const int32_t* x_rows = nullptr;       // [num_rows] or nullptr
  const void* const* weights = nullptr;  // [num_experts] device pointers, each [n, k] of dtype
  const int32_t* expert_offsets = nullptr;  // [num_experts + 1]
  void* y = nullptr;                        // [num_rows, y_stride] of dtype
  int64_t y_stride = 0;
  int num_experts = 0;
  int n = 0;
  int k = 0;
  DType dtype = DType::kBF16;  // ElementwiseDTypes: bf16 (F32 accumulation, rounded once) or f32
  MoeGemmPath path = MoeGemmPath::kDefault;
};

// y[r] = x[x_rows[r]] @ W_e^T for every permuted row r of every expert e, one launch: a CTA per
// (64 output columns, expert), so the grid depends on n and the expert count only; an expert with
// at most 4 rows (decode) runs as a GEMV streaming its weight rows in 16-byte vectors (bf16),
// larger ones walk their rows in 64 x 64 output tiles: CUDA-core FMA tiles with the operands
// staged as F32, or (MoeGemmPath above) bf16 tensor-core tiles — mma.sync m16n8k16 with F32
// accumulators over k-steps of 32 double-buffered by cp.async, rows past the expert's end and
// columns past n zero-filled. Both round each output to the dtype once. Experts with no rows exit
// at once. The tensor-core kernel is built and checked against the CPU reference by the GPU
// tests (CudaMoe.GroupedGemm*, the op table's moe_grouped_gemm cases) but has not yet run on a
// GPU, so it stays off by default until measured (docs/gpu-notes.md, "Waiting for a GPU").
void moe_grouped_gemm(const MoeGemmParams& p, const DeviceContext& dev, cudaStream_t stream);

// Whether moe_grouped_gemm(p, dev, ...) runs the tensor-core kernel.
bool moe_gemm_uses_tensor_cores(const MoeGemmParams& p, const DeviceContext& dev);

struct MoeCombineParams {
  const void* y = nullptr;              // [num_tokens * top_k, hidden] permuted expert outputs
  const int32_t* slot_row = nullptr;    // [num_tokens, top_k]
  const float* topk_weights = nullptr;  // [num_tokens, top_k]
  void* out = nullptr;                  // [num_tokens, hidden] of dtype
  int num_tokens = 0;
  int hidden = 0;
  int top_k = 0;
  DType dtype = DType::kBF16;
};

// out[t, d] = sum_j topk_weights[t, j] * y[slot_row[t, j], d], F32 sum in j order, rounded once.
void moe_combine(const MoeCombineParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
