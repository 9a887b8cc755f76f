// What a result says about the model and the engine configuration it ran with.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "kite/engine.h"
#include "kite/status.h"

namespace kite::bench {

// The "model" object: name, path, and when `model_path` is a Hugging Face directory, the shape
// from its config.json (architecture, hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, head_dim, vocab_size, tie_word_embeddings,
// torch_dtype) and the parameter count of a Llama-style decoder of that shape.
boost::json::object model_json(const std::string& model_path);

// vocab_size from a model directory's config.json (or `model_path` itself if it is a
// config.json); kNotFound when there is none.
Result<int64_t> vocab_size_from_config(const std::string& model_path);

// The "config" object of an in-process run: every EngineConfig field under its vLLM flag name.
boost::json::object engine_config_json(const EngineConfig& config);

}  // namespace kite::bench
