// DeviceContext: everything the CUDA backend knows and keeps about one GPU — its properties, the
// one-time kernel configuration (function attributes, occupancy), the runner's stream, and the
// cuBLASLt handle with its workspace. One per runner; nothing of it is process-wide, so one
// process can drive N runners on N GPUs (tensor/pipeline parallelism).
//
// Launchers take the context they launch on (`const DeviceContext&`) next to the stream; a
// kernel's per-device setup goes through once(), keyed by the kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "kite/status.h"

namespace kite::cuda {

class GemmRunner;

class DeviceContext {
 public:
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  // Makes `device` current and reads its properties. kUnavailable when it does not exist;
  // kUnimplemented below compute capability 8.0 (no bf16 tensor cores). With `make_stream`
  // the context owns a non-blocking stream and a cuBLASLt handle (the runner's); without, it
  // only describes the device (kernel tests and benchmarks bring their own streams).
  static Result<std::unique_ptr<DeviceContext>> create(int device, bool make_stream = true);

  int device() const { return device_; }
  int num_sms() const { return num_sms_; }
  int cc_major() const { return cc_major_; }
  int cc_minor() const { return cc_minor_; }
  // Programmatic dependent launch: compute capability >= 9.0 unless KITE_CUDA_PDL=0.
  bool pdl() const { return pdl_; }
  // MoE experts with more than 4 rows on the bf16 tensor-core grouped GEMM (moe.h) instead of the
  // CUDA-core one: off unless KITE_MOE_TC=1 (built, not yet measured on a GPU).
  bool moe_tensor_cores() const { return moe_tc_; }
  size_t max_smem_per_block_optin() const { return max_smem_optin_; }

  cudaStream_t stream() const { return stream_; }
  // REQUIRES: created with make_stream.
  GemmRunner& gemm() const { return *gemm_; }

  // Runs `fn` the first time it is called with `key` on this context (thread-safe). For
  // per-device kernel setup: cudaFuncSetAttribute applies to the current device only.
  void once(const void* key, const std::function<void()>& fn) const;
  // Active CTAs per SM of `kernel` at `threads` threads and `smem` dynamic shared memory on this
  // device, computed once per kernel.
  int ctas_per_sm(const void* kernel, int threads, size_t smem) const;

  // Makes this context's device current on the calling thread.
  Status make_current() const;

 private:
  DeviceContext() = default;

  int device_ = 0;
  int num_sms_ = 1;
  int cc_major_ = 0, cc_minor_ = 0;
  bool pdl_ = false;
  bool moe_tc_ = false;
  size_t max_smem_optin_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GemmRunner> gemm_;
  mutable std::mutex mu_;
  mutable std::set<const void*> once_done_;       // once() keys
  mutable std::map<const void*, int> occupancy_;  // ctas_per_sm() by kernel
};

}  // namespace kite::cuda
