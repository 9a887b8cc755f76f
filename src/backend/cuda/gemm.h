// Dense GEMMs through cuBLASLt: Y[m, n] = X[m, k] W[n, k]^T (+ bias[n]), BF16 inputs, FP32
// accumulation, BF16 or F32 output; all row-major with leading dimensions in elements. With `f32`
// every operand is F32 and the arithmetic is pure FP32 (CUBLAS_COMPUTE_32F: no TF32, no BF16
// down-conversion), the float32 compute mode.
//
// A GemmRunner owns the cuBLASLt handle and one workspace. The heuristic's algorithm, the
// descriptors and the layouts are created once per distinct shape and cached, so the step path
// does no allocation and CUDA-graph capture sees the same calls as eager runs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/device_buffer.h"
#include "kite/status.h"

namespace kite::cuda {

struct GemmArgs {
  const void* x = nullptr;     // [m, k] bf16, leading dimension ldx
  const void* w = nullptr;     // [n, k] bf16, leading dimension ldw
  const void* bias = nullptr;  // nullptr or [n] bf16 (bf16 output only)
  void* y = nullptr;           // [m, n], leading dimension ldy
  int m = 0, n = 0, k = 0;
  int64_t ldx = 0, ldw = 0, ldy = 0;
  bool out_f32 = false;
  bool f32 = false;  // x, w, bias and y are F32 (implies out_f32)
};

class GemmRunner {
 public:
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  static constexpr size_t kWorkspaceBytes = 32u << 20;
  static Result<std::unique_ptr<GemmRunner>> create();

  // kUnimplemented when cuBLASLt has no algorithm for the shape; kInternal on a failed launch.
  Status gemm(const GemmArgs& a, cudaStream_t stream);

  // Number of shapes planned so far (tests check the cache).
  size_t num_plans() const { return plans_.size(); }

 private:
  struct Plan;
  using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, bool, bool, bool>;
  GemmRunner() = default;
  Result<Plan*> plan_for(const GemmArgs& a);

  void* handle_ = nullptr;  // cublasLtHandle_t
  DeviceBuffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace kite::cuda
