// The process's world: how many ranks run one model (tensor_parallel_size per pipeline stage)
// and which one this process is. Commands that
// run a model (`kite generate`, `kite serve`) call init_world first; every rank then loads its
// shard (engine/runner_factory.h), rank 0 runs the engine and the others serve its steps.
//
//   tensor_parallel_size * pipeline_parallel_size == 1, no launcher: one rank, no MPI.
//   Started by mpirun / srun --mpi=pmix: MPI_COMM_WORLD, whose size must equal
//   tensor_parallel_size * pipeline_parallel_size.
#pragma once

#include <chrono>
#include <memory>

#include "kite/status.h"
#include "parallel/communicator.h"

namespace kite::parallel {

// The bounds every communicator takes from the environment (MPI's and NCCL's alike):
// KITE_PARALLEL_INIT_TIMEOUT_S (default 120) for set-up, KITE_COLLECTIVE_TIMEOUT_S (default 300)
// for each collective; unset, empty or not positive: the default.
struct CommTimeouts {
  std::chrono::milliseconds init{120'000};
  std::chrono::milliseconds collective{300'000};
};
CommTimeouts timeouts_from_env();

struct WorldConfig {
  int tensor_parallel_size = 1;
  int pipeline_parallel_size = 1;
  // Micro-batches in flight across the stages within a step (docs/parallel.md): >= 1, or 0 =
  // the number of stages.
  int pipeline_micro_batches = 0;
};

// Errors (the same on every rank, so every rank reports it and exits): a size < 1
// (kInvalidArgument), a world size other than
// tp * pp (kInvalidArgument, naming both and the launch line), tp > 1 without an MPI launcher or
// without MPI in the build (kInvalidArgument / kUnavailable). Timeouts: KITE_COLLECTIVE_TIMEOUT_S
// (default 300) bounds each collective, KITE_PARALLEL_INIT_TIMEOUT_S (default 120) MPI's set-up.
Result<std::shared_ptr<Communicator>> init_world(const WorldConfig& config);

// The world init_world made; nullptr before it (one rank).
std::shared_ptr<Communicator> world();
// Its pipeline stages (world size / tensor_parallel_size); 1 before init_world.
int pipeline_parallel_size();
// Its micro-batches per step (WorldConfig::pipeline_micro_batches); 0 before init_world.
int pipeline_micro_batches();

// Rank 0 records that its workers have left their step loop (or never entered it because every
// rank agreed on a failure), so an error exit need not abort them.
void set_workers_released(bool released);

// The end of a command on any rank: with several ranks, rc != 0 while workers may still wait in
// a collective ends the world (MPI_Abort: every rank exits); otherwise MPI is finalized. Returns
// rc.
int finish_world(int rc);

}  // namespace kite::parallel
