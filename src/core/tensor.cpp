#include "core/tensor.h"

#include <cstdlib>
#include <new>

#include "core/check.h"

namespace kite {

TensorView::TensorView(void* data_ptr, DType type, std::initializer_list<int64_t> dims,
                       Device dev) {
  KITE_CHECK_LE(dims.size(), static_cast<size_t>(kMaxTensorDims));
  *this = contiguous(data_ptr, type, dims.begin(), static_cast<int>(dims.size()), dev);
}

TensorView TensorView::contiguous(void* data_ptr, DType type, const int64_t* dims, int n,
                                  Device dev) {
  KITE_CHECK(n >= 0 && n <= kMaxTensorDims) << n;
  TensorView t;
  t.data = data_ptr;
  t.dtype = type;
  t.device = dev;
  t.ndim = n;
  int64_t stride = 1;
  for (int i = n - 1; i >= 0; --i) {
    t.shape[i] = dims[i];
    t.strides[i] = stride;
    stride *= dims[i];
  }
  return t;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t stride = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != stride) return false;
    stride *= shape[i];
  }
  return true;
}

int64_t TensorView::nbytes() const {
  KITE_CHECK(is_contiguous()) << to_string();
  return dtype_bytes(dtype, numel());
}

std::string TensorView::to_string() const {
  std::string s(dtype_name(dtype));
  s += "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

HostBuffer::HostBuffer(size_t nbytes) : size_(nbytes) {
  const size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  if (rounded && !p) throw std::bad_alloc();
  ptr_.reset(p);
}

void HostBuffer::Free::operator()(void* p) const { std::free(p); }

}  // namespace kite
