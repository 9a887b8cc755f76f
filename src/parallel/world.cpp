#include "parallel/world.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/version.h"
#include "parallel/mpi_communicator.h"

namespace kite::parallel {
namespace {

std::shared_ptr<Communicator> g_world;
std::atomic<bool> g_released{false};
int g_pipeline_parallel_size = 1;
int g_pipeline_micro_batches = 0;

// mpirun ends the other ranks with SIGTERM when one dies: say so on each of them (write(2) only:
// async-signal-safe), then exit as SIGTERM would.
char g_term_message[160];
size_t g_term_length = 0;

void on_sigterm(int /*sig*/) {
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, g_term_message, g_term_length);
  _exit(128 + SIGTERM);
}

void install_sigterm_message(int rank, int size) {
  const std::string m = fmt::format(
      "kite: rank {} of {}: terminated by the MPI launcher (SIGTERM): another rank failed or "
      "the job was cancelled\n",
      rank, size);
  g_term_length = std::min(m.size(), sizeof(g_term_message));
  std::memcpy(g_term_message, m.data(), g_term_length);
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

CommTimeouts timeouts_from_env() {
  auto seconds = [](const char* name, std::chrono::milliseconds fallback) {
    const char* v = std::getenv(name);
    const int64_t s = v != nullptr && *v != '\0' ? std::atoll(v) : 0;
    return s > 0 ? std::chrono::milliseconds(s * 1000) : fallback;
  };
  CommTimeouts t;
  t.init = seconds("KITE_PARALLEL_INIT_TIMEOUT_S", t.init);
  t.collective = seconds("KITE_COLLECTIVE_TIMEOUT_S", t.collective);
  return t;
}

Result<std::shared_ptr<Communicator>> init_world(const WorldConfig& config) {
  const int tp = config.tensor_parallel_size;
  const int pp = config.pipeline_parallel_size;
  if (tp < 1 || pp < 1) {
    return invalid_argument(fmt::format(
        "tensor_parallel_size ({}) and pipeline_parallel_size ({}) must be >= 1", tp, pp));
  }
  if (config.pipeline_micro_batches < 0) {
    return invalid_argument(
        fmt::format("pipeline_micro_batches must be >= 1, got {}", config.pipeline_micro_batches));
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
  const CommTimeouts timeouts = timeouts_from_env();
  options.init_timeout = timeouts.init;
  options.collective_timeout = timeouts.collective;
  KITE_ASSIGN_OR_RETURN(std::shared_ptr<Communicator> comm, create_mpi_communicator(options));
  g_pipeline_parallel_size = pp;
  g_pipeline_micro_batches = config.pipeline_micro_batches;
  g_world = comm;     // set first, so that finish_world finalizes MPI after an error below
  g_released = true;  // the errors below are every rank's: none waits for another
  if (comm->world_size() != tp * pp) {
    return invalid_argument(
        fmt::format("the MPI world has {} ranks but tensor_parallel_size {} x "
                    "pipeline_parallel_size {} needs {} (mpirun -np {})",
                    comm->world_size(), tp, pp, tp * pp, tp * pp));
  }
  if (comm->world_size() > 1) {
    // Ranks must run the same build (the step protocol is not versioned): compare every rank's
    // version and commit, so that a mismatch across nodes is an error on every rank.
    char mine[64] = {};
    std::string id = std::string(KITE_VERSION_STRING) + " " + KITE_GIT_COMMIT;
    // Tests stand in for a rank of another build (docs/parallel.md).
    if (const char* v = std::getenv("KITE_TEST_BUILD_ID"); v != nullptr) id = v;
    std::memcpy(mine, id.data(), std::min(id.size(), sizeof(mine) - 1));
    std::vector<char> all(sizeof(mine) * static_cast<size_t>(comm->world_size()));
    KITE_RETURN_IF_ERROR(comm->all_gather(mine, sizeof(mine), all.data()));
    for (int r = 0; r < comm->world_size(); ++r) {
      const char* other = all.data() + sizeof(mine) * static_cast<size_t>(r);
      if (std::strncmp(other, mine, sizeof(mine)) != 0) {
        return failed_precondition(fmt::format(
            "rank {} runs kite {} but this rank runs kite {}: every rank needs the same build", r,
            std::string(other, strnlen(other, sizeof(mine))), id));
      }
    }
    install_sigterm_message(comm->rank(), comm->world_size());
  }
  g_released = false;  // from here on, rank 0's workers wait for its calls
  return comm;
}

std::shared_ptr<Communicator> world() { return g_world; }

int pipeline_parallel_size() { return g_pipeline_parallel_size; }

int pipeline_micro_batches() { return g_pipeline_micro_batches; }

void set_workers_released(bool released) { g_released = released; }

int finish_world(int rc) {
  if (g_world != nullptr && g_world->world_size() > 1 && rc != 0 && !g_released) {
    g_world->abort(rc);
  }
  finalize_mpi();
  return rc;
}

}  // namespace kite::parallel
