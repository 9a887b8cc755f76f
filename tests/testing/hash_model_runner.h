// HashModelRunner: a deterministic stand-in for a model, for executor and engine tests that
// need no weights. It keeps a real paged KV cache (one uint64 per slot) and behaves like a
// causal decoder: the "KV" of position p is a hash of the KV of position p - 1 (read back
// through the block table) and token p, and the logits of a row are pseudo-random values in
// [-4, 4] seeded by that row's KV. So outputs depend on every earlier token and on the cache
// holding the right values, as with a real model; a bad block table, slot mapping or prefix
// reuse changes them. Sampling is the CPU reference sampler.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/model_runner.h"
#include "sampling/cpu_sampler.h"

namespace kite::testing {

class HashModelRunner final : public ModelRunner {
 public:
  explicit HashModelRunner(int64_t vocab_size, int64_t max_position_embeddings = 4096) {
    config_.architecture = "HashModel";
    config_.vocab_size = vocab_size;
    config_.hidden_size = 8;
    config_.intermediate_size = 8;
    config_.num_hidden_layers = 1;
    config_.num_attention_heads = 1;
    config_.num_key_value_heads = 1;
    config_.head_dim = 8;
    config_.max_position_embeddings = max_position_embeddings;
    config_.eos_token_ids = {0};
    config_.bos_token_id = 1;
  }

  const ModelConfig& config() const override { return config_; }
  Device device() const override { return Device::kCpu; }
  int64_t kv_block_bytes(int block_size) const override { return 8 * block_size; }
  Result<int64_t> determine_num_kv_blocks(const KvCacheConfig& cfg) override {
    if (cfg.memory_budget_bytes <= 0) return invalid_argument("no KV memory budget");
    return cfg.memory_budget_bytes / kv_block_bytes(cfg.block_size);
  }
  Status allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) override {
    block_size_ = cfg.block_size;
    cache_.assign(static_cast<size_t>(num_blocks * cfg.block_size), 0);
    return ok_status();
  }

  Status forward(const ForwardBatch& b, TensorView* logits) override {
    if (before_forward) KITE_RETURN_IF_ERROR(before_forward(b));
    ++num_forwards;
    num_tokens_computed += b.num_tokens();
    for (int32_t s = 0; s < b.num_seqs(); ++s) {
      const int32_t q0 = b.query_start_loc[static_cast<size_t>(s)];
      const int32_t q1 = b.query_start_loc[static_cast<size_t>(s) + 1];
      const int32_t* table = b.block_table.data() + b.block_table_indptr[static_cast<size_t>(s)];
      const int32_t table_len = b.block_table_indptr[static_cast<size_t>(s) + 1] -
                                b.block_table_indptr[static_cast<size_t>(s)];
      for (int32_t t = q0; t < q1; ++t) {
        const int32_t pos = b.positions[static_cast<size_t>(t)];
        if (pos != b.seq_lens[static_cast<size_t>(s)] - (q1 - t)) {
          return invalid_argument("positions do not match seq_lens");
        }
        uint64_t prev = 0x1234;
        if (pos > 0) {
          const int32_t blk = (pos - 1) / block_size_;
          if (blk >= table_len) return invalid_argument("block table too short");
          prev = cache_[static_cast<size_t>(table[blk] * block_size_ + (pos - 1) % block_size_)];
        }
        const int32_t slot = b.slot_mapping[static_cast<size_t>(t)];
        if (slot != table[pos / block_size_] * block_size_ + pos % block_size_) {
          return invalid_argument("slot mapping disagrees with the block table");
        }
        cache_[static_cast<size_t>(slot)] =
            mix(prev, static_cast<uint64_t>(b.token_ids[static_cast<size_t>(t)]) + 1);
      }
    }
    const int64_t vocab = config_.vocab_size;
    logits_.assign(static_cast<size_t>(b.num_logits() * vocab), 0.0f);
    for (int32_t r = 0; r < b.num_logits(); ++r) {
      const int32_t t = b.logits_indices[static_cast<size_t>(r)];
      uint64_t h = cache_[static_cast<size_t>(b.slot_mapping[static_cast<size_t>(t)])];
      for (int64_t v = 0; v < vocab; ++v) {
        h = mix(h, static_cast<uint64_t>(v));
        logits_[static_cast<size_t>(r * vocab + v)] =
            static_cast<float>(static_cast<double>(h >> 11) * 0x1.0p-53 * 8.0 - 4.0);
      }
    }
    *logits = TensorView(logits_.data(), DType::kF32, {b.num_logits(), vocab});
    return ok_status();
  }

  Status sample(const TensorView& logits, const SamplingBatch& params,
                SamplerOutput* out) override {
    return cpu_sample(logits.as<float>(), logits.dim(1), params, out);
  }
  Status logits_to_host(const TensorView& logits, float* out) override {
    const float* src = logits.as<float>();
    std::copy(src, src + logits.numel(), out);
    return ok_status();
  }

  // Called at the start of every forward (e.g. to hold the engine thread, or fail a step).
  std::function<Status(const ForwardBatch&)> before_forward;
  std::atomic<int64_t> num_forwards{0};
  std::atomic<int64_t> num_tokens_computed{0};

 private:
  static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
  }

  ModelConfig config_;
  int block_size_ = 16;
  std::vector<uint64_t> cache_;
  std::vector<float> logits_;
};

}  // namespace kite::testing
