// How an embedding model pools (EngineConfig::runner "pooling"), read from the model folder as
// vLLM reads it: sentence-transformers' modules.json names a Pooling module (its folder's
// config.json sets one pooling_mode_* true) and optionally a Normalize module; config.json's
// is_matryoshka / matryoshka_dimensions say whether `dimensions` may truncate.
#pragma once

#include <cstdint>
#include <string>

#include "kite/engine.h"
#include "kite/status.h"

namespace kite {

// model_path: a model folder (a .gguf or a dummy model has no such files: the defaults).
// Without modules.json: LAST, normalised (vLLM's default for decoder models). kInvalidArgument
// for malformed files, kUnimplemented for a pooling mode other than last/mean/cls.
Result<PoolingInfo> read_pooling_config(const std::string& model_path, int64_t hidden_size);

}  // namespace kite
