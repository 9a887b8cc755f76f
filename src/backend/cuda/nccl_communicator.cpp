#include "backend/cuda/nccl_communicator.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "core/logging.h"
#include "parallel/world.h"

namespace kite::cuda {

struct NcclCommunicator::Comm {
  ncclComm_t comm = nullptr;
};

namespace {

// NCCL is loaded at run time (dlopen of libnccl.so.2, or KITE_NCCL_LIBRARY), not linked: a kite
// on one GPU starts where no NCCL is installed, and only a run under an MPI launcher with
// --device cuda needs it. nccl.h gives the types and signatures.
struct NcclApi {
  decltype(&::ncclGetVersion) GetVersion = nullptr;
  decltype(&::ncclGetUniqueId) GetUniqueId = nullptr;
  decltype(&::ncclCommInitRankConfig) CommInitRankConfig = nullptr;
  decltype(&::ncclCommGetAsyncError) CommGetAsyncError = nullptr;
  decltype(&::ncclCommAbort) CommAbort = nullptr;
  decltype(&::ncclCommDestroy) CommDestroy = nullptr;
  decltype(&::ncclGetErrorString) GetErrorString = nullptr;
  decltype(&::ncclGetLastError) GetLastError = nullptr;
  decltype(&::ncclAllReduce) AllReduce = nullptr;
  decltype(&::ncclBroadcast) Broadcast = nullptr;
  decltype(&::ncclAllGather) AllGather = nullptr;
  decltype(&::ncclSend) Send = nullptr;
  decltype(&::ncclRecv) Recv = nullptr;
};

NcclApi g_nccl;  // filled once by load_nccl(); read-only after

// Loads NCCL once per process. kUnavailable naming the library when it or a symbol is missing.
Status load_nccl() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    const char* env = std::getenv("KITE_NCCL_LIBRARY");
    const std::string path = env != nullptr && *env != '\0' ? env : "libnccl.so.2";
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* why = dlerror();
      error = fmt::format(
          "cannot load NCCL ({}: {}); several ranks on CUDA need it: install NCCL (CUDA 13's "
          "toolkit or the nvidia-nccl-cu13 wheel), put its folder on LD_LIBRARY_PATH or name the "
          "library with KITE_NCCL_LIBRARY",
          path, why != nullptr ? why : "not found");
      return;
    }
    NcclApi api;
    bool ok = true;
    auto sym = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(h, name));
      if (*fn == nullptr && ok) {
        ok = false;
        error = fmt::format("{} has no {} (NCCL 2.19 or newer is needed)", path, name);
      }
    };
    sym(&api.GetVersion, "ncclGetVersion");
    sym(&api.GetUniqueId, "ncclGetUniqueId");
    sym(&api.CommInitRankConfig, "ncclCommInitRankConfig");
    sym(&api.CommGetAsyncError, "ncclCommGetAsyncError");
    sym(&api.CommAbort, "ncclCommAbort");
    sym(&api.CommDestroy, "ncclCommDestroy");
    sym(&api.GetErrorString, "ncclGetErrorString");
    sym(&api.GetLastError, "ncclGetLastError");
    sym(&api.AllReduce, "ncclAllReduce");
    sym(&api.Broadcast, "ncclBroadcast");
    sym(&api.AllGather, "ncclAllGather");
    sym(&api.Send, "ncclSend");
    sym(&api.Recv, "ncclRecv");
    if (ok) g_nccl = api;
  });
  if (!error.empty()) return unavailable(error);
  return ok_status();
}

using Clock = std::chrono::steady_clock;

// Before NCCL reads its environment (at its first communicator): never NVLink multicast.
void disable_nvls() {
  const char* v = std::getenv("NCCL_NVLS_ENABLE");
  if (v != nullptr && std::string(v) != "0") {
    KITE_LOG_WARN("NCCL_NVLS_ENABLE={} ignored: kite never enables NVLink multicast", v);
  }
  setenv("NCCL_NVLS_ENABLE", "0", 1);
}

ncclConfig_t nonblocking_config() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

// Polls between checks of an operation in progress: spins briefly (decode steps are short),
// then sleeps so that a long wait does not take a core.
void backoff(int* polls) {
  if (++*polls < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF16:
      return ncclFloat16;
    default:
      return ncclNumTypes;
  }
}

}  // namespace

NcclOptions nccl_options_from_env() {
  NcclOptions o;
  const parallel::CommTimeouts t = parallel::timeouts_from_env();
  o.init_timeout = t.init;
  o.collective_timeout = t.collective;
  return o;
}

int local_rank_from_env(int fallback) {
  for (const char* v :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"}) {
    const char* s = std::getenv(v);
    if (s != nullptr && *s != '\0') return std::atoi(s);
  }
  return fallback;
}

Result<int> device_for_local_rank(int local_rank) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    return unavailable(fmt::format("no usable GPU for local rank {} ({})", local_rank,
                                   err != cudaSuccess ? cudaGetErrorString(err) : "none visible"));
  }
  if (local_rank < 0 || local_rank >= count) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return invalid_argument(fmt::format(
        "local rank {} has no GPU of its own: this node shows {} GPU(s){}; run at most {} "
        "rank(s) per node (one GPU per rank)",
        local_rank, count,
        visible != nullptr ? fmt::format(" (CUDA_VISIBLE_DEVICES={})", visible) : std::string(),
        count));
  }
  return local_rank;
}

NcclCommunicator::~NcclCommunicator() {
  // An aborted communicator was released by ncclCommAbort; one whose work does not complete is
  // aborted rather than destroyed (ncclCommDestroy would wait for it).
  if (comm_ != nullptr && comm_->comm != nullptr && !aborted_) {
    if (cudaSetDevice(device_) == cudaSuccess && synchronize().ok()) {
      g_nccl.CommDestroy(comm_->comm);
    } else if (!aborted_) {
      g_nccl.CommAbort(comm_->comm);
    }
  }
  if (done_ != nullptr) KITE_CUDA_WARN(cudaEventDestroy(done_));
}

Status NcclCommunicator::fail(const std::string& what, const std::string& why) {
  std::string last;
  if (comm_ != nullptr && comm_->comm != nullptr && !aborted_) {
    const char* l = g_nccl.GetLastError(comm_->comm);
    if (l != nullptr && *l != '\0') last = fmt::format(" ({})", l);
    g_nccl.CommAbort(comm_->comm);  // no later call may wait on this communicator
    aborted_ = true;
  }
  return unavailable(fmt::format("rank {}: NCCL {}: {}{} (a peer rank died or cannot be reached)",
                                 rank_, what, why, last));
}

// A non-blocking NCCL call's result: ncclSuccess, an error, or ncclInProgress, in which case the
// communicator's asynchronous state is polled until it leaves ncclInProgress or the time is up.
Status NcclCommunicator::wait_ready(int result, const char* what,
                                    std::chrono::milliseconds timeout) {
  auto r = static_cast<ncclResult_t>(result);
  const auto deadline = Clock::now() + timeout;
  int polls = 0;
  while (r == ncclInProgress) {
    if (Clock::now() > deadline) {
      Status s = fail(what, fmt::format("did not complete within {} s", timeout.count() / 1000));
      return aborted(s.message());
    }
    backoff(&polls);
    if (g_nccl.CommGetAsyncError(comm_->comm, &r) != ncclSuccess) r = ncclInternalError;
  }
  if (r != ncclSuccess) return fail(what, g_nccl.GetErrorString(r));
  return ok_status();
}

Result<std::shared_ptr<NcclCommunicator>> NcclCommunicator::create(
    std::shared_ptr<parallel::Communicator> bootstrap, int device, cudaStream_t stream,
    const NcclOptions& options) {
  if (bootstrap == nullptr) return invalid_argument("NCCL needs a bootstrap communicator");
  disable_nvls();
  std::shared_ptr<NcclCommunicator> c(new NcclCommunicator());
  c->comm_ = std::make_unique<Comm>();
  c->bootstrap_ = std::move(bootstrap);
  c->rank_ = c->bootstrap_->rank();
  c->size_ = c->bootstrap_->world_size();
  c->device_ = device;
  c->stream_ = stream;
  c->options_ = options;
  // This rank's part (NCCL loaded, its GPU, rank 0's unique id), then agreed on by every rank
  // before the id's broadcast: a rank that fails here leaves no peer in a collective it skips.
  ncclUniqueId id{};
  Status local = load_nccl();
  if (local.ok()) local = cuda_status(cudaSetDevice(device), "cudaSetDevice");
  if (local.ok()) {
    local =
        cuda_status(cudaEventCreateWithFlags(&c->done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  if (local.ok() && c->rank_ == 0) {
    const ncclResult_t r = g_nccl.GetUniqueId(&id);
    if (r != ncclSuccess) {
      local = unavailable(fmt::format("ncclGetUniqueId failed: {}", g_nccl.GetErrorString(r)));
    }
  }
  KITE_RETURN_IF_ERROR(parallel::agree(*c->bootstrap_, local, "setting up NCCL"));
  // Rank 0's id reaches every rank through the host world (bounded by its watchdog).
  KITE_RETURN_IF_ERROR(c->bootstrap_->broadcast(&id, sizeof(id), 0));
  ncclConfig_t config = nonblocking_config();
  const ncclResult_t r =
      g_nccl.CommInitRankConfig(&c->comm_->comm, c->size_, id, c->rank_, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    return unavailable(fmt::format("rank {}: ncclCommInitRankConfig failed: {}", c->rank_,
                                   g_nccl.GetErrorString(r)));
  }
  KITE_RETURN_IF_ERROR(c->wait_ready(r, "ncclCommInitRankConfig", options.init_timeout));
  int version = 0;
  g_nccl.GetVersion(&version);
  KITE_LOG_INFO("nccl: rank {} of {} on device {} (NCCL {})", c->rank_, c->size_, device, version);
  return c;
}

Status NcclCommunicator::all_reduce_sum(float* data, int64_t count) {
  return all_reduce_sum(data, count, DType::kF32);
}

Status NcclCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  // The type is checked first: a misuse is an error on one rank as on several.
  const ncclDataType_t t = nccl_type(dtype);
  if (t == ncclNumTypes) {
    return invalid_argument(fmt::format("NCCL all-reduce of {}", dtype_name(dtype)));
  }
  if (size_ == 1 || count == 0) return ok_status();
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  return wait_ready(
      g_nccl.AllReduce(data, data, static_cast<size_t>(count), t, ncclSum, comm_->comm, stream_),
      "ncclAllReduce", options_.collective_timeout);
}

Status NcclCommunicator::broadcast(void* data, int64_t bytes, int root, parallel::Wait /*wait*/) {
  if (root < 0 || root >= size_) {
    return invalid_argument(fmt::format("broadcast from rank {} of {}", root, size_));
  }
  if (size_ == 1 || bytes == 0) return ok_status();
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  return wait_ready(g_nccl.Broadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root,
                                     comm_->comm, stream_),
                    "ncclBroadcast", options_.collective_timeout);
}

Status NcclCommunicator::all_gather(const void* in, int64_t bytes, void* out) {
  if (bytes == 0) return ok_status();
  if (size_ == 1) {
    if (in == out) return ok_status();
    return cuda_status(
        cudaMemcpyAsync(out, in, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, stream_),
        "all_gather (one rank)");
  }
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  return wait_ready(
      g_nccl.AllGather(in, out, static_cast<size_t>(bytes), ncclUint8, comm_->comm, stream_),
      "ncclAllGather", options_.collective_timeout);
}

Status NcclCommunicator::send(const void* data, int64_t bytes, int dst) {
  if (dst < 0 || dst >= size_ || dst == rank_) {
    return invalid_argument(fmt::format("rank {}: send to rank {} of {}", rank_, dst, size_));
  }
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  return wait_ready(
      g_nccl.Send(data, static_cast<size_t>(bytes), ncclUint8, dst, comm_->comm, stream_),
      "ncclSend", options_.collective_timeout);
}

Status NcclCommunicator::recv(void* data, int64_t bytes, int src) {
  if (src < 0 || src >= size_ || src == rank_) {
    return invalid_argument(fmt::format("rank {}: recv from rank {} of {}", rank_, src, size_));
  }
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  return wait_ready(
      g_nccl.Recv(data, static_cast<size_t>(bytes), ncclUint8, src, comm_->comm, stream_),
      "ncclRecv", options_.collective_timeout);
}

Result<std::shared_ptr<parallel::Communicator>> NcclCommunicator::split(int /*color*/,
                                                                         int /*key*/) {
  // Not built: nothing on CUDA needs a sub-group (pipeline stages are refused there; tensor
  // parallelism uses the whole world). A non-blocking ncclCommSplit hands its new communicator
  // over from NCCL's own thread after the call returns; on H100s with NCCL 2.28 a one-rank split
  // corrupted the heap (2.28.9) and crashed (2.28.3), so it stays out until a user of it can be
  // tested on several GPUs.
  return unimplemented(
      "NCCL sub-groups (split) are not built: pipeline parallelism on CUDA is refused and tensor "
      "parallelism uses every rank");
}

void NcclCommunicator::abort(int code) {
  if (comm_ != nullptr && comm_->comm != nullptr && !aborted_) {
    g_nccl.CommAbort(comm_->comm);
    aborted_ = true;
  }
  bootstrap_->abort(code);
  std::_Exit(code);  // the bootstrap's abort returned (it should not)
}

Status NcclCommunicator::synchronize() {
  KITE_CUDA_RETURN_IF_ERROR(cudaEventRecord(done_, stream_));
  if (size_ == 1) return cuda_status(cudaEventSynchronize(done_), "synchronize");
  if (aborted_) return unavailable("NCCL communicator aborted after an earlier error");
  const auto deadline = Clock::now() + options_.collective_timeout;
  int polls = 0;
  for (;;) {
    const cudaError_t q = cudaEventQuery(done_);
    if (q == cudaSuccess) return ok_status();
    if (q != cudaErrorNotReady) return cuda_status(q, "synchronize (NCCL stream)");
    ncclResult_t async = ncclSuccess;
    if (g_nccl.CommGetAsyncError(comm_->comm, &async) != ncclSuccess) async = ncclInternalError;
    if (async != ncclSuccess && async != ncclInProgress) {
      return fail("collective", g_nccl.GetErrorString(async));
    }
    if (Clock::now() > deadline) {
      Status s =
          fail("collective", fmt::format("did not complete within {} s (KITE_COLLECTIVE_TIMEOUT_S)",
                                         options_.collective_timeout.count() / 1000));
      return aborted(s.message());
    }
    backoff(&polls);
  }
}

}  // namespace kite::cuda
