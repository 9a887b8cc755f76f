// The explicit fusion step: rewrites a graph's op list so that a linear takes over its
// neighbours — what a backend with fused kernels (the CUDA GEMV's norm prologue and residual /
// RoPE+KV-write / SiLU·mul epilogues) runs instead of the separate ops. The model definition
// stays the one description of the forward; a fused list computes the same function.
//
//   residual_epilogue  linear -> D, rms_norm(R += D) becomes linear -> R (= R + product) and
//                      rms_norm(R) — when D has no other reader and R is untouched in between
//   norm_prologue      rms_norm(R) -> X, linear(X) becomes linear(R, prologue_norm) — when X
//                      has no other reader, the norm adds no delta and gathers no rows
//   rope_epilogue      linear -> QKV, rope_kv_write(QKV) without q/k norms becomes one linear
//   silu_epilogue      linear -> GU, silu_mul(GU) -> A becomes linear -> A (scratch = GU)
#pragma once

#include <vector>

#include "models/model_graph.h"

namespace kite {

struct FusionOptions {
  bool residual_epilogue = false;
  bool norm_prologue = false;
  bool rope_epilogue = false;
  bool silu_epilogue = false;
};

// The rewritten op list (g.ops fused as `options` allow).
std::vector<Op> fuse_ops(const ModelGraph& g, const FusionOptions& options);

// The value the LM head reads in `ops` (the final norm's output: what pooling returns), or
// kNoValue where the final norm is the LM head's prologue (norm_prologue fused it away).
ValueId lm_head_input(const ModelGraph& g, const std::vector<Op>& ops);

}  // namespace kite
