// Helpers for the GPU differential tests: device arrays, random BF16 data, and the error
// measure every kernel test uses.
//
// Error measure: with ref in float32/float64 from the CPU ops (which see the same bf16-exact
// inputs), a kernel passes when
//   (1) no output is NaN or was left unwritten (outputs are poisoned with NaN first),
//   (2) ||out - ref||_2 / ||ref||_2 <= bound, and
//   (3) every element has |out_i - ref_i| <= bound * max(|ref_i|, rms(ref)).
// bound = (number of bf16 roundings the kernel applies on the way to an output that the
// float32 reference does not) * 2^-8, bf16's unit roundoff (8 significant bits): a worst-case
// bound, so a pass never depends on luck, while an indexing or masking bug gives O(1) errors.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/device_context.h"
#include "core/check.h"
#include "core/dtype.h"

namespace kite::cuda::test {

constexpr double kBf16Roundoff = 1.0 / 256.0;  // 2^-8

#define KITE_TEST_CUDA(expr)                                               \
  do {                                                                     \
    cudaError_t e_ = (expr);                                               \
    ASSERT_EQ(e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(e_); \
  } while (0)

inline bool has_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define KITE_REQUIRE_GPU() \
  if (!::kite::cuda::test::has_gpu()) GTEST_SKIP() << "no CUDA device visible"

// The context the kernel tests launch on: device 0, described once per test binary (no stream:
// the tests launch on the legacy default stream). REQUIRES: has_gpu().
inline const DeviceContext& test_device() {
  static const std::unique_ptr<DeviceContext> dev = [] {
    Result<std::unique_ptr<DeviceContext>> r = DeviceContext::create(0, /*make_stream=*/false);
    KITE_CHECK(r.ok()) << r.status().to_string();
    return std::move(*r);
  }();
  return *dev;
}

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n) {
    if (n > 0 && cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)) != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc of " << n * sizeof(T) << " bytes failed";
      p_ = nullptr;
    }
  }
  explicit DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) { upload(v); }
  ~DeviceArray() {
    if (p_ != nullptr) cudaFree(p_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& v) {
    if (v.empty()) return;
    EXPECT_EQ(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << "a kernel failed";
    EXPECT_EQ(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
  // All bytes 0xff: NaN for bf16/f32 outputs, -1 for ints.
  void poison() { EXPECT_EQ(cudaMemset(p_, 0xff, n_ * sizeof(T)), cudaSuccess); }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

inline std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float lo = -1.f,
                                         float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(d(rng)).bits;
  return v;
}

inline std::vector<float> to_float(const std::vector<uint16_t>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = bf16_to_f32(bf16_t{v[i]});
  return f;
}

struct ErrorStats {
  double rel_l2 = 0;
  double worst_ratio = 0;  // max_i |err_i| / max(|ref_i|, rms(ref))
  size_t worst_index = 0;
  size_t nan = 0;
  std::string to_string() const {
    return "rel_l2=" + std::to_string(rel_l2) + " worst_ratio=" + std::to_string(worst_ratio) +
           " at " + std::to_string(worst_index) + " nan=" + std::to_string(nan);
  }
};

inline ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref) {
  ErrorStats s;
  EXPECT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) den += static_cast<double>(ref[i]) * ref[i];
  const double rms = std::sqrt(den / std::max<size_t>(1, ref.size()));
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isinf(got[i])) {
      ++s.nan;
      continue;
    }
    const double e = static_cast<double>(got[i]) - ref[i];
    num += e * e;
    const double ratio = std::abs(e) / std::max<double>(std::abs(ref[i]), rms > 0 ? rms : 1.0);
    if (ratio > s.worst_ratio) {
      s.worst_ratio = ratio;
      s.worst_index = i;
    }
  }
  s.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return s;
}

inline ::testing::AssertionResult within(const ErrorStats& s, double bound) {
  if (s.nan == 0 && s.rel_l2 <= bound && s.worst_ratio <= bound) {
    return ::testing::AssertionSuccess() << s.to_string();
  }
  return ::testing::AssertionFailure() << s.to_string() << " bound=" << bound;
}

// Element-wise check against per-element allowances (for kernels whose error is relative to
// something other than the output element itself, e.g. attention's sum of |p v|).
inline ::testing::AssertionResult within_each(const std::vector<float>& got,
                                              const std::vector<float>& ref,
                                              const std::vector<double>& allowed) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!(e <= allowed[i])) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " elements over their bound; first at " << first << ": got " << got[first]
         << " ref " << ref[first] << " allowed " << allowed[first];
}

inline ::testing::AssertionResult close_bf16(const std::vector<uint16_t>& got_bits,
                                             const std::vector<float>& ref, int roundings) {
  return within(compare(to_float(got_bits), ref), roundings * kBf16Roundoff);
}

}  // namespace kite::cuda::test
