// Which model definitions the CUDA backend can run: every op of the graph (models/model_graph.h)
// and every variant of an op (soft-capping, scaled embeddings, several RoPEs, ...) must have a
// kernel, else the model is refused at load with kUnimplemented naming the missing feature —
// never run with the feature silently dropped. Plain C++ (no CUDA syntax): the runner factory
// and CudaModelRunner::create call it, and the CPU-only unit tests check it.
#pragma once

#include <string>

#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite::cuda {

inline Status check_graph_support(const ModelGraph& g, const ModelConfig& cfg) {
  auto refuse = [&](const std::string& what) {
    return unimplemented("the CUDA backend cannot run " + cfg.architecture + ": it has no " + what +
                         " (run it with --device cpu)");
  };
  for (const WeightDecl& w : g.weights) {
    if (w.vector_offset != 0.f) return refuse("(1 + w) RMSNorm weights (Gemma)");
  }
  if (g.ropes.size() != 1) return refuse("per-layer RoPE bases (Gemma 3 local/global RoPE)");
  const RopeDecl& r = g.ropes[0];
  if (r.rotary_dim != cfg.head_dim) return refuse("partial rotary embedding");
  if (r.scaling.type == RopeScaling::Type::kLongRope) return refuse("LongRoPE");
  // The CUDA runner computes its RoPE table from the config.
  if (r.theta != cfg.rope_theta || r.scaling.type != cfg.rope_scaling.type) {
    return refuse("RoPE other than the config's rope_theta / rope_scaling");
  }
  for (const Op& op : g.ops) {
    switch (op.kind) {
      case OpKind::kEmbedding:
        if (op.scale != 1.f) return refuse("scaled embeddings (Gemma)");
        break;
      case OpKind::kAttention:
        if (op.softcap != 0.f) return refuse("attention logit soft-capping (Gemma 2)");
        break;
      case OpKind::kGeluTanhMul:
        return refuse("GeGLU (gelu_tanh_mul) MLP kernel (Gemma)");
      case OpKind::kSoftcap:
        return refuse("final logit soft-capping (Gemma 2)");
      case OpKind::kMoe:
        return refuse("mixture-of-experts kernels (router top-k, grouped expert GEMMs)");
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
