// TensorView: a non-owning view of a dense tensor (host or device memory), and HostBuffer,
// 64-byte aligned owned host memory.
//
// Shapes are row-major: shape[ndim-1] is the fastest-moving dimension; strides are in elements.
// For block-quantized dtypes the last dimension counts logical values, must be a whole number
// of blocks, and the tensor must be contiguous.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"

namespace kite {

enum class Device : uint8_t { kCpu, kCuda };

constexpr int kMaxTensorDims = 4;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = Device::kCpu;
  int ndim = 0;
  std::array<int64_t, kMaxTensorDims> shape{};
  std::array<int64_t, kMaxTensorDims> strides{};  // elements

  TensorView() = default;
  // Contiguous view.
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape,
             Device device = Device::kCpu);
  static TensorView contiguous(void* data, DType dtype, const int64_t* shape, int ndim,
                               Device device = Device::kCpu);

  int64_t numel() const;
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  // Bytes spanned by a contiguous tensor. REQUIRES: is_contiguous().
  int64_t nbytes() const;
  bool is_contiguous() const;
  // Bytes of one row (the last dimension). REQUIRES: is_contiguous().
  int64_t row_bytes() const { return dtype_bytes(dtype, shape[ndim - 1]); }

  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // "BF16[4096, 128]"
  std::string to_string() const;
};

// 64-byte aligned host allocation; movable, not copyable.
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(size_t nbytes);
  HostBuffer(HostBuffer&&) noexcept = default;
  HostBuffer& operator=(HostBuffer&&) noexcept = default;

  void* data() const { return ptr_.get(); }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data());
  }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace kite
