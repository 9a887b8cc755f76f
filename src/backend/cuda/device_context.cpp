#include "backend/cuda/device_context.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"

namespace kite::cuda {

Result<std::unique_ptr<DeviceContext>> DeviceContext::create(int device, bool make_stream) {
  int count = 0;
  KITE_RETURN_IF_ERROR(cuda_status(cudaGetDeviceCount(&count), "looking for a CUDA device"));
  if (device < 0 || device >= count) {
    return unavailable("CUDA device " + std::to_string(device) + " does not exist (" +
                       std::to_string(count) + " visible)");
  }
  std::unique_ptr<DeviceContext> c(new DeviceContext());
  c->device_ = device;
  KITE_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&c->cc_major_, cudaDevAttrComputeCapabilityMajor, device));
  KITE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&c->cc_minor_, cudaDevAttrComputeCapabilityMinor, device));
  if (c->cc_major_ < 8) {
    return unimplemented(
        "the CUDA backend needs compute capability 8.0 or newer (bf16 tensor cores); device " +
        std::to_string(device) + " has " + std::to_string(c->cc_major_) + ".x");
  }
  KITE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&c->num_sms_, cudaDevAttrMultiProcessorCount, device));
  int smem = 0;
  KITE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  c->max_smem_optin_ = static_cast<size_t>(smem);
  const char* env = std::getenv("KITE_CUDA_PDL");
  c->pdl_ = c->cc_major_ >= 9 && !(env != nullptr && std::strcmp(env, "0") == 0);
  const char* moe_tc = std::getenv("KITE_MOE_TC");
  c->moe_tc_ = moe_tc != nullptr && std::strcmp(moe_tc, "1") == 0;
  if (make_stream) {
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&c->stream_, cudaStreamNonBlocking));
    KITE_ASSIGN_OR_RETURN(c->gemm_, GemmRunner::create());
  }
  return c;
}

DeviceContext::~DeviceContext() {
  if (stream_ != nullptr) {
    KITE_CUDA_WARN(cudaSetDevice(device_));
    KITE_CUDA_WARN(cudaStreamSynchronize(stream_));
    gemm_.reset();
    KITE_CUDA_WARN(cudaStreamDestroy(stream_));
  }
}

Status DeviceContext::make_current() const {
  return cuda_status(cudaSetDevice(device_), "selecting the runner's device");
}

void DeviceContext::once(const void* key, const std::function<void()>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (once_done_.count(key) != 0) return;
  fn();
  once_done_.insert(key);
}

int DeviceContext::ctas_per_sm(const void* kernel, int threads, size_t smem) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = occupancy_.find(kernel);
  if (it != occupancy_.end()) return it->second;
  int n = 0;
  KITE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem));
  n = std::max(n, 1);
  occupancy_[kernel] = n;
  return n;
}

}  // namespace kite::cuda
