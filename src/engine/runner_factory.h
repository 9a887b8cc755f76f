// The seam where backends plug in: loads the model named by an EngineConfig and builds the
// ModelRunner of the chosen device. This is the only place above the backends that knows them.
//
//   device "cpu":  CpuModelRunner (src/backend/cpu)
//   device "cuda": create_cuda_model_runner (src/backend/cuda; only in KITE_WITH_CUDA builds)
//   device "auto": cuda when the build has it and a GPU is usable, else cpu
#pragma once

#include <memory>

#include "checkpoint/weights.h"
#include "kite/engine.h"
#include "kite/status.h"
#include "runtime/model_runner.h"

namespace kite {

struct LoadedModel {
  std::shared_ptr<const WeightStore> weights;  // config, generation_config.json, GGUF metadata
  std::unique_ptr<ModelRunner> runner;
};

// Errors: load_model's (kNotFound, kInvalidArgument, kDataLoss, kUnimplemented), an unknown
// device or dtype (kInvalidArgument), a device this build or machine lacks (kUnavailable),
// tensor_parallel_size > 1 without a parallel::world() of that size (kInvalidArgument),
// pipeline_parallel_size > 1 with device cuda (kUnimplemented). With device cuda under an MPI
// launcher (one rank too) the CUDA runner takes its world: its local rank's GPU, its shard, and
// a NCCL communicator (ModelRunner::connect_ranks, after every rank loaded). With
// tensor_parallel_size > 1 every rank calls this (collective): the runner holds the rank's shard
// (backend/cpu/tensor_parallel.h), and a rank that fails makes every rank fail (kAborted on the
// others).
Result<LoadedModel> create_model_runner(const EngineConfig& config);

// Ranks other than 0 of a tensor-parallel world: loads the rank's shard and runs rank 0's steps
// until rank 0's runner is destroyed (CpuModelRunner::run_worker).
Status run_model_worker(const EngineConfig& config);

}  // namespace kite
