#include "backend/cpu/cpu_model_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/ops.h"
#include "core/check.h"
#include "model/dequant.h"
#include "sampling/cpu_sampler.h"

namespace kite {
namespace {

// The small vectors (norm weights, biases) as F32.
Result<std::vector<float>> small_f32(const WeightStore& w, const std::string& name) {
  KITE_ASSIGN_OR_RETURN(TensorView t, w.get(name));
  KITE_ASSIGN_OR_RETURN(std::vector<float> v, dequantize_to_f32(t));
  return v;
}

}  // namespace

CpuModelRunner::CpuModelRunner(std::shared_ptr<const WeightStore> weights, int num_threads)
    : weights_(std::move(weights)), pool_(num_threads) {}

Result<std::unique_ptr<CpuModelRunner>> CpuModelRunner::create(
    std::shared_ptr<const WeightStore> weights, const CpuRunnerOptions& options) {
  std::unique_ptr<CpuModelRunner> r(new CpuModelRunner(std::move(weights), options.num_threads));
  KITE_RETURN_IF_ERROR(r->init());
  return r;
}

Status CpuModelRunner::init() {
  const WeightStore& w = *weights_;
  const ModelConfig& c = w.config();
  KITE_ASSIGN_OR_RETURN(embed_tokens_, w.get("model.embed_tokens.weight"));
  KITE_ASSIGN_OR_RETURN(lm_head_, w.get("lm_head.weight"));
  KITE_ASSIGN_OR_RETURN(final_norm_, small_f32(w, "model.norm.weight"));
  const float* freq_factors = nullptr;
  if (const TensorView* f = w.find("rope_freqs.weight")) {
    if (f->dtype != DType::kF32 || f->numel() != c.head_dim / 2) {
      return invalid_argument("rope_freqs.weight must be F32[head_dim / 2]");
    }
    freq_factors = f->as<float>();
  }
  inv_freq_ = cpu::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling, freq_factors);

  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers_[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    KITE_ASSIGN_OR_RETURN(L.q_proj, w.get(p + "self_attn.q_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.k_proj, w.get(p + "self_attn.k_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.v_proj, w.get(p + "self_attn.v_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.o_proj, w.get(p + "self_attn.o_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.gate_proj, w.get(p + "mlp.gate_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.up_proj, w.get(p + "mlp.up_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.down_proj, w.get(p + "mlp.down_proj.weight"));
    KITE_ASSIGN_OR_RETURN(L.input_norm, small_f32(w, p + "input_layernorm.weight"));
    KITE_ASSIGN_OR_RETURN(L.post_attention_norm,
                          small_f32(w, p + "post_attention_layernorm.weight"));
    if (c.qk_norm) {
      KITE_ASSIGN_OR_RETURN(L.q_norm, small_f32(w, p + "self_attn.q_norm.weight"));
      KITE_ASSIGN_OR_RETURN(L.k_norm, small_f32(w, p + "self_attn.k_norm.weight"));
    }
    // Biases: required by the config where it says so (validate_weights checked), used
    // wherever present.
    for (auto [name, dst] : {std::pair<const char*, std::vector<float>*>{"q_proj", &L.q_bias},
                             {"k_proj", &L.k_bias},
                             {"v_proj", &L.v_bias},
                             {"o_proj", &L.o_bias}}) {
      const std::string bias = p + "self_attn." + name + ".bias";
      if (w.find(bias) != nullptr) {
        KITE_ASSIGN_OR_RETURN(*dst, small_f32(w, bias));
      }
    }
  }
  return ok_status();
}

int64_t CpuModelRunner::kv_block_bytes(int block_size) const {
  const ModelConfig& c = config();
  return 2 * c.num_hidden_layers * static_cast<int64_t>(block_size) * c.kv_size() *
         static_cast<int64_t>(sizeof(float));
}

Result<int64_t> CpuModelRunner::determine_num_kv_blocks(const KvCacheConfig& cfg) {
  if (cfg.block_size <= 0) {
    return invalid_argument(fmt::format("block_size must be positive, got {}", cfg.block_size));
  }
  if (cfg.memory_budget_bytes <= 0) {
    return invalid_argument("the CPU backend needs a KV cache memory budget (bytes)");
  }
  const int64_t blocks = cfg.memory_budget_bytes / kv_block_bytes(cfg.block_size);
  if (blocks < 2) {
    return resource_exhausted(fmt::format(
        "a KV cache budget of {} bytes holds {} blocks of {} tokens ({} bytes each); at least 2 "
        "are needed",
        cfg.memory_budget_bytes, blocks, cfg.block_size, kv_block_bytes(cfg.block_size)));
  }
  return blocks;
}

Status CpuModelRunner::allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) {
  if (cfg.dtype != DType::kF32) {
    return unimplemented(
        fmt::format("the CPU backend keeps its KV cache in F32, not {}", dtype_name(cfg.dtype)));
  }
  if (num_blocks < 2 || cfg.block_size <= 0) {
    return invalid_argument(
        fmt::format("cannot allocate {} KV blocks of {} tokens", num_blocks, cfg.block_size));
  }
  const ModelConfig& c = config();
  const size_t bytes = static_cast<size_t>(num_blocks) * static_cast<size_t>(cfg.block_size) *
                       static_cast<size_t>(c.kv_size()) * sizeof(float);
  k_cache_.clear();
  v_cache_.clear();
  try {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      k_cache_.emplace_back(bytes);
      v_cache_.emplace_back(bytes);
      // Zeroed so that reading an unwritten slot (a bug) gives zeros, never stale data.
      std::memset(k_cache_.back().data(), 0, bytes);
      std::memset(v_cache_.back().data(), 0, bytes);
    }
  } catch (const std::bad_alloc&) {
    k_cache_.clear();
    v_cache_.clear();
    return resource_exhausted(
        fmt::format("cannot allocate {} KV blocks ({} bytes per layer)", num_blocks, 2 * bytes));
  }
  num_blocks_ = num_blocks;
  block_size_ = cfg.block_size;
  return ok_status();
}

Status CpuModelRunner::validate_batch(const ForwardBatch& b) const {
  auto bad = [](std::string m) { return invalid_argument("forward batch: " + std::move(m)); };
  if (num_blocks_ == 0) return failed_precondition("forward before allocate_kv_cache");
  const int32_t n = b.num_tokens();
  const int32_t s = b.num_seqs();
  if (b.positions.size() != static_cast<size_t>(n) ||
      b.slot_mapping.size() != static_cast<size_t>(n)) {
    return bad("positions and slot_mapping must have one entry per token");
  }
  if (b.query_start_loc.size() != static_cast<size_t>(s) + 1 || b.query_start_loc[0] != 0 ||
      b.query_start_loc[static_cast<size_t>(s)] != n) {
    return bad("query_start_loc must have num_seqs + 1 entries from 0 to num_tokens");
  }
  if (b.block_table_indptr.size() != static_cast<size_t>(s) + 1 || b.block_table_indptr[0] != 0 ||
      b.block_table_indptr[static_cast<size_t>(s)] != static_cast<int32_t>(b.block_table.size())) {
    return bad("block_table_indptr must have num_seqs + 1 entries from 0 to the table size");
  }
  const int64_t vocab = config().vocab_size;
  for (int32_t t = 0; t < n; ++t) {
    if (b.token_ids[t] < 0 || b.token_ids[t] >= vocab) {
      return bad(
          fmt::format("token id {} is outside the vocabulary [0, {})", b.token_ids[t], vocab));
    }
    if (b.positions[t] < 0) return bad(fmt::format("negative position {}", b.positions[t]));
    if (b.slot_mapping[t] < -1 || b.slot_mapping[t] >= num_blocks_ * block_size_) {
      return bad(fmt::format("slot {} is outside the cache ({} slots)", b.slot_mapping[t],
                             num_blocks_ * block_size_));
    }
  }
  for (int32_t i = 0; i < s; ++i) {
    const int32_t q_len = b.query_start_loc[i + 1] - b.query_start_loc[i];
    const int32_t seq_len = b.seq_lens[i];
    if (q_len < 0 || seq_len < q_len) {
      return bad(
          fmt::format("sequence {}: {} query tokens for a KV length of {}", i, q_len, seq_len));
    }
    const int32_t blocks = b.block_table_indptr[i + 1] - b.block_table_indptr[i];
    if (blocks < 0 || static_cast<int64_t>(blocks) * block_size_ < seq_len) {
      return bad(fmt::format("sequence {}: {} blocks cannot hold {} tokens", i, blocks, seq_len));
    }
    for (int32_t j = b.block_table_indptr[i]; j < b.block_table_indptr[i + 1]; ++j) {
      if (b.block_table[j] < 0 || b.block_table[j] >= num_blocks_) {
        return bad(fmt::format("block id {} is outside the cache ({} blocks)", b.block_table[j],
                               num_blocks_));
      }
    }
  }
  for (int32_t idx : b.logits_indices) {
    if (idx < 0 || idx >= n) return bad(fmt::format("logits index {} is not a token row", idx));
  }
  return ok_status();
}

void CpuModelRunner::run_layer(int64_t l, const ForwardBatch& batch) {
  const ModelConfig& c = config();
  const Layer& L = layers_[static_cast<size_t>(l)];
  const int64_t n = batch.num_tokens();
  const int64_t hidden = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  const int64_t qkv_dim = q + 2 * kv, inter = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  ThreadPool* pool = &pool_;

  // Pre-attention norm: layer 0 normalises the embeddings; later layers first add the
  // previous MLP output into the residual stream.
  if (l == 0) {
    cpu::rms_norm(residual_.data(), L.input_norm.data(), n, hidden, eps, hidden_.data(), pool);
  } else {
    cpu::add_rms_norm(residual_.data(), delta_.data(), L.input_norm.data(), n, hidden, eps,
                      hidden_.data(), pool);
  }
  float* qp = qkv_.data();
  float* kp = qp + q;
  float* vp = kp + kv;
  auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  cpu::linear(hidden_.data(), n, hidden, L.q_proj, bias(L.q_bias), qp, qkv_dim, pool);
  cpu::linear(hidden_.data(), n, hidden, L.k_proj, bias(L.k_bias), kp, qkv_dim, pool);
  cpu::linear(hidden_.data(), n, hidden, L.v_proj, bias(L.v_bias), vp, qkv_dim, pool);
  if (c.qk_norm) {
    cpu::head_rms_norm(qp, n, qkv_dim, c.num_attention_heads, c.head_dim, L.q_norm.data(), eps,
                       pool);
    cpu::head_rms_norm(kp, n, qkv_dim, c.num_key_value_heads, c.head_dim, L.k_norm.data(), eps,
                       pool);
  }
  cpu::rope_neox(qp, n, qkv_dim, c.num_attention_heads, c.head_dim, batch.positions.data(),
                 inv_freq_.data(), pool);
  cpu::rope_neox(kp, n, qkv_dim, c.num_key_value_heads, c.head_dim, batch.positions.data(),
                 inv_freq_.data(), pool);

  float* k_cache = k_cache_[static_cast<size_t>(l)].as<float>();
  float* v_cache = v_cache_[static_cast<size_t>(l)].as<float>();
  cpu::kv_cache_write(kp, qkv_dim, vp, qkv_dim, n, kv, batch.slot_mapping.data(),
                      num_blocks_ * block_size_, k_cache, v_cache);
  cpu::PagedAttentionParams ap;
  ap.q = qp;
  ap.q_stride = qkv_dim;
  ap.k_cache = k_cache;
  ap.v_cache = v_cache;
  ap.out = attn_.data();
  ap.out_stride = q;
  ap.num_blocks = num_blocks_;
  ap.num_heads = static_cast<int>(c.num_attention_heads);
  ap.num_kv_heads = static_cast<int>(c.num_key_value_heads);
  ap.head_dim = static_cast<int>(c.head_dim);
  ap.block_size = block_size_;
  ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  ap.sliding_window = static_cast<int32_t>(c.sliding_window.value_or(0));
  ap.num_seqs = batch.num_seqs();
  ap.query_start_loc = batch.query_start_loc.data();
  ap.seq_lens = batch.seq_lens.data();
  ap.block_table_indptr = batch.block_table_indptr.data();
  ap.block_table = batch.block_table.data();
  cpu::paged_attention(ap, pool);
  cpu::linear(attn_.data(), n, q, L.o_proj, bias(L.o_bias), delta_.data(), hidden, pool);

  cpu::add_rms_norm(residual_.data(), delta_.data(), L.post_attention_norm.data(), n, hidden, eps,
                    hidden_.data(), pool);
  cpu::linear(hidden_.data(), n, hidden, L.gate_proj, nullptr, gate_up_.data(), 2 * inter, pool);
  cpu::linear(hidden_.data(), n, hidden, L.up_proj, nullptr, gate_up_.data() + inter, 2 * inter,
              pool);
  cpu::silu_mul(gate_up_.data(), n, inter, act_.data(), pool);
  cpu::linear(act_.data(), n, inter, L.down_proj, nullptr, delta_.data(), hidden, pool);
}

Status CpuModelRunner::forward(const ForwardBatch& batch, TensorView* logits) {
  KITE_RETURN_IF_ERROR(validate_batch(batch));
  const ModelConfig& c = config();
  const int64_t n = batch.num_tokens();
  const int64_t hidden = c.hidden_size;
  auto grow = [](std::vector<float>* v, int64_t size) {
    if (v->size() < static_cast<size_t>(size)) v->resize(static_cast<size_t>(size));
  };
  grow(&residual_, n * hidden);
  grow(&hidden_, n * hidden);
  grow(&delta_, n * hidden);
  grow(&qkv_, n * (c.q_size() + 2 * c.kv_size()));
  grow(&attn_, n * c.q_size());
  grow(&gate_up_, n * 2 * c.intermediate_size);
  grow(&act_, n * c.intermediate_size);

  if (n > 0) {
    cpu::embedding(embed_tokens_, batch.token_ids.data(), n, residual_.data(), &pool_);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) run_layer(l, batch);
  }

  // Final norm and LM head only for the rows that need logits.
  const int64_t m = batch.num_logits();
  grow(&last_, m * hidden);
  logits_.resize(static_cast<size_t>(m * c.vocab_size));
  for (int64_t r = 0; r < m; ++r) {
    const int64_t t = batch.logits_indices[static_cast<size_t>(r)];
    for (int64_t j = 0; j < hidden; ++j) {
      last_[r * hidden + j] = residual_[t * hidden + j] + delta_[t * hidden + j];
    }
  }
  cpu::rms_norm(last_.data(), final_norm_.data(), m, hidden, static_cast<float>(c.rms_norm_eps),
                last_.data(), &pool_);
  cpu::linear(last_.data(), m, hidden, lm_head_, nullptr, logits_.data(), c.vocab_size, &pool_);
  *logits = TensorView(logits_.data(), DType::kF32, {m, c.vocab_size});
  return ok_status();
}

Status CpuModelRunner::sample(const TensorView& logits, const SamplingBatch& params,
                              SamplerOutput* out) {
  if (logits.dtype != DType::kF32 || logits.ndim != 2 || logits.device != Device::kCpu) {
    return invalid_argument("sample: logits must be CPU F32 [num_rows, vocab]");
  }
  const int64_t rows = logits.dim(0);
  const int64_t vocab = logits.dim(1);
  if (params.num_rows() != rows) {
    return invalid_argument(
        fmt::format("sample: {} parameter rows for {} logits rows", params.num_rows(), rows));
  }
  return cpu_sample(logits.as<float>(), vocab, params, out, &pool_);
}

Status CpuModelRunner::logits_to_host(const TensorView& logits, float* out) {
  if (logits.dtype != DType::kF32 || logits.device != Device::kCpu) {
    return invalid_argument("logits_to_host: logits must be CPU F32");
  }
  std::memcpy(out, logits.data, static_cast<size_t>(logits.numel()) * sizeof(float));
  return ok_status();
}

}  // namespace kite
