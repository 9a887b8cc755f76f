#include "parallel/world.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "parallel/mpi_communicator.h"

namespace kite::parallel {
namespace {

std::shared_ptr<Communicator> g_world;
std::atomic<bool> g_released{false};

std::chrono::milliseconds seconds_from_env(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  int64_t s = fallback;
  if (v != nullptr && *v != '\0') s = std::atoll(v);
  if (s <= 0) s = fallback;
  return std::chrono::milliseconds(s * 1000);
}

}  // namespace

Result<std::shared_ptr<Communicator>> init_world(const WorldConfig& config) {
  const int tp = config.tensor_parallel_size;
  const int pp = config.pipeline_parallel_size;
  if (tp < 1 || pp < 1) {
    return invalid_argument(
        fmt::format("tensor_parallel_size ({}) and pipeline_parallel_size ({}) must be >= 1", tp, pp));
  }
  if (!launched_by_mpi()) {
    if (tp * pp > 1) {
      return invalid_argument(fmt::format(
          "tensor_parallel_size {} x pipeline_parallel_size {} needs {} ranks: launch kite with "
          "`mpirun -np {} kite ...` (docs/parallel.md)",
          tp, pp, tp * pp, tp * pp));
    }
    g_world = std::make_shared<SingleCommunicator>();
    return g_world;
  }
  MpiOptions options;
  options.init_timeout = seconds_from_env("KITE_PARALLEL_INIT_TIMEOUT_S", 120);
  options.collective_timeout = seconds_from_env("KITE_COLLECTIVE_TIMEOUT_S", 300);
  KITE_ASSIGN_OR_RETURN(std::shared_ptr<Communicator> comm, create_mpi_communicator(options));
  g_world = comm;  // set first, so that finish_world finalizes MPI after an error below
  g_released = true;  // the errors below are every rank's: none waits for another
  if (comm->world_size() != tp * pp) {
    return invalid_argument(fmt::format(
        "rank {}: the MPI world has {} ranks but tensor_parallel_size {} x "
        "pipeline_parallel_size {} needs {} (mpirun -np {})",
        comm->rank(), comm->world_size(), tp, pp, tp * pp, tp * pp));
  }
  if (pp > 1) {
    return unimplemented(fmt::format(
        "rank {}: pipeline_parallel_size {}: pipeline parallelism is not implemented yet",
        comm->rank(), pp));
  }
  g_released = false;  // from here on, rank 0's workers wait for its calls
  return comm;
}

std::shared_ptr<Communicator> world() { return g_world; }

void set_workers_released(bool released) { g_released = released; }

int finish_world(int rc) {
  if (g_world != nullptr && g_world->world_size() > 1 && rc != 0 && !g_released) {
    g_world->abort(rc);
  }
  finalize_mpi();
  return rc;
}

}  // namespace kite::parallel
