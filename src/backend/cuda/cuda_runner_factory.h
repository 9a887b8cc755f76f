// The CUDA backend's side of the engine's runner seam (engine/runner_factory.h).
#pragma once

#include <memory>

#include "checkpoint/weights.h"
#include "kite/engine.h"
#include "kite/status.h"
#include "parallel/communicator.h"
#include "runtime/model_runner.h"

namespace kite {

// A runner on the current GPU for these weights. kUnavailable when no GPU can be used (device
// "auto" then falls back to the CPU).
//
// With `comm` (the MPI world of a process started by an MPI launcher; docs/parallel.md) the
// runner takes the GPU of its local rank (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, ...; more
// ranks on a node than visible GPUs: kInvalidArgument) and, with several ranks, holds its
// tensor-parallel shard; its connect_ranks() makes the NCCL communicator over `comm`. Pipeline
// parallelism is refused (kUnimplemented).
Result<std::unique_ptr<ModelRunner>> create_cuda_model_runner(
    std::shared_ptr<const WeightStore> weights, const EngineConfig& config,
    std::shared_ptr<parallel::Communicator> comm = nullptr);

}  // namespace kite
