#include "parallel/launch.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "parallel/mpi_communicator.h"

namespace kite::parallel {
namespace {

// The first executable `name` in $PATH; empty if none.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string_view rest(path);
  while (true) {
    const size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    const std::string candidate =
        (std::filesystem::path(dir.empty() ? std::string_view(".") : dir) / name).string();
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
      return candidate;
    }
    if (colon == std::string_view::npos) return {};
    rest.remove_prefix(colon + 1);
  }
}

// This process's arguments after argv[0] (Linux: /proc/self/cmdline, NUL-separated).
Result<std::vector<std::string>> own_arguments() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  if (!f) return internal_error("cannot read /proc/self/cmdline");
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  while (start < all.size()) {
    const size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (!args.empty()) args.erase(args.begin());
  return args;
}

}  // namespace

std::vector<std::string> self_launch_command(const std::string& mpirun, int ranks,
                                             const std::string& exe,
                                             const std::vector<std::string>& args, bool root) {
  // --oversubscribe: ranks are processes of one node, which may have fewer cores than ranks.
  // --bind-to none: Open MPI binds each rank to one core when there are at most two, and a rank's
  // engine runs several host threads (HTTP, tokenizers, the step loop, CPU compute threads) that
  // would then share it (W1 (128,128) on an H100: 4% slower bound than unbound).
  std::vector<std::string> cmd = {mpirun, "-np", std::to_string(ranks), "--oversubscribe",
                                  "--bind-to", "none"};
  if (root) cmd.emplace_back("--allow-run-as-root");  // containers; mpirun refuses root otherwise
  cmd.push_back(exe);
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

Status relaunch_under_mpirun(int ranks) {
  if (std::getenv("KITE_SELF_LAUNCHED") != nullptr) {
    return failed_precondition(
        "this kite was started by kite's own mpirun but sees no MPI launcher environment "
        "(OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK); launch it with `mpirun -np N kite ...` "
        "(docs/parallel.md)");
  }
  if (!mpi_available()) {
    return unavailable(fmt::format(
        "{} ranks need MPI, and this kite build has none (install libopenmpi-dev and rebuild)",
        ranks));
  }
  const std::string mpirun = find_on_path("mpirun");
  if (mpirun.empty()) {
    return unavailable(fmt::format(
        "{} ranks: kite starts them with `mpirun -np {}`, and no mpirun is on PATH (install "
        "Open MPI: apt install openmpi-bin), or launch the ranks yourself (docs/parallel.md)",
        ranks, ranks));
  }
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return internal_error("cannot resolve /proc/self/exe: " + ec.message());
  KITE_ASSIGN_OR_RETURN(std::vector<std::string> args, own_arguments());
  const std::vector<std::string> cmd =
      self_launch_command(mpirun, ranks, exe, args, geteuid() == 0);
  std::vector<char*> argv;
  argv.reserve(cmd.size() + 1);
  for (const std::string& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Inherited by mpirun and, on one node, by every rank it starts.
  setenv("KITE_SELF_LAUNCHED", "1", 1);
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // never NVLink multicast
  std::fflush(stdout);
  std::fflush(stderr);
  execv(mpirun.c_str(), argv.data());
  const int err = errno;
  unsetenv("KITE_SELF_LAUNCHED");
  return unavailable(fmt::format("cannot run {}: {}", mpirun, std::strerror(err)));
}

}  // namespace kite::parallel
