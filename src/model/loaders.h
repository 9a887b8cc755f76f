// Format-specific loaders behind load_model() (weights.h). Each fills a WeightStore's config
// and tensors; load_model() validates the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"
#include "model/config.h"
#include "model/gguf.h"
#include "model/weights.h"

namespace kite {

// A Hugging Face directory: config.json, generation_config.json (optional), safetensors.
Status load_hf_directory(const std::string& dir, WeightStore* store);

// Reads config.json (and generation_config.json when present) of a directory, or a config.json
// given by path, into the store (no weights).
Status load_hf_configs(const std::string& path, WeightStore* store);

// A GGUF file.
Status load_gguf_file(const std::string& path, WeightStore* store);

// Random weights for store->config() (dtype: the config's torch_dtype).
Status make_dummy_weights(const LoadOptions& options, WeightStore* store);

// ModelConfig from GGUF metadata (llama, qwen2, qwen3 architectures).
Result<ModelConfig> model_config_from_gguf(const GgufFile& file);

// The Hugging Face name of a GGUF tensor (blk.3.attn_q.weight ->
// model.layers.3.self_attn.q_proj.weight); nullopt for names with no HF counterpart.
std::optional<std::string> gguf_to_hf_name(std::string_view gguf_name);

}  // namespace kite
