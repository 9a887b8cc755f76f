// ModelRunner: what the executor needs from a backend (CPU or CUDA) to run one model.
//
// A runner owns the weights on its device and the paged KV cache. The engine thread is its
// only caller.
#pragma once

#include <cstdint>
#include <memory>

#include "checkpoint/config.h"
#include "core/tensor.h"
#include "kite/status.h"
#include "runtime/forward_batch.h"
#include "sampling/sampling_batch.h"

namespace kite {

struct KvCacheConfig {
  int block_size = 16;              // tokens per block
  DType dtype = DType::kF32;        // unused: the runner's kv_cache_dtype() decides
  int64_t memory_budget_bytes = 0;  // CPU: bytes for KV blocks; CUDA: see gpu_memory_utilization
  double gpu_memory_utilization = 0.9;
  int max_num_seqs = 256;
  int64_t max_num_batched_tokens = 8192;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const ModelConfig& config() const = 0;
  virtual Device device() const = 0;

  // Element type of the KV cache the runner keeps: kF32, kBF16, or kF8E4M3 (an FP8 cache with
  // per-layer scales, --kv-cache-dtype fp8). Fixed at creation; KvCacheConfig::dtype does not
  // change it.
  virtual DType kv_cache_dtype() const { return DType::kF32; }
  // Bytes one block of `block_size` tokens takes across all layers (K and V), at the element
  // size of kv_cache_dtype().
  virtual int64_t kv_block_bytes(int block_size) const = 0;
  // How many KV blocks fit: CPU from memory_budget_bytes; CUDA after a profiling forward at
  // max_num_batched_tokens, from gpu_memory_utilization.
  virtual Result<int64_t> determine_num_kv_blocks(const KvCacheConfig& cfg) = 0;
  // Allocates the cache (block 0 included; the engine never hands block 0 to a sequence).
  virtual Status allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) = 0;

  // Runs the model: writes K/V of the batch's tokens into the cache and produces logits for
  // batch.logits_indices. `logits` receives F32 [num_logits, vocab] on the runner's device,
  // valid until the next call.
  virtual Status forward(const ForwardBatch& batch, TensorView* logits) = 0;

  // Samples one token per logits row (see sampling_batch.h for the definition).
  virtual Status sample(const TensorView& logits, const SamplingBatch& params,
                        SamplerOutput* out) = 0;

  // Copies logits rows to host F32 (for prompt logprobs and tests). [num_logits, vocab]
  virtual Status logits_to_host(const TensorView& logits, float* out) = 0;

  // Pooling (embedding requests): whether forward keeps the final-norm hidden states of a
  // batch's pooling rows (ForwardBatch::num_pooling_rows).
  virtual bool supports_pooling() const { return false; }
  // Copies the final-norm hidden states of pooling rows [first, first + num_rows) of the last
  // forward (0 = the batch's first pooling row) to host F32 [num_rows, hidden_size].
  virtual Status hidden_states_to_host(int64_t first, int64_t num_rows, float* out) {
    (void)first;
    (void)num_rows;
    (void)out;
    return unimplemented("this backend does not run pooling (embedding) models");
  }

  // Several ranks (docs/parallel.md). Every rank's runner is created first (no collective in
  // creation, so a rank that fails to load leaves no peer waiting), the ranks agree that all
  // loaded, and then every rank calls connect_ranks(): a backend whose collectives need their
  // own set-up (CUDA: the NCCL communicator) makes it here (collective, bounded). Default: none.
  virtual Status connect_ranks() { return ok_status(); }
  // Ranks other than 0: replays rank 0's calls (KV sizing and allocation, forward steps) until
  // rank 0's runner is destroyed. Errors: a collective's (kUnavailable), a step's.
  virtual Status run_worker() {
    return unimplemented("this backend runs no tensor-parallel worker");
  }
};

}  // namespace kite
