#include "backend/cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <string>

#include "backend/cuda/cuda_check.h"

namespace kite::cuda {

namespace {
std::string describe(const char* what, size_t nbytes) {
  return std::string("allocating ") + what + " (" + std::to_string(nbytes) + " bytes)";
}
}  // namespace

Status DeviceMemory::allocate(void** ptr, size_t nbytes, const char* what) {
  return cuda_status(cudaMalloc(ptr, nbytes), describe(what, nbytes));
}

void DeviceMemory::free(void* ptr) { KITE_CUDA_CHECK(cudaFree(ptr)); }

Status PinnedHostMemory::allocate(void** ptr, size_t nbytes, const char* what) {
  return cuda_status(cudaMallocHost(ptr, nbytes), describe(what, nbytes));
}

void PinnedHostMemory::free(void* ptr) { KITE_CUDA_CHECK(cudaFreeHost(ptr)); }

}  // namespace kite::cuda
