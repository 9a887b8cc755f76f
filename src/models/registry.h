// The model definitions kite has, by family. Adding a family: write its definition file
// (a build_*_graph function like llama.cpp's) and add it to registry.cpp; see
// docs/architecture.md ("Adding a model family") for every file a new family touches.
#pragma once

#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite {

// The graph of `config`'s family. Errors: kUnimplemented for a family without a definition,
// kInvalidArgument for a quantization_config that does not fit the definition's layers.
Result<ModelGraph> build_model_graph(const ModelConfig& config);

// The definitions (one per file).
Result<ModelGraph> build_llama_graph(const ModelConfig& config);
Result<ModelGraph> build_gemma_graph(const ModelConfig& config);

}  // namespace kite
