// CpuModelRunner: the CPU backend's ModelRunner. Runs the shared decoder of every supported
// family (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, SmolLM2) in F32 over the weights of a
// WeightStore (F32/F16/BF16, or GGUF-quantized, read in place) with a paged F32 KV cache.
//
// One layer, for the n tokens of a ForwardBatch:
//   h = rms_norm(residual)                      (fused with the residual add after layer 0)
//   [q | k | v] = h @ [Wq; Wk; Wv]^T (+ biases)  (Qwen2: q/k/v bias)
//   q, k = head_rms_norm(q, k)                   (Qwen3)
//   q, k = rope_neox(q, k, positions)
//   cache[slot_mapping] = k, v
//   a = paged_attention(q, cache) @ Wo^T
//   h = rms_norm(residual += a)
//   residual += (silu(h @ Wg^T) * (h @ Wu^T)) @ Wd^T
// then logits = rms_norm(residual[logits_indices]) @ lm_head^T.
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "executor/model_runner.h"
#include "model/weights.h"

namespace kite {

struct CpuRunnerOptions {
  int num_threads = 0;  // 0 = hardware concurrency
};

class CpuModelRunner final : public ModelRunner {
 public:
  // Errors: the weights' own validation errors (kNotFound/kInvalidArgument naming a tensor).
  static Result<std::unique_ptr<CpuModelRunner>> create(std::shared_ptr<const WeightStore> weights,
                                                        const CpuRunnerOptions& options = {});

  const ModelConfig& config() const override { return weights_->config(); }
  Device device() const override { return Device::kCpu; }
  int64_t kv_block_bytes(int block_size) const override;
  // memory_budget_bytes / kv_block_bytes. kInvalidArgument without a budget; kResourceExhausted
  // when fewer than 2 blocks fit (block 0 is reserved).
  Result<int64_t> determine_num_kv_blocks(const KvCacheConfig& cfg) override;
  // kUnimplemented for a KV dtype other than F32.
  Status allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) override;
  // Validates the batch (token ids in the vocabulary, slots and blocks inside the cache,
  // consistent sizes: kInvalidArgument otherwise), then runs the model.
  Status forward(const ForwardBatch& batch, TensorView* logits) override;
  // The CPU reference sampler (sampling/cpu_sampler.h) over host logits.
  Status sample(const TensorView& logits, const SamplingBatch& params, SamplerOutput* out) override;
  Status logits_to_host(const TensorView& logits, float* out) override;

  int num_threads() const { return pool_.num_threads(); }
  int64_t num_kv_blocks() const { return num_blocks_; }

 private:
  struct Layer {
    TensorView q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
    // F32 copies of the small vectors; empty when the family has none.
    std::vector<float> input_norm, post_attention_norm, q_norm, k_norm;
    std::vector<float> q_bias, k_bias, v_bias, o_bias;
  };

  CpuModelRunner(std::shared_ptr<const WeightStore> weights, int num_threads);
  Status init();
  Status validate_batch(const ForwardBatch& batch) const;
  void run_layer(int64_t l, const ForwardBatch& batch);

  std::shared_ptr<const WeightStore> weights_;
  ThreadPool pool_;
  TensorView embed_tokens_;
  TensorView lm_head_;
  std::vector<float> final_norm_;
  std::vector<double> inv_freq_;  // [head_dim / 2]
  std::vector<Layer> layers_;

  // KV cache: per layer [num_blocks, block_size, num_kv_heads, head_dim] for K and V.
  int64_t num_blocks_ = 0;
  int block_size_ = 0;
  std::vector<HostBuffer> k_cache_;
  std::vector<HostBuffer> v_cache_;

  // Activations of the current step (grown as needed, kept between steps).
  std::vector<float> residual_;  // [n, hidden]
  std::vector<float> hidden_;    // [n, hidden] normed input of the current sub-layer
  std::vector<float> delta_;     // [n, hidden] output of the current sub-layer
  std::vector<float> qkv_;       // [n, q + 2 kv]
  std::vector<float> attn_;      // [n, q]
  std::vector<float> gate_up_;   // [n, 2 * intermediate]
  std::vector<float> act_;       // [n, intermediate]
  std::vector<float> last_;      // [num_logits, hidden]
  std::vector<float> logits_;    // [num_logits, vocab]
};

}  // namespace kite
