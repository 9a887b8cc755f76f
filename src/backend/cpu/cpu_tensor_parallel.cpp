// CpuModelRunner's tensor-parallel half: rank 0's calls sent to the other ranks, the workers'
// loop, and the collectives inside a step (vocab-parallel embedding, logits all-gather). The
// row-parallel all-reduce is in run_linear.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "core/logging.h"
#include "parallel/world.h"
#include "runtime/worker_protocol.h"

namespace kite {
namespace {

enum class TpCall : int32_t { kShutdown = 0, kNumKvBlocks = 1, kAllocateKv = 2, kForward = 3 };

// What rank 0 broadcasts first for each call: fixed size, so that workers can wait for it.
struct TpCall0 {
  TpCall call = TpCall::kShutdown;
  int32_t block_size = 0;
  int32_t kv_dtype = 0;
  int64_t value = 0;  // kNumKvBlocks: memory budget (bytes); kAllocateKv: blocks
  BatchHeader batch;  // kForward
};

KvCacheConfig kv_config(const TpCall0& c) {
  KvCacheConfig cfg;
  cfg.block_size = c.block_size;
  cfg.dtype = static_cast<DType>(c.kv_dtype);
  cfg.memory_budget_bytes = c.value;
  return cfg;
}

}  // namespace

Result<int64_t> CpuModelRunner::determine_num_kv_blocks(const KvCacheConfig& cfg) {
  if (tensor_parallel()) {
    TpCall0 c;
    c.call = TpCall::kNumKvBlocks;
    c.block_size = cfg.block_size;
    c.value = cfg.memory_budget_bytes;
    KITE_RETURN_IF_ERROR(comm_->broadcast(&c, sizeof(c), 0));
  }
  int64_t blocks = 0;
  const Status local = local_num_kv_blocks(cfg, &blocks);
  if (!tensor_parallel()) {
    KITE_RETURN_IF_ERROR(local);
    return blocks;
  }
  // The cache every rank can hold: the minimum over ranks (-1 = a rank's own error).
  const int64_t mine = local.ok() ? blocks : -1;
  std::vector<int64_t> all(static_cast<size_t>(comm_->world_size()));
  KITE_RETURN_IF_ERROR(comm_->all_gather(&mine, sizeof(mine), all.data()));
  KITE_RETURN_IF_ERROR(local);
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r] < 0) return resource_exhausted(fmt::format("rank {} cannot size its KV cache", r));
    blocks = std::min(blocks, all[r]);
  }
  return blocks;
}

Status CpuModelRunner::allocate_kv_cache(int64_t num_blocks, const KvCacheConfig& cfg) {
  if (!tensor_parallel()) return local_allocate_kv_cache(num_blocks, cfg);
  TpCall0 c;
  c.call = TpCall::kAllocateKv;
  c.block_size = cfg.block_size;
  c.kv_dtype = static_cast<int32_t>(cfg.dtype);
  c.value = num_blocks;
  KITE_RETURN_IF_ERROR(comm_->broadcast(&c, sizeof(c), 0));
  return parallel::agree(*comm_, local_allocate_kv_cache(num_blocks, cfg), "allocate_kv_cache");
}

Status CpuModelRunner::send_forward(const ForwardBatch& batch) {
  TpCall0 c;
  c.call = TpCall::kForward;
  c.batch = batch_header(batch);
  KITE_RETURN_IF_ERROR(comm_->broadcast(&c, sizeof(c), 0));
  return send_batch_vectors(*comm_, batch);
}

CpuModelRunner::~CpuModelRunner() {
  if (num_stages_ > 1 && stage_ == num_stages_ - 1 && tp_comm_->rank() == 0 && num_steps_ > 0) {
    KITE_LOG_INFO("pipeline stage {} of {}: {} steps in {} micro-batches", stage_ + 1, num_stages_,
                  num_steps_, num_micro_batches_);
  }
  if (tensor_parallel() && comm_->rank() == 0 && !workers_released_) {
    TpCall0 c;  // kShutdown
    const Status s = comm_->broadcast(&c, sizeof(c), 0);
    if (!s.ok()) KITE_LOG_WARN("releasing the tensor-parallel workers: {}", s.to_string());
    parallel::set_workers_released(true);
  }
}

Status CpuModelRunner::run_worker() {
  if (!tensor_parallel() || comm_->rank() == 0) {
    return failed_precondition("run_worker is for ranks other than 0 of a tensor-parallel world");
  }
  const InjectedFault fault = injected_fault(comm_->rank());
  int step = 0;
  ForwardBatch batch;
  std::vector<int32_t> payload;
  for (;;) {
    TpCall0 c;
    KITE_RETURN_IF_ERROR(comm_->broadcast(&c, sizeof(c), 0, parallel::Wait::kUnbounded));
    switch (c.call) {
      case TpCall::kShutdown:
        return ok_status();
      case TpCall::kNumKvBlocks: {
        int64_t blocks = 0;
        const Status local = local_num_kv_blocks(kv_config(c), &blocks);
        if (!local.ok()) KITE_LOG_ERROR("rank {}: {}", comm_->rank(), local.to_string());
        const int64_t mine = local.ok() ? blocks : -1;
        std::vector<int64_t> all(static_cast<size_t>(comm_->world_size()));
        KITE_RETURN_IF_ERROR(comm_->all_gather(&mine, sizeof(mine), all.data()));
        break;
      }
      case TpCall::kAllocateKv: {
        KvCacheConfig cfg = kv_config(c);
        KITE_RETURN_IF_ERROR(
            parallel::agree(*comm_, local_allocate_kv_cache(c.value, cfg), "allocate_kv_cache"));
        break;
      }
      case TpCall::kForward: {
        apply_injected_fault(fault, ++step);
        KITE_RETURN_IF_ERROR(receive_batch(*comm_, c.batch, &batch, &payload));
        KITE_RETURN_IF_ERROR(local_forward(batch));
        break;
      }
      default:
        return internal_error(fmt::format("rank {}: unknown call {} from rank 0", comm_->rank(),
                                          static_cast<int32_t>(c.call)));
    }
  }
}

// Vocab-parallel embedding: this rank's rows of the table, zeros for the other ranks' tokens,
// summed over ranks (exactly one rank contributes each token's row).
void CpuModelRunner::embed_vocab_shard(const Op& op, const ForwardBatch& batch) {
  const int64_t n = batch.num_tokens();
  const int64_t d = graph_.value(op.out).width;
  float* out = buf(op.out);
  std::fill(out, out + n * d, 0.f);
  local_ids_.clear();
  for (int64_t t = 0; t < n; ++t) {
    const int64_t id = batch.token_ids[static_cast<size_t>(t)] - tp_.vocab_begin;
    if (id >= 0 && id < tp_.vocab_rows) local_ids_.push_back(static_cast<int32_t>(id));
  }
  local_rows_.resize(local_ids_.size() * static_cast<size_t>(d));
  cpu::embedding(weight(op.weight).parts[0], local_ids_.data(),
                 static_cast<int64_t>(local_ids_.size()), local_rows_.data(), &pool_);
  size_t next = 0;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t id = batch.token_ids[static_cast<size_t>(t)] - tp_.vocab_begin;
    if (id < 0 || id >= tp_.vocab_rows) continue;
    std::memcpy(out + t * d, local_rows_.data() + next * static_cast<size_t>(d),
                static_cast<size_t>(d) * sizeof(float));
    ++next;
  }
  if (step_status_.ok()) step_status_ = tp_comm_->all_reduce_sum(out, n * d);
  if (op.scale != 1.f) {
    for (int64_t i = 0; i < n * d; ++i) out[i] *= op.scale;
  }
}

// logits [rows, vocab_stride] of every rank -> [rows, vocab] on rank 0 (column block r from rank
// r; the last rank's padding columns dropped).
Status CpuModelRunner::gather_logits(int64_t rows) {
  const int64_t stride = tp_.vocab_stride;
  const int size = tp_comm_->world_size();
  gathered_.resize(static_cast<size_t>(size * rows * stride));
  KITE_RETURN_IF_ERROR(tp_comm_->all_gather(
      buf(graph_.logits), rows * stride * static_cast<int64_t>(sizeof(float)), gathered_.data()));
  if (tp_comm_->rank() != 0) return ok_status();
  const int64_t vocab = config().vocab_size;
  logits_full_.resize(static_cast<size_t>(rows * vocab));
  for (int r = 0; r < size; ++r) {
    const int64_t begin = r * stride;
    const int64_t cols = std::min(stride, vocab - begin);
    if (cols <= 0) continue;
    for (int64_t i = 0; i < rows; ++i) {
      std::memcpy(logits_full_.data() + i * vocab + begin,
                  gathered_.data() + (static_cast<int64_t>(r) * rows + i) * stride,
                  static_cast<size_t>(cols) * sizeof(float));
    }
  }
  return ok_status();
}

// The layer an op belongs to: from its weight's name ("model.layers.12.mlp.down_proj"), its KV
// layer, or the op before it; -1 before the first layer (embedding), num_layers after the last
// (final norm, LM head).
namespace {
int op_layer(const ModelGraph& g, const Op& op, int previous, int num_layers) {
  if (op.weight != kNoWeight) {
    const std::string& name = g.weight(op.weight).name;
    const size_t at = name.find("layers.");
    if (at != std::string::npos) return std::atoi(name.c_str() + at + 7);
    return op.kind == OpKind::kEmbedding ? -1 : num_layers;
  }
  if (op.layer >= 0) return op.layer;
  return previous;
}
}  // namespace

Status CpuModelRunner::plan_stages() {
  const int num_layers = static_cast<int>(local_.num_hidden_layers);
  std::vector<int> stage_of(ops_.size());
  int layer = -1;
  for (size_t i = 0; i < ops_.size(); ++i) {
    layer = op_layer(graph_, ops_[i], layer, num_layers);
    // Layers split evenly (the first stages take one more when they do not divide).
    stage_of[i] = layer < 0 ? 0
                  : layer >= num_layers
                      ? num_stages_ - 1
                      : static_cast<int>(static_cast<int64_t>(layer) * num_stages_ / num_layers);
    if (i > 0 && stage_of[i] < stage_of[i - 1]) {
      return internal_error("the op list does not split into contiguous pipeline stages");
    }
  }
  op_begin_ =
      static_cast<size_t>(std::find(stage_of.begin(), stage_of.end(), stage_) - stage_of.begin());
  op_end_ = static_cast<size_t>(
      std::find_if(stage_of.begin(), stage_of.end(), [&](int s) { return s > stage_; }) -
      stage_of.begin());
  // Values read by ops [k, end) before any of them writes them: what a stage starting at k needs.
  auto live_in = [&](size_t k) {
    std::vector<int> state(graph_.values.size(), 0);  // 0 unseen, 1 read first, 2 written first
    auto read = [&](ValueId v) {
      if (v != kNoValue && state[static_cast<size_t>(v)] == 0) state[static_cast<size_t>(v)] = 1;
    };
    auto write = [&](ValueId v) {
      if (v != kNoValue && state[static_cast<size_t>(v)] == 0) state[static_cast<size_t>(v)] = 2;
    };
    for (size_t j = k; j < ops_.size(); ++j) {
      const Op& op = ops_[j];
      if (op.kind != OpKind::kEmbedding) read(op.in);
      read(op.delta);
      write(op.out);
    }
    std::vector<ValueId> out;
    for (size_t v = 0; v < state.size(); ++v) {
      if (state[v] == 1) out.push_back(static_cast<ValueId>(v));
    }
    return out;
  };
  if (stage_ > 0) recv_values_ = live_in(op_begin_);
  if (stage_ < num_stages_ - 1) send_values_ = live_in(op_end_);
  own_kv_layer_.assign(own_kv_layer_.size(), false);
  for (size_t i = op_begin_; i < op_end_; ++i) {
    const Op& op = ops_[i];
    if ((op.kind == OpKind::kAttention || op.kind == OpKind::kRopeKvWrite) && op.layer >= 0) {
      own_kv_layer_[static_cast<size_t>(op.layer)] = true;
    }
  }
  return ok_status();
}

// Pipeline parallel: the activations a stage hands to the next, from the rank of the same
// tensor-parallel position in the previous stage / to the one in the next.
Status CpuModelRunner::exchange_stage_values(const ForwardBatch& batch, bool receive) {
  const int tp = comm_->world_size() / num_stages_;
  const int peer = comm_->rank() + (receive ? -tp : tp);
  for (ValueId v : receive ? recv_values_ : send_values_) {
    const ValueDecl& d = graph_.value(v);
    const int64_t rows = d.rows == RowSpace::kLogits ? batch.num_logits() : batch.num_tokens();
    const int64_t bytes = rows * d.width * static_cast<int64_t>(sizeof(float));
    if (bytes == 0) continue;
    KITE_RETURN_IF_ERROR(receive ? comm_->recv(buf(v), bytes, peer)
                                 : comm_->send(buf(v), bytes, peer));
  }
  return ok_status();
}

}  // namespace kite
