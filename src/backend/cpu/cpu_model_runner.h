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
#include "backend/cpu/tensor_parallel.h"
#include "checkpoint/weights.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/kv_cache_scales.h"
#include "models/model_graph.h"
#include "parallel/communicator.h"
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
  // Tensor parallelism (tensor_parallel.h): a world of several ranks makes this runner hold
  // rank comm->rank()'s shard. Rank 0's runner is the engine's: its determine_num_kv_blocks,
  // allocate_kv_cache and forward broadcast the call to the other ranks, which run
  // run_worker(); its destructor releases them. nullptr or one rank = the whole model.
  std::shared_ptr<parallel::Communicator> comm = nullptr;
  // Pipeline stages of that world (layers split across them, cpu_tensor_parallel.cpp): world
  // rank = stage * tensor_parallel_size + tp_rank; each stage is a tensor-parallel group.
  int pipeline_parallel_size = 1;
  // Micro-batches in flight across the stages within a step (docs/parallel.md): each stage cuts
  // the step's batch into up to this many parts of whole sequences (runtime/forward_batch.h
  // micro_batch_bounds) and hands part i to the next stage before it runs part i + 1.
  // 0 = the number of stages; 1 = the whole batch at once. Ignored with one stage.
  int pipeline_micro_batches = 0;
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
  bool supports_pooling() const override { return final_hidden_ != kNoValue && num_stages_ == 1; }
  Status hidden_states_to_host(int64_t first, int64_t num_rows, float* out) override;

  // Ranks other than 0: runs rank 0's calls (KV sizing and allocation, forward steps) until
  // rank 0's runner is destroyed. Errors: a collective's (kUnavailable), a step's.
  Status run_worker() override;
  const cpu::TpLayout& tp_layout() const { return tp_; }

  ~CpuModelRunner() override;

  int num_threads() const { return pool_.num_threads(); }
  int64_t num_kv_blocks() const { return num_blocks_; }

 private:
  CpuModelRunner(std::shared_ptr<const WeightStore> weights, int num_threads);
  Status init();
  // Several ranks (tensor and/or pipeline parallel): rank 0 drives the others.
  bool tensor_parallel() const { return comm_ != nullptr && comm_->world_size() > 1; }
  // The weights are split across a tensor-parallel group (tp_comm_).
  bool tp_split() const { return tp_.size > 1; }
  // Pipeline parallel: this stage's ops, what it receives and sends, its KV layers.
  Status plan_stages();
  Status exchange_stage_values(const ForwardBatch& batch, bool receive);
  // Several stages: the step's micro-batches through this stage's ops; the last stage's first
  // rank sends the step's logits to rank 0 after the last micro-batch.
  Status pipeline_forward(const ForwardBatch& batch);
  // This stage's ops over one (micro-)batch: receive, run, send to the next stage.
  Status run_stage(const ForwardBatch& batch);
  // Tensor parallelism (cpu_tensor_parallel.cpp). Rank 0: sends a forward to the workers.
  Status send_forward(const ForwardBatch& batch);
  Status local_num_kv_blocks(const KvCacheConfig& cfg, int64_t* blocks);
  Status local_allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg);
  Status local_forward(const ForwardBatch& batch);
  void embed_vocab_shard(const Op& op, const ForwardBatch& batch);
  Status gather_logits(int64_t rows);
  void run_op(const Op& op, const ForwardBatch& batch);
  void run_linear(const Op& op, const ForwardBatch& batch);
  void rope_kv_write(float* qkv, int64_t stride, int layer, WeightId q_norm, WeightId k_norm,
                     float eps, int rope, const ForwardBatch& batch);
  float* buf(ValueId v) { return values_[static_cast<size_t>(v)].data(); }
  const cpu::CpuWeight& weight(WeightId w) const { return weights_cpu_[static_cast<size_t>(w)]; }

  std::shared_ptr<const WeightStore> weights_;
  std::shared_ptr<parallel::Communicator> comm_;     // nullptr = one rank
  std::shared_ptr<parallel::Communicator> tp_comm_;  // this stage's tensor-parallel group
  int stage_ = 0;
  int num_stages_ = 1;
  size_t op_begin_ = 0, op_end_ = 0;  // this stage's ops_ [op_begin_, op_end_)
  std::vector<ValueId> recv_values_;  // from the previous stage, before op_begin_
  std::vector<ValueId> send_values_;  // to the next stage, after op_end_
  std::vector<bool> own_kv_layer_;    // [num_hidden_layers]: KV layers this stage caches
  cpu::TpLayout tp_;                  // the whole model with one rank
  ModelConfig local_;                 // this rank's heads/intermediate/vocab stride
  std::vector<float> gathered_;       // tensor parallel: [size, rows, vocab_stride]
  std::vector<float> logits_full_;    // tensor parallel: [rows, vocab] on rank 0
  std::vector<int32_t> local_ids_;    // vocab-parallel embedding scratch
  std::vector<float> local_rows_;
  bool workers_released_ = false;
  Status step_status_;  // the first failed collective of the current step
  // Pipeline micro-batches: the current part, its rows of the step's logits, and (last stage,
  // first rank) the step's logits [rows, vocab] assembled from the parts.
  ForwardBatch micro_;
  std::vector<int32_t> micro_logits_rows_;
  std::vector<float> stage_logits_;
  int64_t num_steps_ = 0, num_micro_batches_ = 0;  // run so far (logged at exit)
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
  std::vector<float> prologue_;      // fused lists: a linear's normalized input
  std::vector<float> product_;       // fused lists: a linear's product before its epilogue
  ValueId final_hidden_ = kNoValue;  // the LM head's input, [num_logits, hidden]
  int64_t num_pooling_rows_ = 0;     // of the last forward
  int64_t first_pooling_row_ = 0;    // its row in final_hidden_
};

}  // namespace kite
