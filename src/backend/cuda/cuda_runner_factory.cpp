// The CUDA backend's side of the engine's runner seam (engine/runner_factory.h): a
// CudaModelRunner for a loaded WeightStore and an EngineConfig.
#include "backend/cuda/cuda_runner_factory.h"

#include <algorithm>
#include <memory>
#include <string>

#include "backend/cuda/cuda_model_runner.h"
#include "backend/cuda/graph_support.h"
#include "backend/cuda/nccl_communicator.h"
#include "models/kv_cache_scales.h"
#include "models/registry.h"
#include "parallel/world.h"

namespace kite {

Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config,
    std::shared_ptr<parallel::Communicator> comm) {
  // A family whose ops the kernels lack is refused before anything touches the GPU.
  KITE_ASSIGN_OR_RETURN(ModelGraph graph, build_model_graph(weights->config()));
  KITE_RETURN_IF_ERROR(cuda::check_graph_support(graph, weights->config()));
  const std::shared_ptr<const WeightStore> store = weights;
  cuda::WeightLookup lookup = [store](std::string_view name) { return store->get(name); };
  // bfloat16, or float32 for F32 checkpoints on the generic attention path (auto) or when asked.
  KITE_ASSIGN_OR_RETURN(DType dtype,
                        cuda::choose_compute_dtype(weights->config(), lookup, config.dtype));
  KITE_ASSIGN_OR_RETURN(const KvCacheDtype kv, parse_kv_cache_dtype(config.kv_cache_dtype));
  if ((kv == KvCacheDtype::kKvCacheDtypeBFloat16 && dtype != DType::kBF16) ||
      (kv == KvCacheDtype::kKvCacheDtypeFloat32 && dtype != DType::kF32)) {
    return unimplemented("the CUDA backend keeps its KV cache in the compute dtype (" +
                         std::string(dtype == DType::kF32 ? "float32" : "bfloat16") +
                         ") or fp8; kv_cache_dtype '" + config.kv_cache_dtype +
                         "' is not supported");
  }
  cuda::CudaRunnerOptions options;
  options.kv_cache_dtype = dtype;
  if (kv == KvCacheDtype::kKvCacheDtypeFp8E4M3) {
    options.kv_cache_dtype = DType::kF8E4M3;
    KITE_ASSIGN_OR_RETURN(options.kv_scales,
                          read_kv_cache_scales(*weights, weights->config().num_hidden_layers));
  }
  options.use_cuda_graphs = !config.enforce_eager;
  options.max_graph_batch = config.max_num_seqs;  // decode of every batch size replays a graph
  options.dtype = dtype;
  options.fp8_online = config.quantization == "fp8" && !weights->config().quantization.enabled();
  if (comm != nullptr) {
    // One GPU per rank of a node: the launcher's local rank picks it.
    KITE_ASSIGN_OR_RETURN(options.device,
                          cuda::device_for_local_rank(cuda::local_rank_from_env(comm->rank())));
    options.comm = std::move(comm);
    options.pipeline_parallel_size = parallel::pipeline_parallel_size();
  }
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaModelRunner> runner,
                        cuda::CudaModelRunner::create(weights->config(), lookup, options));
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

}  // namespace kite
