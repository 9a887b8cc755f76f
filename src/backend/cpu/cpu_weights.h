// The CPU backend's form of a model's bound weights (models/model_weights.h): matrices read in
// place from the checkpoint's mappings (any dtype cpu::linear takes), the small vectors (norm
// weights, biases) converted once to F32.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kite/status.h"
#include "models/model_weights.h"

namespace kite::cpu {

struct CpuWeight {
  std::vector<TensorView> parts;          // matrices: [rows_i, cols] row blocks
  std::vector<std::vector<float>> owned;  // F32 storage of parts that are not the checkpoint's
  std::vector<int64_t> part_rows;         // rows of each part
  std::vector<float> vec;                 // vectors: [n] F32, + WeightDecl::vector_offset
  std::vector<std::vector<float>> bias;   // empty, or one F32 [rows_i] per part
  bool present = false;
};

// One CpuWeight per declared weight (parallel to ModelGraph::weights). FP8 linears are
// dequantized to F32 (value = fp8 * scale) once: the CPU runs FP8 checkpoints with their exact
// weights and F32 activations. With `fp8_online` (--quantization fp8) every linear layer but the
// LM head and MoE routers is first quantized per channel (quantize_fp8_rows) and dequantized back,
// so the CPU computes with the weights an FP8 backend would hold.
Result<std::vector<CpuWeight>> make_cpu_weights(const ModelWeights& weights,
                                                bool fp8_online = false);

}  // namespace kite::cpu
