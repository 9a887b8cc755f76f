#include "backend/cpu/cpu_model_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backend/cpu/ops.h"
#include "core/check.h"
#include "models/fusion.h"
#include "models/model_weights.h"
#include "models/registry.h"
#include "sampling/cpu_sampler.h"

namespace kite {

CpuModelRunner::CpuModelRunner(std::shared_ptr<const WeightStore> weights, int num_threads)
    : weights_(std::move(weights)), pool_(num_threads) {}

Result<std::unique_ptr<CpuModelRunner>> CpuModelRunner::create(
    std::shared_ptr<const WeightStore> weights, const CpuRunnerOptions& options) {
  if (options.kv_cache_dtype != DType::kF32 && options.kv_cache_dtype != DType::kF8E4M3) {
    return unimplemented(
        fmt::format("the CPU backend keeps its KV cache in F32 or FP8 E4M3, not {}",
                    dtype_name(options.kv_cache_dtype)));
  }
  std::unique_ptr<CpuModelRunner> r(new CpuModelRunner(std::move(weights), options.num_threads));
  r->options_ = options;
  r->comm_ = options.comm;
  if (options.kv_cache_dtype == DType::kF8E4M3) {
    KITE_RETURN_IF_ERROR(
        complete_kv_cache_scales(&r->options_.kv_scales, r->config().num_hidden_layers));
  }
  KITE_RETURN_IF_ERROR(r->init());
  return r;
}

Status CpuModelRunner::init() {
  const WeightStore& w = *weights_;
  const ModelConfig& c = w.config();
  KITE_ASSIGN_OR_RETURN(graph_, build_model_graph(c));
  TensorLookup lookup = [&w](std::string_view name) { return w.find(name); };
  KITE_ASSIGN_OR_RETURN(ModelWeights bound, bind_weights(graph_, lookup));
  KITE_ASSIGN_OR_RETURN(weights_cpu_, cpu::make_cpu_weights(bound, options_.fp8_online));
  local_ = c;
  tp_.num_q_heads = c.num_attention_heads;
  tp_.num_kv_heads = c.num_key_value_heads;
  tp_.intermediate = c.intermediate_size;
  tp_.vocab_rows = tp_.vocab_stride = c.vocab_size;
  own_kv_layer_.assign(static_cast<size_t>(c.num_hidden_layers), true);
  if (tensor_parallel()) {
    if (options_.fused_ops) return unimplemented("fused_ops with several ranks");
    num_stages_ = options_.pipeline_parallel_size;
    const int world = comm_->world_size();
    if (num_stages_ < 1 || world % num_stages_ != 0) {
      return invalid_argument(fmt::format("pipeline_parallel_size {} does not divide the {} ranks",
                                          num_stages_, world));
    }
    if (num_stages_ > c.num_hidden_layers) {
      return invalid_argument(fmt::format("pipeline_parallel_size {} exceeds the model's {} layers",
                                          num_stages_, c.num_hidden_layers));
    }
    const int tp = world / num_stages_;
    stage_ = comm_->rank() / tp;
    const int tp_rank = comm_->rank() % tp;
    if (num_stages_ > 1) {
      KITE_ASSIGN_OR_RETURN(tp_comm_, comm_->split(stage_, tp_rank));
    } else {
      tp_comm_ = comm_;
    }
    if (tp > 1) {
      KITE_ASSIGN_OR_RETURN(tp_, cpu::make_tp_layout(c, tp_rank, tp));
      KITE_RETURN_IF_ERROR(cpu::shard_weights(graph_, c, tp_, &weights_cpu_));
      // The rank's graph: the same ops and weights, with its widths (heads, intermediate rows,
      // logits of vocab_stride columns).
      local_ = cpu::local_config(c, tp_);
      const size_t num_weights = graph_.weights.size();
      KITE_ASSIGN_OR_RETURN(graph_, build_model_graph(local_));
      if (graph_.weights.size() != num_weights) {
        return internal_error("a rank's graph declares other weights than the model's");
      }
    }
  }
  const float* freq_factors = nullptr;
  if (graph_.rope_freqs != kNoWeight && weight(graph_.rope_freqs).present) {
    freq_factors = weight(graph_.rope_freqs).vec.data();
  }
  for (size_t i = 0; i < graph_.ropes.size(); ++i) {
    const RopeDecl& r = graph_.ropes[i];
    inv_freq_.push_back(
        cpu::rope_inv_freq(r.rotary_dim, r.theta, r.scaling, i == 0 ? freq_factors : nullptr));
    inv_freq_long_.push_back(r.scaling.type == RopeScaling::Type::kLongRope
                                 ? cpu::rope_inv_freq_long(r.rotary_dim, r.theta, r.scaling)
                                 : std::vector<double>());
  }
  for (const MoeDecl& m : graph_.moes) {
    std::vector<cpu::MoeExpert> experts;
    for (size_t e = 0; e < m.gate_up.size(); ++e) {
      experts.push_back(cpu::MoeExpert{weight(m.gate_up[e]).parts, &weight(m.down[e]).parts[0]});
    }
    moe_experts_.push_back(std::move(experts));
  }
  values_.resize(graph_.values.size());
  if (options_.fused_ops) {
    FusionOptions all;
    all.residual_epilogue = all.norm_prologue = all.rope_epilogue = all.silu_epilogue = true;
    ops_ = fuse_ops(graph_, all);
  } else {
    ops_ = graph_.ops;
  }
  op_end_ = ops_.size();
  if (num_stages_ > 1) KITE_RETURN_IF_ERROR(plan_stages());
  // Pooling reads the LM head's input: the final norm's rows (not there when the norm is
  // fused into the LM head as its prologue).
  final_hidden_ = lm_head_input(graph_, ops_);
  return ok_status();
}

int64_t CpuModelRunner::kv_block_bytes(int block_size) const {
  const ModelConfig& c = local_;  // this rank's KV heads
  const auto layers = std::count(own_kv_layer_.begin(), own_kv_layer_.end(), true);
  return 2 * static_cast<int64_t>(layers) * static_cast<int64_t>(block_size) *
         dtype_bytes(options_.kv_cache_dtype, c.kv_size());
}

Status CpuModelRunner::local_num_kv_blocks(const KvCacheConfig& cfg, int64_t* num_blocks) {
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
  *num_blocks = blocks;
  return ok_status();
}

Status CpuModelRunner::local_allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) {
  if (num_blocks < 2 || cfg.block_size <= 0) {
    return invalid_argument(
        fmt::format("cannot allocate {} KV blocks of {} tokens", num_blocks, cfg.block_size));
  }
  const ModelConfig& c = local_;
  const size_t bytes = static_cast<size_t>(num_blocks) * static_cast<size_t>(cfg.block_size) *
                       static_cast<size_t>(dtype_bytes(options_.kv_cache_dtype, c.kv_size()));
  k_cache_.clear();
  v_cache_.clear();
  try {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      if (!own_kv_layer_[static_cast<size_t>(l)]) {  // another pipeline stage's layer
        k_cache_.emplace_back();
        v_cache_.emplace_back();
        continue;
      }
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

void CpuModelRunner::run_op(const Op& op, const ForwardBatch& batch) {
  const ModelConfig& c = local_;
  ThreadPool* pool = &pool_;
  const int64_t n = batch.num_tokens();
  const int64_t m = batch.num_logits();
  auto width = [&](ValueId v) { return graph_.value(v).width; };
  switch (op.kind) {
    case OpKind::kEmbedding: {
      float* out = buf(op.out);
      if (tp_split()) {
        embed_vocab_shard(op, batch);
        return;
      }
      cpu::embedding(weight(op.weight).parts[0], batch.token_ids.data(), n, out, pool);
      if (op.scale != 1.f) {
        for (int64_t i = 0; i < n * width(op.out); ++i) out[i] *= op.scale;
      }
      return;
    }
    case OpKind::kRmsNorm: {
      const int64_t d = width(op.in);
      const float* w = weight(op.weight).vec.data();
      float* residual = buf(op.in);
      if (op.gather_logits) {
        // Rows of the logits positions only; the residual stream is not written.
        float* out = buf(op.out);
        const float* delta = op.delta != kNoValue ? buf(op.delta) : nullptr;
        for (int64_t r = 0; r < m; ++r) {
          const int64_t t = batch.logits_indices[static_cast<size_t>(r)];
          for (int64_t j = 0; j < d; ++j) {
            out[r * d + j] = residual[t * d + j] + (delta != nullptr ? delta[t * d + j] : 0.f);
          }
        }
        cpu::rms_norm(out, w, m, d, op.eps, out, pool);
      } else if (op.delta == kNoValue) {
        cpu::rms_norm(residual, w, n, d, op.eps, buf(op.out), pool);
      } else {
        cpu::add_rms_norm(residual, buf(op.delta), w, n, d, op.eps, buf(op.out), pool);
      }
      return;
    }
    case OpKind::kLinear:
      run_linear(op, batch);
      return;
    case OpKind::kRopeKvWrite:
      rope_kv_write(buf(op.in), width(op.in), op.layer, op.weight, op.weight2, op.eps, op.rope,
                    batch);
      return;
    case OpKind::kAttention: {
      cpu::PagedAttentionParams ap;
      ap.q = buf(op.in);
      ap.q_stride = width(op.in);
      const auto layer = static_cast<size_t>(op.layer);
      if (options_.kv_cache_dtype == DType::kF8E4M3) {
        ap.k_cache_fp8 = k_cache_[layer].as<uint8_t>();
        ap.v_cache_fp8 = v_cache_[layer].as<uint8_t>();
        ap.k_scale = options_.kv_scales.k[layer];
        ap.v_scale = options_.kv_scales.v[layer];
      } else {
        ap.k_cache = k_cache_[layer].as<float>();
        ap.v_cache = v_cache_[layer].as<float>();
      }
      ap.out = buf(op.out);
      ap.out_stride = width(op.out);
      ap.num_blocks = num_blocks_;
      ap.num_heads = static_cast<int>(c.num_attention_heads);
      ap.num_kv_heads = static_cast<int>(c.num_key_value_heads);
      ap.head_dim = static_cast<int>(c.head_dim);
      ap.block_size = block_size_;
      ap.scale = op.scale;
      ap.sliding_window = op.sliding_window;
      ap.softcap = op.softcap;
      ap.num_seqs = batch.num_seqs();
      ap.query_start_loc = batch.query_start_loc.data();
      ap.seq_lens = batch.seq_lens.data();
      ap.block_table_indptr = batch.block_table_indptr.data();
      ap.block_table = batch.block_table.data();
      cpu::paged_attention(ap, pool);
      return;
    }
    case OpKind::kSiluMul:
      cpu::silu_mul(buf(op.in), n, width(op.out), buf(op.out), pool);
      return;
    case OpKind::kGeluTanhMul:
      cpu::gelu_tanh_mul(buf(op.in), n, width(op.out), buf(op.out), pool);
      return;
    case OpKind::kSoftcap: {
      const int64_t rows = graph_.value(op.in).rows == RowSpace::kLogits ? m : n;
      cpu::softcap(buf(op.in), rows * width(op.in), op.softcap, buf(op.out));
      return;
    }
    case OpKind::kMoe: {
      const auto index = static_cast<size_t>(op.moe);
      const MoeDecl& moe = graph_.moes[index];
      cpu::moe(buf(op.in), n, width(op.in), moe.intermediate, weight(moe.router).parts,
               moe_experts_[index], moe.top_k, moe.renormalize, buf(op.out), &moe_scratch_, pool);
      return;
    }
  }
  KITE_CHECK(false) << "unknown op";
}

void CpuModelRunner::rope_kv_write(float* qkv, int64_t stride, int layer, WeightId q_norm,
                                   WeightId k_norm, float eps, int rope,
                                   const ForwardBatch& batch) {
  const ModelConfig& c = local_;
  ThreadPool* pool = &pool_;
  const int64_t n = batch.num_tokens();
  const int64_t q = c.q_size(), kv = c.kv_size();
  float* qp = qkv;
  float* kp = qp + q;
  float* vp = kp + kv;
  if (q_norm != kNoWeight) {
    cpu::head_rms_norm(qp, n, stride, c.num_attention_heads, c.head_dim, weight(q_norm).vec.data(),
                       eps, pool);
    cpu::head_rms_norm(kp, n, stride, c.num_key_value_heads, c.head_dim, weight(k_norm).vec.data(),
                       eps, pool);
  }
  const RopeDecl& r = graph_.ropes[static_cast<size_t>(rope)];
  const std::vector<double>& inv_long = inv_freq_long_[static_cast<size_t>(rope)];
  const auto factor = static_cast<float>(r.scaling.attention_factor);
  auto rotate = [&](int64_t begin, int64_t count, const double* inv_freq) {
    const int32_t* pos = batch.positions.data() + begin;
    cpu::rope_neox(qp + begin * stride, count, stride, c.num_attention_heads, c.head_dim, pos,
                   inv_freq, pool, r.rotary_dim, factor);
    cpu::rope_neox(kp + begin * stride, count, stride, c.num_key_value_heads, c.head_dim, pos,
                   inv_freq, pool, r.rotary_dim, factor);
  };
  if (inv_long.empty()) {
    rotate(0, n, inv_freq_[static_cast<size_t>(rope)].data());
  } else {
    // LongRoPE: a sequence's tokens of this step take the long factors when the sequence
    // reaches past original_max_position_embeddings in it — transformers' rule per forward
    // call (max(position_ids) + 1 > original), applied per sequence.
    for (int s = 0; s < batch.num_seqs(); ++s) {
      const int32_t begin = batch.query_start_loc[static_cast<size_t>(s)];
      const int32_t end = batch.query_start_loc[static_cast<size_t>(s) + 1];
      if (begin == end) continue;
      const bool is_long = batch.positions[static_cast<size_t>(end - 1)] + int64_t{1} >
                           r.scaling.original_max_position_embeddings;
      rotate(begin, end - begin,
             is_long ? inv_long.data() : inv_freq_[static_cast<size_t>(rope)].data());
    }
  }
  const auto l = static_cast<size_t>(layer);
  if (options_.kv_cache_dtype == DType::kF8E4M3) {
    cpu::kv_cache_write_fp8(kp, stride, vp, stride, n, kv, batch.slot_mapping.data(),
                            num_blocks_ * block_size_, options_.kv_scales.k[l],
                            options_.kv_scales.v[l], k_cache_[l].as<uint8_t>(),
                            v_cache_[l].as<uint8_t>());
  } else {
    cpu::kv_cache_write(kp, stride, vp, stride, n, kv, batch.slot_mapping.data(),
                        num_blocks_ * block_size_, k_cache_[l].as<float>(),
                        v_cache_[l].as<float>());
  }
}

void CpuModelRunner::run_linear(const Op& op, const ForwardBatch& batch) {
  ThreadPool* pool = &pool_;
  const cpu::CpuWeight& w = weight(op.weight);
  const ValueDecl& in = graph_.value(op.in);
  int64_t rows = in.rows == RowSpace::kLogits ? batch.num_logits() : batch.num_tokens();
  if (op.out == graph_.logits) rows -= batch.num_pooling_rows;  // pooling rows need no logits
  if (rows == 0) return;
  const int64_t k = in.width;
  const int64_t out_rows =
      static_cast<int64_t>(std::accumulate(w.part_rows.begin(), w.part_rows.end(), int64_t{0}));
  // A fused linear computes its parts one after the other, exactly as the plain list does.
  const float* x = buf(op.in);
  if (op.prologue_norm != kNoWeight) {
    prologue_.resize(static_cast<size_t>(rows * k));
    cpu::rms_norm(x, weight(op.prologue_norm).vec.data(), rows, k, op.eps, prologue_.data(), pool);
    x = prologue_.data();
  }
  float* y = buf(op.out);
  int64_t ldy = graph_.value(op.out).width;
  if (op.epilogue != Epilogue::kNone && op.epilogue != Epilogue::kRopeKv) {
    product_.resize(static_cast<size_t>(rows * out_rows));
    y = product_.data();
    ldy = out_rows;
  }
  float* part_out = y;
  for (size_t p = 0; p < w.parts.size(); ++p) {
    const float* bias = w.bias.empty() ? nullptr : w.bias[p].data();
    cpu::linear(x, rows, k, w.parts[p], bias, part_out, ldy, pool);
    part_out += w.part_rows[p];
  }
  if (tp_split() && graph_.weight(op.weight).shard == ShardDim::kRow && step_status_.ok()) {
    // Row-parallel: each rank's product is a partial sum over its input columns.
    step_status_ = tp_comm_->all_reduce_sum(y, rows * ldy);
  }
  switch (op.epilogue) {
    case Epilogue::kNone:
      return;
    case Epilogue::kResidualAdd: {
      float* residual = buf(op.out);
      for (int64_t i = 0; i < rows * out_rows; ++i) residual[i] += product_[static_cast<size_t>(i)];
      return;
    }
    case Epilogue::kRopeKv:
      rope_kv_write(buf(op.out), ldy, op.layer, kNoWeight, kNoWeight, op.eps, op.rope, batch);
      return;
    case Epilogue::kSiluMul:
      cpu::silu_mul(product_.data(), rows, out_rows / 2, buf(op.out), pool);
      return;
  }
}

Status CpuModelRunner::forward(const ForwardBatch& batch, TensorView* logits) {
  if (num_blocks_ == 0) return failed_precondition("forward before allocate_kv_cache");
  BatchLimits limits;
  limits.vocab_size = config().vocab_size;
  limits.num_blocks = num_blocks_;
  limits.block_size = block_size_;
  KITE_RETURN_IF_ERROR(validate_batch(batch, limits));
  if (tensor_parallel()) {
    KITE_RETURN_IF_ERROR(send_forward(batch));
  }
  KITE_RETURN_IF_ERROR(local_forward(batch));
  const int64_t m = batch.num_logits();
  if (num_stages_ > 1) {
    // The last stage's first rank sends the logits (cpu_tensor_parallel.cpp).
    const int64_t rows = m - batch.num_pooling_rows;
    logits_full_.resize(static_cast<size_t>(rows * config().vocab_size));
    const int last = (num_stages_ - 1) * (comm_->world_size() / num_stages_);
    KITE_RETURN_IF_ERROR(comm_->recv(logits_full_.data(),
                                     rows * config().vocab_size * int64_t{sizeof(float)}, last));
  }
  const float* out = tp_split() || num_stages_ > 1 ? logits_full_.data() : buf(graph_.logits);
  *logits = TensorView(const_cast<float*>(out), DType::kF32,
                       {m - batch.num_pooling_rows, config().vocab_size});
  return ok_status();
}

Status CpuModelRunner::local_forward(const ForwardBatch& batch) {
  step_status_ = ok_status();
  const int64_t n = batch.num_tokens();
  const int64_t m = batch.num_logits();
  for (size_t v = 0; v < values_.size(); ++v) {
    const ValueDecl& d = graph_.values[v];
    const int64_t need = (d.rows == RowSpace::kLogits ? m : n) * d.width;
    if (values_[v].size() < static_cast<size_t>(need)) values_[v].resize(static_cast<size_t>(need));
  }
  if (batch.num_pooling_rows > 0 && final_hidden_ == kNoValue) {
    return unimplemented(
        "pooling needs the final norm's output, which the fused op list folds "
        "into the LM head");
  }
  num_pooling_rows_ = batch.num_pooling_rows;
  first_pooling_row_ = m - batch.num_pooling_rows;
  if (num_stages_ > 1) return pipeline_forward(batch);
  KITE_RETURN_IF_ERROR(run_stage(batch));
  if (tp_split()) KITE_RETURN_IF_ERROR(gather_logits(first_pooling_row_));
  return ok_status();
}

Status CpuModelRunner::run_stage(const ForwardBatch& batch) {
  const int64_t n = batch.num_tokens();
  if (stage_ > 0) KITE_RETURN_IF_ERROR(exchange_stage_values(batch, /*receive=*/true));
  for (size_t i = op_begin_; i < op_end_; ++i) {
    const Op& op = ops_[i];
    // A step without tokens computes nothing but may still ask for no logits.
    if (n == 0 && graph_.value(op.out).rows == RowSpace::kTokens) continue;
    run_op(op, batch);
  }
  KITE_RETURN_IF_ERROR(step_status_);
  if (stage_ < num_stages_ - 1) return exchange_stage_values(batch, /*receive=*/false);
  return ok_status();
}

// Micro-batch i goes to the next stage before this stage runs i + 1, so stage s + 1 computes i
// while stage s computes i + 1. Every wait is on the previous stage (a receive) or the next (a
// send, which returns once that stage has received), and the logits go to rank 0 only after
// the last part, which rank 0 (stage 0) waits for after sending all of its own: no stage ever
// waits on a later one that waits on it.
Status CpuModelRunner::pipeline_forward(const ForwardBatch& batch) {
  const bool last = stage_ == num_stages_ - 1;
  const bool sends_logits = last && tp_comm_->rank() == 0;
  const int64_t vocab = config().vocab_size;
  const int64_t rows = first_pooling_row_;  // the step's logits rows
  const int64_t row_bytes = vocab * int64_t{sizeof(float)};
  const int max_parts = batch.num_pooling_rows > 0            ? 1
                        : options_.pipeline_micro_batches > 0 ? options_.pipeline_micro_batches
                                                              : num_stages_;
  const std::vector<int32_t> bounds = micro_batch_bounds(batch, max_parts);
  const size_t parts = bounds.size() - 1;
  ++num_steps_;
  num_micro_batches_ += static_cast<int64_t>(parts);
  if (parts == 1) {
    KITE_RETURN_IF_ERROR(run_stage(batch));
    if (!last) return ok_status();
    if (tp_split()) KITE_RETURN_IF_ERROR(gather_logits(rows));
    if (!sends_logits) return ok_status();
    const float* out = tp_split() ? logits_full_.data() : buf(graph_.logits);
    return comm_->send(out, rows * row_bytes, 0);
  }
  if (sends_logits) stage_logits_.resize(static_cast<size_t>(rows * vocab));
  for (size_t i = 0; i < parts; ++i) {
    slice_batch(batch, bounds[i], bounds[i + 1], &micro_, &micro_logits_rows_);
    KITE_RETURN_IF_ERROR(run_stage(micro_));
    if (!last) continue;
    const int64_t part_rows = micro_.num_logits();
    if (tp_split()) KITE_RETURN_IF_ERROR(gather_logits(part_rows));
    if (!sends_logits) continue;
    const float* out = tp_split() ? logits_full_.data() : buf(graph_.logits);
    for (int64_t j = 0; j < part_rows; ++j) {
      std::memcpy(stage_logits_.data() + micro_logits_rows_[static_cast<size_t>(j)] * vocab,
                  out + j * vocab, static_cast<size_t>(row_bytes));
    }
  }
  if (!sends_logits) return ok_status();
  return comm_->send(stage_logits_.data(), rows * row_bytes, 0);
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

Status CpuModelRunner::hidden_states_to_host(int64_t first, int64_t num_rows, float* out) {
  if (first < 0 || num_rows < 0 || first + num_rows > num_pooling_rows_) {
    return invalid_argument(
        fmt::format("hidden_states_to_host: rows [{}, {}) outside the {} "
                    "pooling rows of the last forward",
                    first, first + num_rows, num_pooling_rows_));
  }
  const int64_t d = graph_.value(final_hidden_).width;
  std::memcpy(out, buf(final_hidden_) + (first_pooling_row_ + first) * d,
              static_cast<size_t>(num_rows * d) * sizeof(float));
  return ok_status();
}

Status CpuModelRunner::logits_to_host(const TensorView& logits, float* out) {
  if (logits.dtype != DType::kF32 || logits.device != Device::kCpu) {
    return invalid_argument("logits_to_host: logits must be CPU F32");
  }
  std::memcpy(out, logits.data, static_cast<size_t>(logits.numel()) * sizeof(float));
  return ok_status();
}

}  // namespace kite
