// CudaModelRunner: the ModelRunner of one GPU (Llama-family decoders in BF16).
//
// Lifecycle: create() loads the weights (BF16, or F32 in the float32 mode, on the device; q/k/v
// and gate/up fused) ->
// determine_num_kv_blocks() sizes the activation buffers for max_num_batched_tokens, runs a
// profiling forward and turns the rest of gpu_memory_utilization into KV blocks ->
// allocate_kv_cache() allocates the cache and captures CUDA graphs of decode-only steps at the
// batch sizes in decode_graph_sizes() -> forward()/sample() per step.
//
// All device memory is allocated before the first step; forward() and sample() only copy the
// step's inputs (one host-to-device copy), launch kernels (or replay a graph) and copy the
// sampled tokens back. Everything runs on the runner's own stream; the engine thread is the
// only caller.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "backend/cuda/cuda_weights.h"
#include "backend/cuda/step_profiler.h"
#include "models/kv_cache_scales.h"
#include "parallel/communicator.h"
#include "runtime/model_runner.h"

namespace kite::cuda {

struct CudaRunnerOptions {
  int device = 0;
  bool use_cuda_graphs = true;  // decode-only steps replay captured graphs
  int max_graph_batch = 256;    // largest captured decode batch (the engine: max_num_seqs)
  int gemv_max_m = 4;           // linear layers with at most this many rows use the GEMV kernel
  // Element type of weights, activations and KV cache: kBF16, or kF32 (the float32 compute mode:
  // pure-FP32 cuBLASLt, F32 kernels, the CPU backend's arithmetic; models on the generic
  // attention path only, i.e. head_dim <= 32).
  DType dtype = DType::kBF16;
  // --quantization fp8: every linear but the LM head quantized per row to FP8 at load (FP8
  // checkpoints are FP8 whatever this says). bf16 compute only.
  bool fp8_online = false;
  // KV cache element type: the compute dtype (kBF16 or kF32 here both mean `dtype`), or kF8E4M3
  // (--kv-cache-dtype fp8, either compute dtype): E4M3
  // bytes with kv_scales' per-layer scales, written by the RoPE + KV kernels and read by every
  // attention kernel (kv_fp8.cuh); FlashInfer's prefill is not used then.
  DType kv_cache_dtype = DType::kBF16;
  KvCacheScales kv_scales = {};  // kF8E4M3: [num_hidden_layers] each (empty: 1.0)
  // MoE layers of steps that carry prefill tokens and have more than this many tokens run each
  // expert's two GEMMs on cuBLASLt (after a gather of the permuted rows and one host sync per
  // layer for the expert offsets; when hidden and the expert width are multiples of 256 bytes);
  // every other step, decode graphs included, runs the grouped kernel (moe.h), no host sync.
  int moe_grouped_max_tokens = 64;
  // Tensor parallelism (docs/parallel.md "CUDA and NCCL"): the ranks' host world
  // (parallel/world.h: MPI) when launched by an MPI launcher. With several ranks the runner holds
  // rank comm->rank()'s shard (models/tensor_parallel.h); rank 0's runner is the engine's and
  // sends its calls (KV sizing and allocation, each forward's batch) over `comm` to the others'
  // run_worker(). connect_ranks() makes the NCCL communicator (nccl_communicator.h) over `comm` on
  // `device` and the runner's stream; the activations' all-reduces and the logits' all-gather
  // run on it. nullptr: no communicator (the plain single-GPU path).
  std::shared_ptr<parallel::Communicator> comm = nullptr;
  int pipeline_parallel_size = 1;  // of comm's world; > 1 is refused on CUDA for now
  // Tests: a comm of one rank takes the several-ranks path all the same (a shard of the whole
  // model, collectives that do nothing, the logits gathered, rank 0's call protocol), so one GPU
  // checks that path's plumbing against the plain one.
  bool force_tensor_parallel_path = false;
};

// The compute dtype for `requested` ("auto", "bfloat16", "float32"; EngineConfig::dtype):
// auto is float32 when the checkpoint's embedding is F32 and the model takes the generic
// attention path (the tiny models, whose greedy text then matches the CPU backend), else
// bfloat16. kInvalidArgument for an unknown name, kUnimplemented for float16 or float32 on the
// tensor-core path.
Result<DType> choose_compute_dtype(const ModelConfig& cfg, const WeightLookup& weights,
                                   std::string_view requested);

class CudaModelRunner final : public ModelRunner {
 public:
  ~CudaModelRunner() override;

  // Errors: kUnavailable without a usable GPU; kUnimplemented for shapes the kernels do not
  // support (head_dim, GQA group); plus load_device_weights()'s errors.
  static Result<std::unique_ptr<CudaModelRunner>> create(const ModelConfig& cfg,
                                                         const WeightLookup& weights,
                                                         const CudaRunnerOptions& opts = {});

  const ModelConfig& config() const override;
  Device device() const override { return Device::kCuda; }
  DType kv_cache_dtype() const override;
  int64_t kv_block_bytes(int block_size) const override;
  Result<int64_t> determine_num_kv_blocks(const KvCacheConfig& cfg) override;
  Status allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) override;
  Status forward(const ForwardBatch& batch, TensorView* logits) override;
  Status sample(const TensorView& logits, const SamplingBatch& params, SamplerOutput* out) override;
  Status logits_to_host(const TensorView& logits, float* out) override;
  // Pooling rows (embeddings): run eagerly on the plain op list; their final-norm rows are
  // copied to the host during the forward and converted to F32 here.
  bool supports_pooling() const override;
  Status hidden_states_to_host(int64_t first, int64_t num_rows, float* out) override;
  // With CudaRunnerOptions::comm: the NCCL communicator over it (every rank calls this after
  // every rank's create() succeeded; bounded by KITE_PARALLEL_INIT_TIMEOUT_S).
  Status connect_ranks() override;
  // Ranks other than 0 of several: replays rank 0's calls until its runner is destroyed.
  Status run_worker() override;

  // Batch sizes with a captured decode graph (empty before allocate_kv_cache or when off).
  std::vector<int> decode_graph_sizes() const;
  // Which attention kernels serve this model ("tensor-core" or "generic").
  const char* attention_path_name() const;
  // kBF16 or kF32 (see CudaRunnerOptions::dtype).
  DType compute_dtype() const;
  // Whether the last forward() replayed a CUDA graph (tests and benchmarks).
  bool last_forward_used_graph() const;
  // Decode-graph replay at run time (benchmarks: one runner timed eager and replayed); the
  // captured graphs stay. On by default (when use_cuda_graphs captured any).
  void set_graph_replay(bool on);

  // Per-step phase timing (step_profiler.h), off by default. While on, every forward() runs
  // eagerly (no graph replay) with CUDA events at its op boundaries, preceded by a delay kernel
  // of `lead_us` on the stream (the GPU starts once the host has queued the step; each profiled
  // step costs that much more wall time); forward() and sample() until take_step_profile() make
  // one profiled step. Off: no events, no syncs.
  Status set_step_profiling(bool on, int lead_us = 20000);
  // Ends the profiled step (one sync) and returns its per-phase device times.
  // kFailedPrecondition when profiling is off or no forward() ran since the last call.
  Result<StepProfile> take_step_profile();

  // The runner's NCCL communicator (after connect_ranks()), or nullptr.
  parallel::Communicator* device_communicator() const;

 private:
  struct Impl;
  explicit CudaModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kite::cuda
