// The seam where backends plug in: loads the model named by an EngineConfig and builds the
// ModelRunner of the chosen device.
//
//   device "cpu":  CpuModelRunner (src/backend/cpu)
//   device "cuda": create_cuda_model_runner (src/backend/cuda; only in KITE_WITH_CUDA builds)
//   device "auto": cuda when the build has it and a GPU is usable, else cpu
#pragma once

#include <memory>

#include "executor/model_runner.h"
#include "kite/engine.h"
#include "kite/status.h"
#include "model/weights.h"

namespace kite {

struct LoadedModel {
  std::shared_ptr<const WeightStore> weights;  // config, generation_config.json, GGUF metadata
  std::unique_ptr<ModelRunner> runner;
};

// Errors: load_model's (kNotFound, kInvalidArgument, kDataLoss, kUnimplemented), an unknown
// device or dtype (kInvalidArgument), a device this build or machine lacks (kUnavailable),
// tensor_parallel_size > 1 (kUnimplemented).
Result<LoadedModel> create_model_runner(const EngineConfig& config);

#ifdef KITE_WITH_CUDA
// Implemented by the CUDA backend: a runner on the current GPU for these weights. kUnavailable
// when no GPU can be used (device "auto" then falls back to the CPU).
Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config);
#endif

}  // namespace kite
