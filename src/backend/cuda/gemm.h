// Dense GEMMs through cuBLASLt: Y[m, n] = X[m, k] W[n, k]^T (+ bias[n]), FP32 accumulation; all
// row-major with leading dimensions in elements. dtype bf16: BF16 inputs, BF16 or F32 output.
// dtype f32 (the float32 compute mode): every operand F32 and pure FP32 arithmetic
// (CUBLAS_COMPUTE_32F: no TF32, no BF16 down-conversion). The pairs: gemm_supports
// (kernel_support.h).
//
// A GemmRunner owns the cuBLASLt handle and one workspace. The descriptors and the layouts are
// created once per distinct shape and cached (at most kMaxPlans; the cache starts over when
// full), so the step path does no allocation and CUDA-graph capture sees the same calls as
// eager runs. The algorithm is chosen per row bucket, not per exact row count: up to
// kExactRowsMax rows each count is its own bucket (decode batches, where the best tile differs
// from one size to the next); above, the rows round up to a power of two and the heuristic runs
// once per bucket, on the layouts of the bucket's largest row count. A new row count in a known
// bucket then costs its layouts and a cublasLtMatmulAlgoCheck of the bucket's algorithm (a fresh
// heuristic query only when the check refuses it), instead of a heuristic query on the step's
// critical path for every new prefill length. (TensorRT-LLM's GEMM plugins pick their tactic
// the same way, by m rounded up to a power of two.) The algorithm for a row count depends only
// on that count, never on which counts came first. KITE_GEMM_ALGO_BUCKETS=0 (or
// set_algo_buckets(false)) queries the heuristic for every exact shape, as before.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/device_buffer.h"
#include "core/dtype.h"
#include "kite/status.h"

namespace kite::cuda {

// How an FP8 GEMM's operands are scaled (cuBLASLt's matrix scale modes).
enum class Fp8Scaling : uint8_t {
  kRowwise,  // w_scale [n] per output channel, x_scale [m] per token (OUTER_VEC_32F)
  kBlock,    // w_scale [ceil(n/128), ceil(k/128)] per 128x128 block (BLK128x128_32F: the
             // k-block index contiguous, so ceil(k/128) must be a multiple of 4 for the
             // 16-byte-aligned stride cuBLASLt takes), x_scale per token and 128-column group
             // stored [ceil(k/128), m], the token index contiguous (VEC128_32F, "outer-dim-major";
             // Fp8Output::group_major writes it)
};

struct GemmArgs {
  const void* x = nullptr;     // [m, k] of dtype, leading dimension ldx
  const void* w = nullptr;     // [n, k] of dtype, leading dimension ldw
  const void* bias = nullptr;  // nullptr or [n] (bf16 with FP8 inputs; else of dtype, output
                               // dtype == dtype only)
  void* y = nullptr;           // [m, n] of out_dtype, leading dimension ldy
  int m = 0, n = 0, k = 0;
  int64_t ldx = 0, ldw = 0, ldy = 0;
  DType dtype = DType::kBF16;      // x, w, bias
  DType out_dtype = DType::kBF16;  // y
  // dtype kF8E4M3: y = (x_scale * x) (w_scale * w)^T with F32 scales as `fp8_scaling` says.
  Fp8Scaling fp8_scaling = Fp8Scaling::kRowwise;
  const float* w_scale = nullptr;
  const float* x_scale = nullptr;
};

class GemmRunner {
 public:
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  static constexpr size_t kWorkspaceBytes = 32u << 20;
  static Result<std::unique_ptr<GemmRunner>> create();

  // kUnimplemented for a dtype pair outside gemm_supports or when cuBLASLt has no algorithm for
  // the shape; kInternal on a failed launch.
  Status gemm(const GemmArgs& a, cudaStream_t stream);

  static constexpr int kExactRowsMax = 128;
  static constexpr size_t kMaxPlans = 1024;
  // The bucket of m rows: m itself up to kExactRowsMax, else the next power of two.
  static int row_bucket(int m);

  // Algorithms per bucket (true, the default unless KITE_GEMM_ALGO_BUCKETS=0) or per exact
  // shape. Clears the caches.
  void set_algo_buckets(bool on);
  bool algo_buckets() const { return algo_buckets_; }

  // Number of shapes planned so far and cached now (tests check the cache).
  size_t num_plans() const { return plans_.size(); }
  // Algorithms chosen (one per bucket and shape), heuristic queries made, and exact shapes that
  // took their bucket's algorithm after cublasLtMatmulAlgoCheck, since creation.
  size_t num_algos() const { return algos_.size(); }
  int64_t num_heuristic_queries() const { return heuristic_queries_; }
  int64_t num_algo_reuses() const { return algo_reuses_; }

 private:
  struct Plan;
  struct Algo;
  using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, DType, DType, bool, Fp8Scaling>;
  GemmRunner() = default;
  Result<Plan*> plan_for(const GemmArgs& a);
  // The heuristic's first algorithm for `plan`'s descriptor over m rows (layouts made here when
  // m differs from the plan's).
  Status query_heuristic(const GemmArgs& g, Plan* plan, int m, const std::string& what, Algo* out);

  void* handle_ = nullptr;  // cublasLtHandle_t
  DeviceBuffer workspace_;
  bool algo_buckets_ = true;
  std::map<Key, std::unique_ptr<Plan>> plans_;  // per exact shape
  std::map<Key, std::unique_ptr<Algo>> algos_;  // per bucket (m = row_bucket(m))
  int64_t heuristic_queries_ = 0;
  int64_t algo_reuses_ = 0;
};

}  // namespace kite::cuda
