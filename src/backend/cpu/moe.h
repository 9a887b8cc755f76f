// The CPU reference of a sparse mixture-of-experts block (models/model_graph.h MoeDecl): router,
// softmax top-k gating, token permutation to experts, per-expert GEMMs over the tokens routed
// to them, weighted combine. Deterministic: a token's output is the same sum whatever the
// other tokens of the step, the routing of the batch or the thread count (cpu::linear computes
// every row alike for any number of rows).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kite::cpu {

// Per token: the top_k experts by softmax(router_logits) (descending; among equal
// probabilities the lower expert index first; a NaN only after every number) and
// their weights: the probabilities, divided by their sum when `renormalize`.
//   router_logits: [n, num_experts]; experts, weights: [n, top_k].
void moe_route(const float* router_logits, int64_t n, int64_t num_experts, int top_k,
               bool renormalize, int32_t* experts, float* weights);

struct MoeExpert {
  std::span<const TensorView> gate_up;  // row blocks of its [gate; up], [2 * inter, hidden] in all
  const TensorView* down = nullptr;     // [hidden, inter]
};

// Buffers reused between calls (grown as needed).
struct MoeScratch {
  std::vector<float> router_logits;  // [n, num_experts]
  std::vector<int32_t> experts;      // [n, top_k]
  std::vector<float> weights;        // [n, top_k]
  std::vector<int64_t> offsets;      // [num_experts + 1]: expert e's rows of the permuted buffers
  std::vector<int32_t> row_token;    // [n * top_k]: the token of each permuted row
  std::vector<int64_t> slot_row;     // [n * top_k]: the permuted row of (token, j)
  std::vector<float> xs, gate_up, act, ys;  // permuted rows: [n*k, hidden], [n*k, 2*inter], ...
};

// out[t] = sum_{j < top_k} w[t, j] * down_e(silu(gate_e(x[t])) * up_e(x[t])), e = experts[t, j],
// summed in j order. x: [n, hidden]; router: the row blocks of [num_experts, hidden];
// experts: [num_experts]; out: [n, hidden] (must not alias x).
void moe(const float* x, int64_t n, int64_t hidden, int64_t inter,
         std::span<const TensorView> router, std::span<const MoeExpert> experts, int top_k,
         bool renormalize, float* out, MoeScratch* scratch, ThreadPool* pool);

}  // namespace kite::cpu
