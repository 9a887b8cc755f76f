// DeviceBuffer: one cudaMalloc allocation, freed on destruction; PinnedBuffer: page-locked host
// memory for asynchronous copies. One class template over the two allocators; both are movable,
// not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kite/status.h"

namespace kite::cuda {

// The allocators (device_buffer.cpp). allocate: cudaMalloc / cudaMallocHost with an error
// naming `what` and the size (kResourceExhausted when the memory is out).
struct DeviceMemory {
  static Status allocate(void** ptr, size_t nbytes, const char* what);
  static void free(void* ptr);
};
struct PinnedHostMemory {
  static Status allocate(void** ptr, size_t nbytes, const char* what);
  static void free(void* ptr);
};

template <typename Memory>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  ~CudaBuffer() { reset(); }
  CudaBuffer(CudaBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;

  static Result<CudaBuffer> allocate(size_t nbytes, const char* what) {
    CudaBuffer b;
    if (nbytes == 0) return b;
    KITE_RETURN_IF_ERROR(Memory::allocate(&b.ptr_, nbytes, what));
    b.size_ = nbytes;
    return b;
  }

  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void reset() {
    if (ptr_ != nullptr) Memory::free(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

using DeviceBuffer = CudaBuffer<DeviceMemory>;
using PinnedBuffer = CudaBuffer<PinnedHostMemory>;

// Rounds `n` up to a multiple of `align` (a power of two).
constexpr size_t align_up(size_t n, size_t align) { return (n + align - 1) & ~(align - 1); }

}  // namespace kite::cuda
