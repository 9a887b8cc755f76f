// The KV cache's element type (EngineConfig::kv_cache_dtype) and, for an FP8 cache, the
// per-layer K and V scales a checkpoint may carry.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "checkpoint/weights.h"
#include "kite/status.h"

namespace kite {

enum class KvCacheDtype {
  kKvCacheDtypeAuto,      // the backend's compute dtype
  kKvCacheDtypeFloat32,   // "float32"
  kKvCacheDtypeBFloat16,  // "bfloat16"
  kKvCacheDtypeFp8E4M3,   // "fp8" or "fp8_e4m3" (vLLM's spellings): E4M3 bytes + layer scales
};

// "auto", "float32", "bfloat16", "fp8", "fp8_e4m3". kUnimplemented for "fp8_e5m2" (vLLM has
// it; kite does not), kInvalidArgument for anything else; both name the supported values.
Result<KvCacheDtype> parse_kv_cache_dtype(std::string_view name);

// One float per layer: a value x is cached as e4m3(x / k[layer]) and read as byte * k[layer]
// (likewise v). vLLM's definition and defaults.
struct KvCacheScales {
  std::vector<float> k = {};    // [num_layers]
  std::vector<float> v = {};    // [num_layers]
  int num_from_checkpoint = 0;  // scales (K and V counted apart) the checkpoint gave
};

// The scales of layers [0, num_layers) from the checkpoint's tensors, under the names vLLM
// reads (P = model.layers.N.self_attn, or model.language_model.layers.N.self_attn):
//   P.k_scale / P.v_scale                 compressed-tensors kv_cache_scheme (llm-compressor)
//   P.k_proj.output_scale / P.v_proj.output_scale   older compressed-tensors checkpoints
//   P.k_proj.k_scale / P.v_proj.v_scale   ModelOpt
//   P.qkv_proj.k_scale / P.qkv_proj.v_scale
//   P.kv_scale                            deprecated: one scale for K and V
// the first present in that order; 1.0 where none is (vLLM's default) — unless config.json's
// quantization_config declares a kv_cache_scheme (QuantizationConfig::kv_cache_scales): then
// every layer's K and V scale must be there, and a missing one is kNotFound naming
// P.k_scale / P.v_scale. A scale must hold one
// F32/BF16/F16 value (shape [] or [1]) that is finite and > 0; anything else is
// kInvalidArgument naming the tensor.
Result<KvCacheScales> read_kv_cache_scales(const WeightStore& store, int64_t num_layers);

// What a backend's FP8 cache uses: 1.0 for every layer where `s` has no scales (vLLM's
// default), else exactly one K and one V scale per layer (kInvalidArgument naming the counts).
Status complete_kv_cache_scales(KvCacheScales* s, int64_t num_layers);

}  // namespace kite
