// NcclCommunicator: the parallel::Communicator of the CUDA backend, over NCCL, on device buffers.
//
// Bootstrap: through a host communicator of the same ranks (the MPI world, parallel/world.h):
// rank 0 calls ncclGetUniqueId and broadcasts it, every rank then joins with
// ncclCommInitRankConfig on its GPU. The communicator is non-blocking (ncclConfig_t::blocking =
// 0): every NCCL call returns at once and its completion is polled (ncclCommGetAsyncError) against
// a deadline, so a peer that is dead or unreachable ends in an error (the communicator aborted
// with ncclCommAbort), never in a hang:
//   - set-up (ncclCommInitRankConfig): init_timeout;
//   - enqueueing a collective (NCCL may connect to peers lazily there): collective_timeout;
//   - the completion of what was enqueued: synchronize(), bounded by collective_timeout.
// Collectives are enqueued on the stream given at creation (the runner's compute stream), so
// they order with the kernels around them and a CUDA graph captured on that stream records them
// (NCCL supports stream capture); they return once enqueued. A communicator of one rank makes
// no NCCL call in its collectives (all-reduce and broadcast do nothing, all-gather copies), so a
// one-rank run pays nothing for it.
//
// NVLink multicast (NVLS) is never used: NCCL_NVLS_ENABLE=0 is set in the process environment
// before NCCL initializes (it can put a host's shared GPUs out of service).
//
// libnccl.so.2 is loaded at the first create() (dlopen; KITE_NCCL_LIBRARY names another file),
// not linked, so a one-GPU kite needs no NCCL installed.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "kite/status.h"
#include "parallel/communicator.h"

namespace kite::cuda {

struct NcclOptions {
  std::chrono::milliseconds init_timeout{120'000};        // ncclCommInitRankConfig
  std::chrono::milliseconds collective_timeout{300'000};  // enqueue, and synchronize()
};

// The options from the environment: KITE_PARALLEL_INIT_TIMEOUT_S (default 120) and
// KITE_COLLECTIVE_TIMEOUT_S (default 300), as the MPI world reads them.
NcclOptions nccl_options_from_env();

// This process's rank on its node as the launcher gives it (OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID, PMI_LOCAL_RANK); `fallback` when none is set.
int local_rank_from_env(int fallback);

// The GPU of a rank: its local rank, which must be below the number of visible devices.
// kInvalidArgument (naming both and CUDA_VISIBLE_DEVICES) when there are more ranks on the node
// than GPUs; kUnavailable without a usable GPU.
Result<int> device_for_local_rank(int local_rank);

class NcclCommunicator final : public parallel::Communicator {
 public:
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  // Every rank of `bootstrap` calls this (collective). `device` must be current or becomes so;
  // `stream` is the stream collectives are enqueued on (on `device`). Errors: kUnavailable when
  // NCCL cannot start or a peer does not join within init_timeout (the half-made communicator is
  // aborted), the bootstrap broadcast's errors.
  static Result<std::shared_ptr<NcclCommunicator>> create(
      std::shared_ptr<parallel::Communicator> bootstrap, int device, cudaStream_t stream,
      const NcclOptions& options = nccl_options_from_env());

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string_view name() const override { return "nccl"; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

  // Device buffers, enqueued on stream(); each returns once enqueued (see synchronize()).
  // data [count] F32 on the device, summed over ranks in place.
  Status all_reduce_sum(float* data, int64_t count) override;
  // data [count] of `dtype` (F32, BF16 or F16) on the device, summed over ranks in place.
  Status all_reduce_sum(void* data, int64_t count, DType dtype);
  // `wait` is not used: every NCCL operation is bounded (a worker waits for rank 0's commands on
  // the host communicator, not here).
  Status broadcast(void* data, int64_t bytes, int root,
                   parallel::Wait wait = parallel::Wait::kBounded) override;
  Status all_gather(const void* in, int64_t bytes, void* out) override;
  Status send(const void* data, int64_t bytes, int dst) override;
  Status recv(void* data, int64_t bytes, int src) override;
  // kUnimplemented: no CUDA path needs a sub-group (pipeline stages are refused on CUDA).
  Result<std::shared_ptr<parallel::Communicator>> split(int color, int key) override;
  // ncclCommAbort, then the bootstrap's abort (every rank of the world ends). Does not return.
  [[noreturn]] void abort(int code) override;

  // Waits until everything enqueued on stream() so far has completed, watching NCCL's
  // asynchronous errors. Errors (the communicator is aborted first, so no later NCCL call
  // hangs): kUnavailable when NCCL reports an error (a peer died or the network failed),
  // kAborted past collective_timeout. A one-rank communicator only synchronizes the stream.
  Status synchronize();

 private:
  NcclCommunicator() = default;
  Status wait_ready(int result, const char* what, std::chrono::milliseconds timeout);
  Status fail(const std::string& what, const std::string& why);

  struct Comm;
  std::unique_ptr<Comm> comm_;
  std::shared_ptr<parallel::Communicator> bootstrap_;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;  // synchronize(): recorded after the last enqueued operation
  NcclOptions options_;
  bool aborted_ = false;
};

}  // namespace kite::cuda
