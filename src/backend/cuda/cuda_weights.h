// The model's weights on the device: every declared weight of the model graph
// (models/model_graph.h) in one cudaMalloc arena, BF16 (or F32 in the float32 compute mode), its
// checkpoint parts stacked into one row-major matrix ([q; k; v], [gate; up]) with the parts'
// biases stacked the same way. A tensor two weights share (tied embeddings) is stored once.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "core/tensor.h"
#include "kite/status.h"
#include "models/model_graph.h"
#include "models/model_weights.h"

namespace kite::cuda {

class DeviceContext;

// Host tensors by Hugging Face name (e.g. "model.layers.0.self_attn.q_proj.weight"): a weight
// store behind a function (tests build one from a map). Returns kNotFound for a missing name.
using WeightLookup = std::function<Result<TensorView>(std::string_view name)>;

struct DeviceWeight {
  const void* data = nullptr;  // [rows, cols] (vectors: [rows]) in `dtype`
  const void* bias = nullptr;  // nullptr or [rows] in the compute dtype
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kBF16;  // the compute dtype, or kF8E4M3 for FP8 linears
  // FP8: F32 dequantization scales, [rows] (scale_block 0: per-tensor and per-channel
  // checkpoints, --quantization fp8) or [ceil(rows/128), ceil(cols/128)] (scale_block 128).
  const float* scale = nullptr;
  int scale_block = 0;
  bool present() const { return data != nullptr; }
  bool fp8() const { return dtype == DType::kF8E4M3; }
};

struct DeviceWeights {
  DeviceBuffer arena;
  std::vector<DeviceWeight> weights;     // parallel to ModelGraph::weights
  std::vector<float> rope_freq_factors;  // the graph's rope_freqs weight (host F32), else empty
  size_t bytes = 0;
  DType dtype = DType::kBF16;  // of every tensor in the arena

  const DeviceWeight& operator[](WeightId id) const { return weights[static_cast<size_t>(id)]; }
};

// Copies the bound weights to the current device through pinned staging buffers on `stream`,
// converting F32/F16/BF16 and dequantizing GGUF block types (checkpoint/dequant.h) to `dtype`
// (kBF16 or kF32). FP8 checkpoint linears stay FP8 (their bytes copied, scales made F32 and
// per row or per block, stacked like the parts). With `fp8_online` (--quantization fp8) every
// linear but the LM head is quantized per row on the device after upload (quantize_fp8).
// Errors: kUnimplemented for a dtype nothing converts or FP8 in the float32 mode,
// kResourceExhausted when the device is full.
Result<DeviceWeights> load_device_weights(const ModelGraph& graph, const ModelWeights& weights,
                                          DType dtype, bool fp8_online, const DeviceContext& dev,
                                          cudaStream_t stream);

}  // namespace kite::cuda
