// The op table (as llama.cpp's test-backend-ops): every CUDA op x dtype x shape the backend
// runs, as one list of cases. Each case prepares random inputs on the device, launches the op,
// and checks its output against the CPU reference ops (backend/cpu/ops.h) computed from the same
// inputs; cuda_ops_test runs every case, `kite_cuda_bench --ops` times every case (bytes or
// FLOPs per second).
//
// Bounds (per case, from its dtype; see gpu_test_util.h for the error measure):
//   bf16: (number of bf16 roundings the kernel applies that the float32 reference does not)
//         * 2^-8, bf16's unit roundoff; per-element allowances where an error scales with
//         something other than the element (a rotated pair's norm, attention's sum of |p v|, a
//         fused input's sum of |w x|);
//   f32 (the float32 compute mode): the kernel and the reference compute the same formula and
//         differ only in summation order and the last ulp of exp/sqrt/cos:
//         kF32Bound = 2^-16 relative (the runner tests' float32 bound), tight enough to catch a
//         single bf16 rounding (2^-8) or TF32 (2^-11).
// Exact ops (embedding, the KV cache copy, argmax) compare bit for bit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_context.h"
#include "core/dtype.h"

namespace kite::cuda::test {

constexpr double kBf16Unit = 1.0 / 256.0;    // 2^-8
constexpr double kF32Bound = 1.0 / 65536.0;  // 2^-16

// The outcome of comparing a case's output with its reference.
struct OpCheck {
  bool ok = true;
  std::string detail;  // what was compared and how far off (always filled)
};

// One prepared case: inputs and outputs on the device, inputs kept on the host for the
// reference. REQUIRES: the context's device is current.
class OpRun {
 public:
  virtual ~OpRun() = default;
  // Launches the op (one or more kernels) on `stream`. May be repeated (the benchmark); ops that
  // update a tensor in place then see their previous output, which changes values, not speed.
  virtual void launch(const DeviceContext& dev, cudaStream_t stream) = 0;
  // After exactly one launch() and a synchronization: downloads the outputs, computes the CPU
  // reference and compares.
  virtual OpCheck check() = 0;
  // Bytes one launch reads and writes at least once (inputs, weights, outputs), and its
  // floating-point operations (0 for memory-bound ops: the benchmark reports bytes per second).
  virtual double bytes() const = 0;
  virtual double flops() const { return 0; }
};

struct OpCase {
  std::string op;     // "rms_norm", "gemv", "attention", ...
  DType dtype;        // the compute dtype of the case
  std::string shape;  // "h4096_n17_delta" (letters, digits and '_')
  std::function<std::unique_ptr<OpRun>(const DeviceContext& dev, uint32_t seed)> make;
  // Optional: why the case cannot run on `dev` in this build (empty = it can), e.g. FlashInfer
  // cases without FlashInfer.
  std::function<std::string(const DeviceContext& dev)> skip = nullptr;
  // gtest-safe unique name: op_dtype_shape.
  std::string name() const;
};

// Every case, in a fixed order.
const std::vector<OpCase>& op_table();

// ---- helpers shared by the case files (op_table*.cpp) -------------------------------------------

// A tensor of `dtype` (bf16 or f32) with its values on the host (floats; bf16-exact for bf16)
// and a device copy.
struct HostDeviceTensor {
  DType dtype = DType::kBF16;
  std::vector<float> host;
  DeviceBuffer dev;
  size_t size() const { return host.size(); }
  void* ptr() const { return dev.data(); }
};

// n uniform values in [lo, hi] (rounded to bf16 for bf16), uploaded.
HostDeviceTensor random_tensor(DType dtype, size_t n, std::mt19937& rng, float lo = -1.f,
                               float hi = 1.f);
// A tensor holding `values` (rounded to bf16 for bf16), uploaded.
HostDeviceTensor tensor_of(DType dtype, std::vector<float> values);
// n elements of `dtype` on the device, every byte 0xff (NaN for floats, -1 for int32).
DeviceBuffer poisoned(DType dtype, size_t n);
DeviceBuffer device_ints(const std::vector<int32_t>& v);
// The device values as floats.
std::vector<float> download(const void* dev, DType dtype, size_t n);
std::vector<int32_t> download_ints(const void* dev, size_t n);
size_t dtype_size(DType dtype);

// Comparisons (the measure of gpu_test_util.h, without gtest).
OpCheck check_within(const std::vector<float>& got, const std::vector<float>& ref, double bound,
                     const std::string& what);
OpCheck check_each(const std::vector<float>& got, const std::vector<float>& ref,
                   const std::vector<double>& allowed, const std::string& what);
OpCheck check_equal(const std::vector<float>& got, const std::vector<float>& ref,
                    const std::string& what);
// Relative L2 error ||got - ref|| / ||ref|| <= bound (with a per-element check_each: the
// allowance carries the element-wise part).
OpCheck check_rel_l2(const std::vector<float>& got, const std::vector<float>& ref, double bound,
                     const std::string& what);
// Both must hold; details joined.
OpCheck both(OpCheck a, const OpCheck& b);

// The stream forms of the arguments, concatenated: cat("h", 4096, "_n", 17) == "h4096_n17".
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

// The case lists of each file.
void add_elementwise_cases(std::vector<OpCase>& cases);  // op_table.cpp
void add_linear_cases(std::vector<OpCase>& cases);       // op_table_linear.cpp
void add_attention_cases(std::vector<OpCase>& cases);    // op_table_attention.cpp
void add_fp8_cases(std::vector<OpCase>& cases);          // op_table_fp8.cpp
void add_family_cases(std::vector<OpCase>& cases);       // op_table_family.cpp

}  // namespace kite::cuda::test
