// CpuModelRunner: the CPU backend's ModelRunner. Runs a model definition's op list
// (models/model_graph.h: every supported family) in F32 over the weights of a WeightStore
// (F32/F16/BF16, or GGUF-quantized, read in place) with a paged F32 (or FP8 E4M3) KV cache. Each op
// maps to the reference ops of backend/cpu/ops.h; by default nothing is fused, so this is the
// reference every other backend's fused execution is tested against.
#pragma once

#include <memory>
#include <vector>

#include "backend/cpu/cpu_weights.h"
#include "backend/cpu/moe.h"
#include "checkpoint/weights.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/kv_cache_scales.h"
#include "models/model_graph.h"
#include "runtime/model_runner.h"

namespace kite {

struct CpuRunnerOptions {
  int num_threads = 0;  // 0 = hardware concurrency
  // Run the fused op list (models/fusion.h: every fusion) instead of the plain one. Each fused
  // linear runs as its parts, in F32 the same arithmetic: tests use it to check the fusion pass
  // against the plain list.
  bool fused_ops = false;
  // --quantization fp8: linear layers (not the LM head) quantized per channel at load and run
  // with those FP8 values (cpu_weights.h).
  bool fp8_online = false;
  // KV cache element type: kF32, or kF8E4M3 (--kv-cache-dtype fp8: E4M3 bytes with
  // kv_scales' per-layer scales, ops.h's FP8 cache).
  DType kv_cache_dtype = DType::kF32;
  // kF8E4M3 only: [num_hidden_layers] scales each (empty: 1.0 everywhere).
  KvCacheScales kv_scales = {};
};

class CpuModelRunner final : public ModelRunner {
 public:
  // Errors: the definition's and the weights' validation errors (kNotFound/kInvalidArgument
  // naming a tensor), kUnimplemented for weights the CPU backend cannot compute.
  static Result<std::unique_ptr<CpuModelRunner>> create(std::shared_ptr<const WeightStore> weights,
                                                        const CpuRunnerOptions& options = {});

  const ModelConfig& config() const override { return weights_->config(); }
  Device device() const override { return Device::kCpu; }
  DType kv_cache_dtype() const override { return options_.kv_cache_dtype; }
  int64_t kv_block_bytes(int block_size) const override;
  // memory_budget_bytes / kv_block_bytes. kInvalidArgument without a budget; kResourceExhausted
  // when fewer than 2 blocks fit (block 0 is reserved).
  Result<int64_t> determine_num_kv_blocks(const KvCacheConfig& cfg) override;
  // The cache holds kv_cache_dtype() (cfg.dtype is not read).
  Status allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) override;
  // Validates the batch (runtime/forward_batch.h: kInvalidArgument), then runs the model.
  Status forward(const ForwardBatch& batch, TensorView* logits) override;
  // The CPU reference sampler (sampling/cpu_sampler.h) over host logits.
  Status sample(const TensorView& logits, const SamplingBatch& params, SamplerOutput* out) override;
  Status logits_to_host(const TensorView& logits, float* out) override;
  // Pooling rows' final-norm hidden states (unimplemented with fused_ops: the final norm is
  // folded into the LM head there).
  bool supports_pooling() const override { return final_hidden_ != kNoValue; }
  Status hidden_states_to_host(int64_t first, int64_t num_rows, float* out) override;

  int num_threads() const { return pool_.num_threads(); }
  int64_t num_kv_blocks() const { return num_blocks_; }

 private:
  CpuModelRunner(std::shared_ptr<const WeightStore> weights, int num_threads);
  Status init();
  void run_op(const Op& op, const ForwardBatch& batch);
  void run_linear(const Op& op, const ForwardBatch& batch);
  void rope_kv_write(float* qkv, int64_t stride, int layer, WeightId q_norm, WeightId k_norm,
                     float eps, int rope, const ForwardBatch& batch);
  float* buf(ValueId v) { return values_[static_cast<size_t>(v)].data(); }
  const cpu::CpuWeight& weight(WeightId w) const { return weights_cpu_[static_cast<size_t>(w)]; }

  std::shared_ptr<const WeightStore> weights_;
  ThreadPool pool_;
  CpuRunnerOptions options_;
  ModelGraph graph_;
  std::vector<cpu::CpuWeight> weights_cpu_;    // parallel to graph_.weights
  std::vector<Op> ops_;                        // graph_.ops, or the fused list
  std::vector<std::vector<double>> inv_freq_;  // per graph_.ropes: [rotary_dim / 2]
  // LongRoPE ropes: the frequencies past original_max_position_embeddings (else empty).
  std::vector<std::vector<double>> inv_freq_long_;
  std::vector<std::vector<cpu::MoeExpert>> moe_experts_;  // per graph_.moes: [num_experts]
  cpu::MoeScratch moe_scratch_;

  // KV cache: per layer [num_blocks, block_size, num_kv_heads, head_dim] for K and V, F32 or
  // E4M3 bytes (options_.kv_cache_dtype).
  int64_t num_blocks_ = 0;
  int block_size_ = 0;
  std::vector<HostBuffer> k_cache_;
  std::vector<HostBuffer> v_cache_;

  // Activations of the current step, one buffer per graph value ([rows, width]; grown as
  // needed, kept between steps).
  std::vector<std::vector<float>> values_;
  std::vector<float> prologue_;  // fused lists: a linear's normalized input
  std::vector<float> product_;   // fused lists: a linear's product before its epilogue
  ValueId final_hidden_ = kNoValue;  // the LM head's input, [num_logits, hidden]
  int64_t num_pooling_rows_ = 0;     // of the last forward
  int64_t first_pooling_row_ = 0;    // its row in final_hidden_
};

}  // namespace kite
