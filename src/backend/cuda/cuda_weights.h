// The model's weights on the device: every tensor BF16 (or F32 in the float32 compute mode) in
// one cudaMalloc arena, with q/k/v and gate/up fused at load into [q; k; v] and [gate; up] row
// blocks.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "core/tensor.h"
#include "kite/status.h"
#include "model/config.h"

namespace kite::cuda {

// Host tensors by Hugging Face name (e.g. "model.layers.0.self_attn.q_proj.weight"): the model
// loader's weight store behind a function. Returns kNotFound for a missing name. The views must
// stay valid until load_device_weights returns.
using WeightLookup = std::function<Result<TensorView>(std::string_view name)>;

struct LayerWeights {
  const void* input_norm = nullptr;  // [hidden]
  const void* qkv = nullptr;         // [(nq + 2 nkv) * head_dim, hidden]
  const void* qkv_bias = nullptr;    // nullptr or [(nq + 2 nkv) * head_dim]
  const void* q_norm = nullptr;      // nullptr or [head_dim]
  const void* k_norm = nullptr;      // nullptr or [head_dim]
  const void* o = nullptr;           // [hidden, nq * head_dim]
  const void* o_bias = nullptr;      // nullptr or [hidden] (Llama configs with attention_bias)
  const void* post_norm = nullptr;   // [hidden]
  const void* gate_up = nullptr;     // [2 * inter, hidden]
  const void* down = nullptr;        // [hidden, inter]
};

struct DeviceWeights {
  DeviceBuffer arena;
  const void* embed = nullptr;  // [vocab, hidden]
  const void* final_norm = nullptr;
  const void* lm_head = nullptr;  // [vocab, hidden]; == embed when tied
  std::vector<LayerWeights> layers;
  std::vector<float> rope_freq_factors;  // GGUF `rope_freqs.weight` (Llama 3.1), else empty
  size_t bytes = 0;
  DType dtype = DType::kBF16;  // of every tensor in the arena
};

// Copies the weights of `cfg` to the current device through pinned staging buffers on
// `stream`, converting F32/F16/BF16 and dequantizing GGUF block types (model/dequant.h) to
// `dtype` (kBF16 or kF32).
// Biases are used wherever the store has them (q/k/v required when cfg.attention_bias).
// Errors: kNotFound naming a missing tensor, kInvalidArgument for a tensor of the wrong shape,
// kUnimplemented for a dtype nothing converts, kResourceExhausted when the device is full.
Result<DeviceWeights> load_device_weights(const ModelConfig& cfg, const WeightLookup& lookup,
                                          DType dtype, cudaStream_t stream);

}  // namespace kite::cuda
