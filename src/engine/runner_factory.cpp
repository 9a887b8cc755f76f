#include "engine/runner_factory.h"

#include "backend/cpu/cpu_model_runner.h"
#include "core/logging.h"
#include "models/kv_cache_scales.h"
#include "models/load.h"
#ifdef KITE_WITH_CUDA
#include "backend/cuda/cuda_runner_factory.h"
#endif

namespace kite {

Result<LoadedModel> create_model_runner(const EngineConfig& config) {
  if (config.tensor_parallel_size != 1) {
    return unimplemented("tensor_parallel_size " + std::to_string(config.tensor_parallel_size) +
                         ": only 1 is supported");
  }
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
  if (config.device != "cpu") {
    auto runner = create_cuda_model_runner(m.weights, config);
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
  KITE_ASSIGN_OR_RETURN(auto runner, CpuModelRunner::create(m.weights, options));
  m.runner = std::move(runner);
  return m;
}

}  // namespace kite
