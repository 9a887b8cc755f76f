// The CUDA backend's side of the engine's runner seam (executor/runner_factory.h): a
// CudaModelRunner for a loaded WeightStore and an EngineConfig.
#include <algorithm>
#include <memory>
#include <string>

#include "backend/cuda/cuda_model_runner.h"
#include "kite/engine.h"
#include "model/weights.h"

#if __has_include("executor/runner_factory.h")
#include "executor/runner_factory.h"
#else
namespace kite {
Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config);
}  // namespace kite
#endif

namespace kite {

Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config) {
  if (config.dtype != "auto" && config.dtype != "bfloat16") {
    return unimplemented("the CUDA backend computes in bfloat16; dtype '" + config.dtype +
                         "' is not supported (use auto or bfloat16)");
  }
  if (config.kv_cache_dtype != "auto" && config.kv_cache_dtype != "bfloat16") {
    return unimplemented("the CUDA backend keeps its KV cache in bfloat16; kv_cache_dtype '" +
                         config.kv_cache_dtype + "' is not supported");
  }
  cuda::CudaRunnerOptions options;
  options.use_cuda_graphs = !config.enforce_eager;
  options.max_graph_batch = std::min(config.max_num_seqs, 256);
  const std::shared_ptr<const WeightStore> store = weights;
  cuda::WeightLookup lookup = [store](std::string_view name) { return store->get(name); };
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaModelRunner> runner,
                        cuda::CudaModelRunner::create(weights->config(), lookup, options));
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

}  // namespace kite
