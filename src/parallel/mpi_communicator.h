// MpiCommunicator: Communicator over MPI_COMM_WORLD (host buffers). Built when CMake finds MPI
// (KITE_MPI; Debian's openmpi-bin + libopenmpi-dev). MPI errors are returned (the world's error
// handler is MPI_ERRORS_RETURN), every bounded collective runs under a Watchdog, and a process
// started by mpirun that dies makes mpirun end the others (Open MPI's default).
#pragma once

#include <chrono>
#include <memory>

#include "kite/status.h"
#include "parallel/communicator.h"

namespace kite::parallel {

struct MpiOptions {
  std::chrono::milliseconds init_timeout{120'000};        // MPI_Init_thread
  std::chrono::milliseconds collective_timeout{300'000};  // each bounded collective
};

// Whether this build has MPI.
bool mpi_available();
// Whether this process was started by an MPI launcher (mpirun, srun --mpi=pmix): the launchers'
// environment variables (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE).
bool launched_by_mpi();

// Initializes MPI (once per process; MPI_THREAD_SERIALIZED) and returns the world.
// kUnavailable when the build has no MPI or MPI cannot start.
Result<std::shared_ptr<Communicator>> create_mpi_communicator(const MpiOptions& options);

// MPI_Finalize, when MPI was initialized; call once at normal exit of every rank.
void finalize_mpi();

}  // namespace kite::parallel
