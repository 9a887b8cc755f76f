// `kite version`: the version, commit and compiled-in backends (also `kite --version`).
#include <cstdio>

#include "cli/command.h"
#include "core/version.h"

namespace kite::cli {
namespace {

int run_version() {
  std::printf("kite %s (commit %s)\n", KITE_VERSION_STRING, KITE_GIT_COMMIT);
#ifdef KITE_WITH_CUDA
  std::printf("backends: cpu cuda\n");
#else
  std::printf("backends: cpu\n");
#endif
  return 0;
}

}  // namespace

KITE_REGISTER_COMMAND(version, "version", "Print version, commit and backends",
                      [](CLI::App&) -> std::function<int()> { return run_version; });

}  // namespace kite::cli
