// Communicator: the collectives tensor-parallel ranks run, independent of the backend and of the
// transport. Implementations: SingleCommunicator (one rank; every collective is a copy or a
// no-op), MpiCommunicator (mpi_communicator.h: Open MPI, host buffers; the CPU backend), and
// later a NCCL one for device buffers, bootstrapped through MPI.
//
// Contract (every implementation):
//   - Every rank of the world calls the same collectives in the same order with the same sizes.
//   - A collective returns a Status instead of aborting: kUnavailable when a peer is gone or the
//     transport failed. A collective that does not complete within the communicator's timeout
//     (parallel/watchdog.h) ends the process with a message naming the collective and the rank:
//     a rank never hangs on a dead peer.
//   - Not thread-safe: one thread at a time calls a communicator (the engine thread on rank 0,
//     the worker loop elsewhere).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "kite/status.h"

namespace kite::parallel {

// How long a collective may wait for its peers.
enum class Wait : uint8_t {
  kBounded,    // the communicator's collective timeout (set-up and in-step collectives)
  kUnbounded,  // a worker waiting for rank 0's next command (an idle server sends none)
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string_view name() const = 0;  // "single", "mpi"

  // data [count] F32, summed element-wise over ranks, in place on every rank.
  virtual Status all_reduce_sum(float* data, int64_t count) = 0;
  // `bytes` bytes at `data` of rank `root` copied to `data` on every rank.
  virtual Status broadcast(void* data, int64_t bytes, int root, Wait wait = Wait::kBounded) = 0;
  // out [world_size * bytes]: rank r's `in` [bytes] at out + r * bytes, on every rank.
  virtual Status all_gather(const void* in, int64_t bytes, void* out) = 0;
  // Point to point (pipeline stages): `bytes` bytes to rank `dst` / from rank `src`, which calls
  // recv / send with the same size. Bounded.
  virtual Status send(const void* data, int64_t bytes, int dst) = 0;
  virtual Status recv(void* data, int64_t bytes, int src) = 0;
  // The communicator of the ranks that pass the same `color`, ranked by `key` (a pipeline
  // stage's tensor-parallel group). Every rank calls it.
  virtual Result<std::shared_ptr<Communicator>> split(int color, int key) = 0;
  // Ends every rank of the world with exit status `code` (MPI_Abort): for a rank that fails
  // while its peers wait in a collective it will never join. Does not return.
  [[noreturn]] virtual void abort(int code) = 0;
};

// One rank: all_reduce_sum and broadcast do nothing, all_gather copies.
class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string_view name() const override { return "single"; }
  Status all_reduce_sum(float* data, int64_t count) override;
  Status broadcast(void* data, int64_t bytes, int root, Wait wait) override;
  Status all_gather(const void* in, int64_t bytes, void* out) override;
  Status send(const void* data, int64_t bytes, int dst) override;
  Status recv(void* data, int64_t bytes, int src) override;
  Result<std::shared_ptr<Communicator>> split(int color, int key) override;
  [[noreturn]] void abort(int code) override;
};

// Every rank's `local` status made common: ok when every rank's is ok; else this rank's own
// error, or (on a rank that succeeded) kAborted naming the first rank that failed. Ranks that
// agree on failure can all exit normally (no peer is left waiting).
Status agree(Communicator& comm, const Status& local, std::string_view what);

}  // namespace kite::parallel
