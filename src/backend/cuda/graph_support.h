// Which model definitions the CUDA backend can run: every op of the graph (models/model_graph.h)
// and every variant of an op must have a kernel, else the model is refused at load with
// kUnimplemented naming the missing feature — never run with the feature silently dropped.
// Covered: the Llama-like families, Gemma 2/3 ((1 + w) norms folded at load, scaled embeddings,
// GeGLU, attention and final soft-capping, sliding/global layers, per-layer RoPE bases), Phi-3
// (partial rotary, LongRoPE) and the MoE families (moe.h); refused: the limits below. Plain C++ (no
// CUDA syntax): the runner factory and CudaModelRunner::create call it, and the CPU-only unit tests
// check it.
#pragma once

#include <string>

#include "backend/cuda/kernel_support.h"
#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite::cuda {

inline Status check_graph_support(const ModelGraph& g, const ModelConfig& cfg) {
  auto refuse = [&](const std::string& what) {
    return unimplemented("the CUDA backend cannot run " + cfg.architecture + ": it has no " + what +
                         " (run it with --device cpu)");
  };
  for (size_t i = 0; i < g.ropes.size(); ++i) {
    const RopeDecl& r = g.ropes[i];
    if (r.rotary_dim <= 0 || r.rotary_dim > cfg.head_dim || r.rotary_dim % 2 != 0) {
      return refuse("rotary embedding of " + std::to_string(r.rotary_dim) + " dims of " +
                    std::to_string(cfg.head_dim));
    }
    if (r.scaling.type == RopeScaling::Type::kLongRope &&
        (static_cast<int64_t>(r.scaling.short_factor.size()) != r.rotary_dim / 2 ||
         static_cast<int64_t>(r.scaling.long_factor.size()) != r.rotary_dim / 2)) {
      return refuse("LongRoPE factor lists of other than rotary_dim / 2 entries");
    }
  }
  for (const MoeDecl& m : g.moes) {
    const auto experts = static_cast<int>(m.gate_up.size());
    if (experts > kMoeMaxExperts || m.top_k > kMoeMaxTopK || m.top_k > experts) {
      return refuse("MoE kernel for " + std::to_string(experts) + " experts, top " +
                    std::to_string(m.top_k) + " (at most " + std::to_string(kMoeMaxExperts) +
                    " experts, top " + std::to_string(kMoeMaxTopK) + ")");
    }
  }
  for (const Op& op : g.ops) {
    switch (op.kind) {
      case OpKind::kSoftcap:
        if (!g.value(op.out).f32 || op.in != op.out) return refuse("out-of-place soft-capping");
        break;
      case OpKind::kEmbedding:
      case OpKind::kAttention:
      case OpKind::kGeluTanhMul:
      case OpKind::kMoe:
      case OpKind::kRmsNorm:
      case OpKind::kLinear:
      case OpKind::kRopeKvWrite:
      case OpKind::kSiluMul:
        break;
    }
  }
  return ok_status();
}

}  // namespace kite::cuda
