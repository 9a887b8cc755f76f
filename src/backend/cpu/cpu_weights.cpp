#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include "checkpoint/dequant.h"

namespace kite::cpu {

Result<std::vector<CpuWeight>> make_cpu_weights(const ModelWeights& weights) {
  std::vector<CpuWeight> out(weights.weights.size());
  for (size_t i = 0; i < weights.weights.size(); ++i) {
    const Weight& w = weights.weights[i];
    CpuWeight& c = out[i];
    if (!w.present()) continue;
    c.present = true;
    if (w.quantized()) {
      return unimplemented(
          fmt::format("{}: {} weights are not supported by the CPU backend yet (run them on CUDA)",
                      w.decl->name, quant_scheme_name(w.scales.scheme)));
    }
    if (w.decl->kind == WeightKind::kVector) {
      KITE_ASSIGN_OR_RETURN(c.vec, dequantize_to_f32(w.parts[0]));
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
