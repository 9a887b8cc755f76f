// DeviceBuffer: one cudaMalloc allocation, freed on destruction; PinnedBuffer: page-locked host
// memory for asynchronous copies. Both are movable, not copyable.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kite/status.h"

namespace kite::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // kResourceExhausted (naming `what` and the size) when the device is out of memory.
  static Result<DeviceBuffer> allocate(size_t nbytes, const char* what);

  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void reset();

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  static Result<PinnedBuffer> allocate(size_t nbytes, const char* what);

  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void reset();

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Rounds `n` up to a multiple of `align` (a power of two).
constexpr size_t align_up(size_t n, size_t align) { return (n + align - 1) & ~(align - 1); }

}  // namespace kite::cuda
