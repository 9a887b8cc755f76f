#include "backend/cpu/cpu_weights.h"

#include "checkpoint/dequant.h"

namespace kite::cpu {

Result<std::vector<CpuWeight>> make_cpu_weights(const ModelWeights& weights, bool fp8_online) {
  std::vector<CpuWeight> out(weights.weights.size());
  for (size_t i = 0; i < weights.weights.size(); ++i) {
    const Weight& w = weights.weights[i];
    CpuWeight& c = out[i];
    if (!w.present()) continue;
    c.present = true;
    // Not the LM head, nor an MoE router (replicated; vLLM keeps both unquantized).
    const bool online = fp8_online && w.decl->kind == WeightKind::kLinear &&
                        w.decl->shard != ShardDim::kVocab &&
                        w.decl->shard != ShardDim::kReplicated && !w.quantized();
    if (w.decl->kind == WeightKind::kVector) {
      KITE_ASSIGN_OR_RETURN(c.vec, dequantize_to_f32(w.parts[0]));
      // Gemma's (1 + w) norms, added in F32 as transformers does.
      for (float& v : c.vec) v += w.decl->vector_offset;
    } else if (w.quantized() || online) {
      for (size_t p = 0; p < w.parts.size(); ++p) {
        const TensorView& part = w.parts[p];
        std::vector<float> f;
        if (w.quantized()) {
          auto d = dequantize_fp8(part, w.scales.weight_scale[p], w.scales.scheme,
                                  w.scales.block_rows, w.scales.block_cols);
          if (!d.ok()) return d.status().with_context(w.decl->parts[p].name);
          f = std::move(*d);
        } else {
          KITE_ASSIGN_OR_RETURN(f, dequantize_to_f32(part));
          const int64_t rows = part.dim(0), cols = part.dim(1);
          std::vector<uint8_t> q(f.size());
          std::vector<float> scale(static_cast<size_t>(rows));
          quantize_fp8_rows(f.data(), rows, cols, q.data(), scale.data());
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t k = 0; k < cols; ++k) {
              const size_t at = static_cast<size_t>(r * cols + k);
              f[at] = fp8e4m3_to_f32(q[at]) * scale[static_cast<size_t>(r)];
            }
          }
        }
        c.owned.push_back(std::move(f));
        c.part_rows.push_back(part.dim(0));
      }
      for (size_t p = 0; p < c.owned.size(); ++p) {
        c.parts.push_back(
            TensorView(c.owned[p].data(), DType::kF32, {c.part_rows[p], w.parts[p].dim(1)}));
      }
    } else {
      c.parts = w.parts;
      for (const TensorView& p : w.parts) c.part_rows.push_back(p.dim(0));
    }
    for (const TensorView& b : w.bias) {
      KITE_ASSIGN_OR_RETURN(std::vector<float> f, dequantize_to_f32(b));
      c.bias.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace kite::cpu
