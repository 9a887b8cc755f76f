// CudaModelRunner's tensor-parallel half (docs/parallel.md "CUDA and NCCL"): the NCCL
// communicator's set-up, rank 0's calls sent to the other ranks over the host world (the CPU
// backend's protocol: a fixed-size header, then the batch's vectors), the workers' loop, the KV
// cache sized as the minimum over ranks, and the logits gathered to the full vocabulary. The
// all-reduces after the row-parallel linears and the vocab-parallel embedding are in
// op_runner.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/runner_state.h"
#include "core/logging.h"
#include "parallel/world.h"
#include "runtime/worker_protocol.h"

namespace kite::cuda {
namespace {

enum Call : int32_t { kShutdown = 0, kNumKvBlocks = 1, kAllocateKv = 2, kForward = 3 };

// What rank 0 broadcasts first for each call: fixed size, so that workers can wait for it.
struct Call0 {
  int32_t call = kShutdown;
  int64_t num_blocks = 0;  // kAllocateKv
  KvCacheConfig kv;        // kNumKvBlocks, kAllocateKv
  BatchHeader batch;       // kForward
};
static_assert(std::is_trivially_copyable_v<Call0>);

}  // namespace

Status CudaModelRunner::connect_ranks() {
  Impl& m = *impl_;
  if (m.opts.comm == nullptr || m.nccl != nullptr) return ok_status();
  KITE_RETURN_IF_ERROR(m.dev->make_current());
  KITE_ASSIGN_OR_RETURN(m.nccl, NcclCommunicator::create(m.opts.comm, m.opts.device, m.stream));
  if (m.tensor_parallel()) {
    // One small all-reduce now: NCCL connects its peers lazily, at the first collective, which
    // should not be inside a graph capture or a user's first step.
    KITE_ASSIGN_OR_RETURN(DeviceBuffer probe, DeviceBuffer::allocate(4, "NCCL probe"));
    KITE_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(probe.data(), 0, 4, m.stream));
    KITE_RETURN_IF_ERROR(m.nccl->all_reduce_sum(probe.as<float>(), 1));
    KITE_RETURN_IF_ERROR(m.nccl->synchronize());
  }
  return ok_status();
}

void CudaModelRunner::Impl::release_workers() {
  if (!tensor_parallel() || tp.rank != 0 || nccl == nullptr || workers_released) return;
  Call0 h;  // kShutdown
  const Status s = opts.comm->broadcast(&h, sizeof(h), 0);
  if (!s.ok()) KITE_LOG_WARN("releasing the tensor-parallel workers: {}", s.to_string());
  workers_released = true;
  parallel::set_workers_released(true);
}

Status CudaModelRunner::Impl::send_kv_call(int32_t call, int64_t blocks, const KvCacheConfig& c) {
  if (nccl == nullptr) return failed_precondition("several ranks: connect_ranks() first");
  Call0 h;
  h.call = call;
  h.num_blocks = blocks;
  h.kv = c;
  return opts.comm->broadcast(&h, sizeof(h), 0);
}

Status CudaModelRunner::Impl::send_forward(const ForwardBatch& b) {
  if (nccl == nullptr) return failed_precondition("several ranks: connect_ranks() first");
  Call0 h;
  h.call = kForward;
  h.batch = batch_header(b);
  KITE_RETURN_IF_ERROR(opts.comm->broadcast(&h, sizeof(h), 0));
  return send_batch_vectors(*opts.comm, b);
}

Result<int64_t> CudaModelRunner::Impl::min_over_ranks(const Result<int64_t>& local) {
  // -1: this rank's own error (it reports it; the others name the rank).
  const int64_t mine = local.ok() ? *local : -1;
  std::vector<int64_t> all(static_cast<size_t>(opts.comm->world_size()));
  KITE_RETURN_IF_ERROR(opts.comm->all_gather(&mine, sizeof(mine), all.data()));
  KITE_RETURN_IF_ERROR(local.status());
  int64_t blocks = *local;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r] < 0) return resource_exhausted(fmt::format("rank {} cannot size its KV cache", r));
    blocks = std::min(blocks, all[r]);
  }
  return blocks;
}

Status CudaModelRunner::run_worker() {
  Impl& m = *impl_;
  if (!m.is_worker()) {
    return failed_precondition("run_worker is for ranks other than 0 of a tensor-parallel world");
  }
  if (m.nccl == nullptr) return failed_precondition("several ranks: connect_ranks() first");
  parallel::Communicator& comm = *m.opts.comm;
  const InjectedFault fault = injected_fault(comm.rank());
  int step = 0;
  ForwardBatch batch;
  std::vector<int32_t> payload;
  for (;;) {
    Call0 h;
    KITE_RETURN_IF_ERROR(comm.broadcast(&h, sizeof(h), 0, parallel::Wait::kUnbounded));
    switch (h.call) {
      case kShutdown:
        return ok_status();
      case kNumKvBlocks: {
        const Result<int64_t> local = m.local_num_kv_blocks(h.kv);
        if (!local.ok()) KITE_LOG_ERROR("rank {}: {}", comm.rank(), local.status().to_string());
        KITE_RETURN_IF_ERROR(m.min_over_ranks(local).status());
        break;
      }
      case kAllocateKv:
        KITE_RETURN_IF_ERROR(parallel::agree(comm, m.local_allocate_kv_cache(h.num_blocks, h.kv),
                                             "allocate_kv_cache"));
        break;
      case kForward: {
        apply_injected_fault(fault, ++step);
        KITE_RETURN_IF_ERROR(receive_batch(comm, h.batch, &batch, &payload));
        float* out = nullptr;
        KITE_RETURN_IF_ERROR(m.dev->make_current());
        KITE_RETURN_IF_ERROR(m.local_forward(batch, &out));
        break;
      }
      default:
        return internal_error(
            fmt::format("rank {}: unknown call {} from rank 0", comm.rank(), h.call));
    }
  }
}

Status CudaModelRunner::Impl::ensure_tp_logits(int rows, bool big) {
  const int64_t stride = tp.vocab_stride;
  const size_t local = static_cast<size_t>(rows) * stride * 4;
  DeviceBuffer& l = big ? tp_logits_big : tp_logits;
  DeviceBuffer& g = big ? tp_gathered_big : tp_gathered;
  if (l.size() >= local) return ok_status();
  if (big) KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));  // in use by a prior step
  l.reset();
  g.reset();
  KITE_ASSIGN_OR_RETURN(l, DeviceBuffer::allocate(local, "this rank's logits"));
  KITE_ASSIGN_OR_RETURN(
      g, DeviceBuffer::allocate(local * static_cast<size_t>(tp.size), "every rank's logits"));
  if (!big) {
    tp_full_logits.reset();
    KITE_ASSIGN_OR_RETURN(
        tp_full_logits, DeviceBuffer::allocate(static_cast<size_t>(rows) * full_cfg.vocab_size * 4,
                                               "gathered logits"));
  }
  return ok_status();
}

Status CudaModelRunner::Impl::gather_logits(const float* local, float* gathered, int rows,
                                            float* full) {
  const int64_t stride = tp.vocab_stride;
  const int64_t vocab = full_cfg.vocab_size;
  KITE_RETURN_IF_ERROR(nccl->all_gather(local, static_cast<int64_t>(rows) * stride * 4, gathered));
  for (int r = 0; r < tp.size; ++r) {
    const int64_t begin = r * stride;
    const int64_t cols = std::min(stride, vocab - begin);
    if (cols <= 0) continue;
    KITE_CUDA_RETURN_IF_ERROR(
        cudaMemcpy2DAsync(full + begin, static_cast<size_t>(vocab) * 4,
                          gathered + static_cast<int64_t>(r) * rows * stride,
                          static_cast<size_t>(stride) * 4, static_cast<size_t>(cols) * 4,
                          static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, stream));
  }
  return ok_status();
}

}  // namespace kite::cuda
