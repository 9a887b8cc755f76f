#include "backend/cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <string>
#include <utility>

#include "backend/cuda/cuda_check.h"

namespace kite::cuda {

namespace {
std::string describe(const char* what, size_t nbytes) {
  return std::string("allocating ") + what + " (" + std::to_string(nbytes) + " bytes)";
}
}  // namespace

DeviceBuffer::~DeviceBuffer() { reset(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t nbytes, const char* what) {
  DeviceBuffer b;
  if (nbytes == 0) return b;
  KITE_RETURN_IF_ERROR(cuda_status(cudaMalloc(&b.ptr_, nbytes), describe(what, nbytes)));
  b.size_ = nbytes;
  return b;
}

void DeviceBuffer::reset() {
  if (ptr_ != nullptr) KITE_CUDA_CHECK(cudaFree(ptr_));
  ptr_ = nullptr;
  size_ = 0;
}

PinnedBuffer::~PinnedBuffer() { reset(); }

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Result<PinnedBuffer> PinnedBuffer::allocate(size_t nbytes, const char* what) {
  PinnedBuffer b;
  if (nbytes == 0) return b;
  KITE_RETURN_IF_ERROR(cuda_status(cudaMallocHost(&b.ptr_, nbytes), describe(what, nbytes)));
  b.size_ = nbytes;
  return b;
}

void PinnedBuffer::reset() {
  if (ptr_ != nullptr) KITE_CUDA_CHECK(cudaFreeHost(ptr_));
  ptr_ = nullptr;
  size_ = 0;
}

}  // namespace kite::cuda
