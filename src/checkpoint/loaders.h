// Format-specific readers behind read_checkpoint() (weights.h). Each fills a WeightStore's config
// and tensors; models/load.h's load_model() maps and validates the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "checkpoint/config.h"
#include "checkpoint/gguf.h"
#include "checkpoint/weights.h"
#include "kite/status.h"

namespace kite {

// A Hugging Face directory: config.json, generation_config.json (optional), safetensors.
Status load_hf_directory(const std::string& dir, WeightStore* store);

// Reads config.json (and generation_config.json when present) of a directory, or a config.json
// given by path, into the store (no weights).
Status load_hf_configs(const std::string& path, WeightStore* store);

// A GGUF file: config from its metadata, every tensor under its GGUF name.
Status load_gguf_file(const std::string& path, WeightStore* store);

// ModelConfig from GGUF metadata (llama — Mixtral when it has an expert_count —, qwen2, qwen3,
// qwen3moe architectures).
Result<ModelConfig> model_config_from_gguf(const GgufFile& file);

}  // namespace kite
