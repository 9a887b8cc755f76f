// The CUDA backend's side of the engine's runner seam (engine/runner_factory.h).
#pragma once

#include <memory>

#include "checkpoint/weights.h"
#include "kite/engine.h"
#include "kite/status.h"
#include "runtime/model_runner.h"

namespace kite {

// A runner on the current GPU for these weights. kUnavailable when no GPU can be used (device
// "auto" then falls back to the CPU).
Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config);

}  // namespace kite
