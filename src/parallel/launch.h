// One node without a launcher: `kite generate|serve MODEL --tensor-parallel-size N` started
// directly re-executes itself under `mpirun -np N` (docs/parallel.md, "One node").
#pragma once

#include <string>
#include <vector>

#include "kite/status.h"

namespace kite::parallel {

// The command line that starts `ranks` copies of this process's command: `MPIRUN -np RANKS
// --oversubscribe --bind-to none [--allow-run-as-root when root] EXE ARGS...`, where args are this process's
// arguments without argv[0]. Exposed for tests.
std::vector<std::string> self_launch_command(const std::string& mpirun, int ranks,
                                             const std::string& exe,
                                             const std::vector<std::string>& args, bool root);

// Replaces this process (execv: same pid, so signals sent to it reach mpirun, which forwards
// them to the ranks, and its exit status is mpirun's) by the self-launch command above, with
// NCCL_NVLS_ENABLE=0 and KITE_SELF_LAUNCHED set in the environment every rank inherits. Call it
// before any thread starts or output is written. Returns only on error: no `mpirun` on PATH
// (kUnavailable, with the package to install), a build without MPI (kUnavailable), or a process
// that was already self-launched but does not see an MPI launcher's environment
// (kFailedPrecondition; never a second relaunch).
Status relaunch_under_mpirun(int ranks);

}  // namespace kite::parallel
