#include "parallel/mpi_communicator.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "parallel/watchdog.h"

#ifdef KITE_WITH_MPI
#include <mpi.h>
#endif

namespace kite::parallel {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

#ifndef KITE_WITH_MPI

bool mpi_available() { return false; }

Result<std::shared_ptr<Communicator>> create_mpi_communicator(const MpiOptions& /*options*/) {
  return unavailable("this kite build has no MPI (install libopenmpi-dev and rebuild)");
}

void finalize_mpi() {}

#else

bool mpi_available() { return true; }

namespace {

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(text, static_cast<size_t>(len));
}

Status check(int code, const char* call, int rank) {
  if (code == MPI_SUCCESS) return ok_status();
  return unavailable(fmt::format("rank {}: {} failed: {} (a peer rank died or cannot be reached)",
                                 rank, call, mpi_error(code)));
}

// MPI counts are int: larger transfers go in chunks.
constexpr int64_t kMaxChunk = std::numeric_limits<int>::max() / 8;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, int rank, int size, std::shared_ptr<Watchdog> watchdog,
                  std::chrono::milliseconds timeout)
      : comm_(comm), rank_(rank), size_(size), watchdog_(std::move(watchdog)), timeout_(timeout) {}
  ~MpiCommunicator() override {
    if (comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string_view name() const override { return "mpi"; }

  Status all_reduce_sum(float* data, int64_t count) override {
    WatchdogScope guard(watchdog_.get(), "MPI_Allreduce", timeout_);
    for (int64_t at = 0; at < count; at += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, count - at));
      KITE_RETURN_IF_ERROR(
          check(MPI_Allreduce(MPI_IN_PLACE, data + at, n, MPI_FLOAT, MPI_SUM, comm_),
                "MPI_Allreduce", rank_));
    }
    return ok_status();
  }

  Status broadcast(void* data, int64_t bytes, int root, Wait wait) override {
    WatchdogScope guard(wait == Wait::kBounded ? watchdog_.get() : nullptr, "MPI_Bcast", timeout_);
    auto* p = static_cast<char*>(data);
    for (int64_t at = 0; at < bytes; at += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, bytes - at));
      KITE_RETURN_IF_ERROR(check(MPI_Bcast(p + at, n, MPI_BYTE, root, comm_), "MPI_Bcast", rank_));
    }
    return ok_status();
  }

  Status all_gather(const void* in, int64_t bytes, void* out) override {
    if (bytes > kMaxChunk) return invalid_argument("all_gather: more than 256 MiB per rank");
    WatchdogScope guard(watchdog_.get(), "MPI_Allgather", timeout_);
    return check(MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes),
                               MPI_BYTE, comm_),
                 "MPI_Allgather", rank_);
  }

  Status send(const void* data, int64_t bytes, int dst) override {
    WatchdogScope guard(watchdog_.get(), "MPI_Send", timeout_);
    const auto* p = static_cast<const char*>(data);
    for (int64_t at = 0; at < bytes; at += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, bytes - at));
      KITE_RETURN_IF_ERROR(
          check(MPI_Send(p + at, n, MPI_BYTE, dst, kTag, comm_), "MPI_Send", rank_));
    }
    return ok_status();
  }

  Status recv(void* data, int64_t bytes, int src) override {
    WatchdogScope guard(watchdog_.get(), "MPI_Recv", timeout_);
    auto* p = static_cast<char*>(data);
    for (int64_t at = 0; at < bytes; at += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, bytes - at));
      KITE_RETURN_IF_ERROR(check(MPI_Recv(p + at, n, MPI_BYTE, src, kTag, comm_, MPI_STATUS_IGNORE),
                                 "MPI_Recv", rank_));
    }
    return ok_status();
  }

  Result<std::shared_ptr<Communicator>> split(int color, int key) override {
    WatchdogScope guard(watchdog_.get(), "MPI_Comm_split", timeout_);
    MPI_Comm sub = MPI_COMM_NULL;
    KITE_RETURN_IF_ERROR(check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split", rank_));
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    int rank = 0, size = 0;
    MPI_Comm_rank(sub, &rank);
    MPI_Comm_size(sub, &size);
    return std::shared_ptr<Communicator>(
        std::make_shared<MpiCommunicator>(sub, rank, size, watchdog_, timeout_));
  }

  void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);  // the whole job, whichever group this is
    std::_Exit(code);                 // MPI_Abort returned (it should not)
  }

 private:
  static constexpr int kTag = 17;
  MPI_Comm comm_;
  int rank_;
  int size_;
  std::shared_ptr<Watchdog> watchdog_;  // one per process, shared by its groups
  std::chrono::milliseconds timeout_;
};

}  // namespace

Result<std::shared_ptr<Communicator>> create_mpi_communicator(const MpiOptions& options) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  auto watchdog = std::make_unique<Watchdog>(-1);
  if (initialized == 0) {
    WatchdogScope guard(watchdog.get(), "MPI_Init_thread", options.init_timeout);
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return unavailable("MPI_Init_thread failed: " + mpi_error(rc));
    if (provided < MPI_THREAD_SERIALIZED) {
      return unavailable(
          "this MPI does not provide MPI_THREAD_SERIALIZED (kite's engine thread "
          "calls MPI, not the main thread)");
    }
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  KITE_RETURN_IF_ERROR(check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank", -1));
  KITE_RETURN_IF_ERROR(check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size", rank));
  watchdog->set_rank(rank);
  return std::shared_ptr<Communicator>(std::make_shared<MpiCommunicator>(
      MPI_COMM_WORLD, rank, size, std::shared_ptr<Watchdog>(std::move(watchdog)),
      options.collective_timeout));
}

void finalize_mpi() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized != 0 && finalized == 0) MPI_Finalize();
}

#endif

}  // namespace kite::parallel
