#include "engine/runner_factory.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_model_runner.h"
#include "core/logging.h"
#include "models/kv_cache_scales.h"
#include "models/load.h"
#include "parallel/world.h"
#ifdef KITE_WITH_CUDA
#include "backend/cuda/cuda_runner_factory.h"
#endif

namespace kite {

namespace {

Result<LoadedModel> create_local_runner(const EngineConfig& config,
                                        std::shared_ptr<parallel::Communicator> comm) {
  if (config.device != "auto" && config.device != "cpu" && config.device != "cuda") {
    return invalid_argument("device must be auto, cpu or cuda, got '" + config.device + "'");
  }
  if (config.dtype != "auto" && config.dtype != "float32" && config.dtype != "bfloat16" &&
      config.dtype != "float16") {
    return invalid_argument("dtype must be auto, float32, bfloat16 or float16, got '" +
                            config.dtype + "'");
  }
  if (!config.quantization.empty() && config.quantization != "fp8") {
    return invalid_argument(
        "quantization must be fp8 (or unset: the checkpoint's own format), "
        "got '" +
        config.quantization + "'");
  }
  KITE_ASSIGN_OR_RETURN(const KvCacheDtype kv_dtype, parse_kv_cache_dtype(config.kv_cache_dtype));
  LoadOptions load;
  load.load_format = config.load_format;
  load.seed = config.seed;
  load.num_threads = config.num_threads;
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, load_model(config.model, load));
  const QuantizationConfig& q = store->config().quantization;
  if (config.quantization == "fp8" && q.enabled() && q.method != "fp8" &&
      q.method != "compressed-tensors") {
    return invalid_argument("--quantization fp8 does not apply to this checkpoint's " + q.method +
                            " quantization");
  }
  if (config.quantization == "fp8" && q.enabled()) {
    KITE_LOG_INFO("{} is already FP8 ({}); --quantization fp8 keeps its own scales", config.model,
                  quant_scheme_name(q.scheme));
  }
  if (q.kv_cache_scales && kv_dtype != KvCacheDtype::kKvCacheDtypeFp8E4M3) {
    KITE_LOG_INFO("{} has FP8 KV cache scales (kv_cache_scheme); --kv-cache-dtype fp8 uses them",
                  config.model);
  }
  LoadedModel m;
  m.weights = std::move(store);
#ifdef KITE_WITH_CUDA
  // A world reaches the CUDA runner only with --device cuda; "auto" with several ranks runs on
  // the CPU.
  if (config.device == "cuda" || (config.device == "auto" && comm == nullptr)) {
    auto runner = create_cuda_model_runner(m.weights, config, comm);
    if (runner.ok()) {
      m.runner = std::move(*runner);
      return m;
    }
    if (config.device == "cuda" || runner.status().code() != StatusCode::kUnavailable) {
      return runner.status();
    }
    KITE_LOG_INFO("no usable GPU ({}); running on the CPU", runner.status().message());
  }
#else
  if (config.device == "cuda") {
    return unavailable("this kite build has no CUDA backend (build with the cuda preset)");
  }
#endif
  if (config.dtype == "bfloat16" || config.dtype == "float16") {
    KITE_LOG_WARN("the CPU backend computes in float32 (dtype {} applies to CUDA only)",
                  config.dtype);
  }
  if (kv_dtype == KvCacheDtype::kKvCacheDtypeBFloat16) {
    return unimplemented("the CPU backend keeps its KV cache in float32 or fp8; kv_cache_dtype '" +
                         config.kv_cache_dtype + "' is not supported");
  }
  CpuRunnerOptions options;
  if (kv_dtype == KvCacheDtype::kKvCacheDtypeFp8E4M3) {
    options.kv_cache_dtype = DType::kF8E4M3;
    KITE_ASSIGN_OR_RETURN(options.kv_scales,
                          read_kv_cache_scales(*m.weights, m.weights->config().num_hidden_layers));
    KITE_LOG_INFO("KV cache in FP8 E4M3: {} of {} K/V scales from the checkpoint, the rest 1.0",
                  options.kv_scales.num_from_checkpoint, 2 * m.weights->config().num_hidden_layers);
  }
  options.num_threads = config.num_threads;
  options.fp8_online = config.quantization == "fp8" && !q.enabled();
  options.pipeline_parallel_size = comm != nullptr ? parallel::pipeline_parallel_size() : 1;
  options.pipeline_micro_batches = parallel::pipeline_micro_batches();
  options.comm = std::move(comm);
  KITE_ASSIGN_OR_RETURN(auto runner, CpuModelRunner::create(m.weights, options));
  m.runner = std::move(runner);
  return m;
}

// The world of a tensor-parallel config (nullptr for one rank). A one-rank process started by
// an MPI launcher with --device cuda gets its world too: the CUDA runner then takes the worker
// path's set-up (its local rank's GPU, a NCCL communicator of one rank), so that `mpirun -np 1`
// exercises it on one GPU; on the CPU one rank stays the plain path.
Result<std::shared_ptr<parallel::Communicator>> tensor_parallel_world(const EngineConfig& config) {
  const int tp = config.tensor_parallel_size;
  const int pp = parallel::pipeline_parallel_size();
  if (tp * pp == 1) {
    std::shared_ptr<parallel::Communicator> w = parallel::world();
    if (config.device == "cuda" && w != nullptr && w->world_size() == 1 && w->name() == "mpi") {
      return w;
    }
    return std::shared_ptr<parallel::Communicator>();
  }
  std::shared_ptr<parallel::Communicator> comm = parallel::world();
  if (comm == nullptr || comm->world_size() != tp * pp) {
    return invalid_argument(fmt::format(
        "tensor_parallel_size {} needs {} ranks started by MPI: `mpirun -np {} kite generate|serve "
        "... --tensor-parallel-size {}` (docs/parallel.md)",
        tp, tp, tp, tp));
  }
  if (config.device == "cuda" && pp > 1) {
    // Refused before any rank loads the model (docs/parallel.md "CUDA and NCCL").
    return unimplemented(
        "pipeline parallelism is not implemented yet on the CUDA backend (tensor parallelism "
        "is); several stages run with --device cpu");
  }
  return comm;
}

}  // namespace

Result<LoadedModel> create_model_runner(const EngineConfig& config) {
  KITE_ASSIGN_OR_RETURN(std::shared_ptr<parallel::Communicator> comm,
                        tensor_parallel_world(config));
  Result<LoadedModel> m = create_local_runner(config, comm);
  if (comm == nullptr) return m;
  // Every rank learns whether every rank loaded its shard, so that all of them can report and
  // exit instead of waiting for a peer that failed.
  Status all = parallel::agree(*comm, m.status(), "loading the model");
  // Then the backend's own collectives (CUDA: NCCL), set up by every rank, and agreed on again.
  if (all.ok()) all = parallel::agree(*comm, m->runner->connect_ranks(), "connecting the ranks");
  if (!all.ok()) {
    parallel::set_workers_released(true);  // every rank knows: none waits for another
    return all;
  }
  return m;
}

Status run_model_worker(const EngineConfig& config) {
  KITE_ASSIGN_OR_RETURN(LoadedModel m, create_model_runner(config));
  return m.runner->run_worker();
}

}  // namespace kite
