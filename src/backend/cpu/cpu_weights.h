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
  std::vector<TensorView> parts;         // matrices: [rows_i, cols] row blocks
  std::vector<int64_t> part_rows;        // rows of each part
  std::vector<float> vec;                // vectors: [n] F32
  std::vector<std::vector<float>> bias;  // empty, or one F32 [rows_i] per part
  bool present = false;
};

// One CpuWeight per declared weight (parallel to ModelGraph::weights). kUnimplemented for
// quantized (FP8) linear layers, which the CPU backend does not compute yet.
Result<std::vector<CpuWeight>> make_cpu_weights(const ModelWeights& weights);

}  // namespace kite::cpu
