#include "backend/cuda/gemm.h"

#include <cublasLt.h>

#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_support.h"

namespace kite::cuda {

struct GemmRunner::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_bias = false;
  bool fp8 = false;
  ~Plan() {
    if (c != nullptr) KITE_CUBLAS_WARN(cublasLtMatrixLayoutDestroy(c));
    if (b != nullptr) KITE_CUBLAS_WARN(cublasLtMatrixLayoutDestroy(b));
    if (a != nullptr) KITE_CUBLAS_WARN(cublasLtMatrixLayoutDestroy(a));
    if (desc != nullptr) KITE_CUBLAS_WARN(cublasLtMatmulDescDestroy(desc));
  }
};

struct GemmRunner::Algo {
  cublasLtMatmulAlgo_t algo{};
};

int GemmRunner::row_bucket(int m) {
  if (m <= kExactRowsMax) return m;
  int b = kExactRowsMax;
  while (b < m && b < (1 << 30)) b *= 2;
  return b;
}

void GemmRunner::set_algo_buckets(bool on) {
  algo_buckets_ = on;
  plans_.clear();
  algos_.clear();
}

GemmRunner::~GemmRunner() {
  plans_.clear();
  if (handle_ != nullptr) KITE_CUBLAS_WARN(cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_)));
}

Result<std::unique_ptr<GemmRunner>> GemmRunner::create() {
  std::unique_ptr<GemmRunner> r(new GemmRunner());
  cublasLtHandle_t h = nullptr;
  KITE_RETURN_IF_ERROR(cublas_status(cublasLtCreate(&h), "cublasLtCreate"));
  r->handle_ = h;
  const char* env = std::getenv("KITE_GEMM_ALGO_BUCKETS");
  r->algo_buckets_ = !(env != nullptr && std::string(env) == "0");
  KITE_ASSIGN_OR_RETURN(r->workspace_,
                        DeviceBuffer::allocate(kWorkspaceBytes, "cuBLASLt workspace"));
  return r;
}

namespace {

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF8E4M3:
      return CUDA_R_8F_E4M3;
    default:
      return CUDA_R_16BF;
  }
}

}  // namespace

Result<GemmRunner::Plan*> GemmRunner::plan_for(const GemmArgs& g) {
  const Key key{g.m,     g.n,         g.k, g.ldx, g.ldw, g.ldy, g.dtype, g.out_dtype,
                g.bias != nullptr, g.fp8_scaling};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();

  // Row-major Y[m,n] = X W^T is column-major Y'[n,m] = op(A) B with A = W stored as a
  // column-major [k, n] matrix (transposed), B = X stored as column-major [k, m].
  auto plan = std::make_unique<Plan>();
  const std::string what = "cuBLASLt plan m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
                           " k=" + std::to_string(g.k);
  KITE_RETURN_IF_ERROR(
      cublas_status(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), what));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  KITE_RETURN_IF_ERROR(cublas_status(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
      what));
  KITE_RETURN_IF_ERROR(cublas_status(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
      what));
  if (g.bias != nullptr) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    KITE_RETURN_IF_ERROR(
        cublas_status(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                     &epi, sizeof(epi)),
                      what));
    const cudaDataType_t bias_type =
        g.dtype == DType::kF8E4M3 ? CUDA_R_16BF : cuda_type(g.dtype);
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                       sizeof(bias_type)),
        what));
    plan->has_bias = true;
  }
  if (g.dtype == DType::kF8E4M3) {
    // A = the weights, B = the activations (see above); their scales multiply in FP32.
    const bool block = g.fp8_scaling == Fp8Scaling::kBlock;
    if (block && ((g.k + 127) / 128) % 4 != 0) {
      // The weight's block-scale rows (ceil(k/128) floats) are not 16-byte aligned.
      return unimplemented(what + " block-scaled FP8 GEMM with ceil(k/128) not a multiple of 4");
    }
    const cublasLtMatmulMatrixScale_t a_mode =
        block ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F
              : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const cublasLtMatmulMatrixScale_t b_mode =
        block ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode,
                                       sizeof(a_mode)),
        what + " (FP8 weight scale mode)"));
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode,
                                       sizeof(b_mode)),
        what + " (FP8 activation scale mode)"));
    // Vector and block scale modes have no default (a null pointer means 1.0 only for scalar
    // scales): the heuristic refuses the descriptor (CUBLAS_STATUS_INVALID_VALUE) until both
    // pointers are set, so the plan is made with this call's; gemm() sets each call's own.
    if (g.w_scale == nullptr || g.x_scale == nullptr) {
      return invalid_argument("FP8 GEMM without its scales");
    }
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                       &g.w_scale, sizeof(g.w_scale)),
        what + " (FP8 weight scale)"));
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                       &g.x_scale, sizeof(g.x_scale)),
        what + " (FP8 activation scale)"));
    plan->fp8 = true;
  }
  const cudaDataType_t in_type = cuda_type(g.dtype);
  const cudaDataType_t out_type = cuda_type(g.out_dtype);
  KITE_RETURN_IF_ERROR(
      cublas_status(cublasLtMatrixLayoutCreate(&plan->a, in_type, g.k, g.n, g.ldw), what));
  KITE_RETURN_IF_ERROR(
      cublas_status(cublasLtMatrixLayoutCreate(&plan->b, in_type, g.k, g.m, g.ldx), what));
  KITE_RETURN_IF_ERROR(
      cublas_status(cublasLtMatrixLayoutCreate(&plan->c, out_type, g.n, g.m, g.ldy), what));

  // The algorithm: the bucket's (checked against this shape's layouts when the bucket spans
  // several row counts), else a heuristic query for this exact shape.
  const int bucket = algo_buckets_ ? row_bucket(g.m) : g.m;
  Key bucket_key = key;
  std::get<0>(bucket_key) = bucket;
  auto ait = algos_.find(bucket_key);
  if (ait == algos_.end()) {
    auto algo = std::make_unique<Algo>();
    const Status st = query_heuristic(g, plan.get(), bucket, what, algo.get());
    // FP8 without a scaled GEMM here: the caller's fallback, whatever the row count.
    if (!st.ok() && (bucket == g.m || g.dtype == DType::kF8E4M3)) return st;
    if (st.ok()) ait = algos_.emplace(bucket_key, std::move(algo)).first;
  }
  bool have_algo = false;
  if (ait != algos_.end()) {
    if (bucket == g.m) {
      plan->algo = ait->second->algo;
      have_algo = true;
    } else {
      cublasLtMatmulHeuristicResult_t check{};
      const cublasStatus_t st =
          cublasLtMatmulAlgoCheck(static_cast<cublasLtHandle_t>(handle_), plan->desc, plan->a,
                                  plan->b, plan->c, plan->c, &ait->second->algo, &check);
      if (st == CUBLAS_STATUS_SUCCESS && check.workspaceSize <= kWorkspaceBytes) {
        plan->algo = ait->second->algo;
        have_algo = true;
        ++algo_reuses_;
      }
    }
  }
  if (!have_algo) {
    Algo exact;
    KITE_RETURN_IF_ERROR(query_heuristic(g, plan.get(), g.m, what, &exact));
    plan->algo = exact.algo;
  }
  if (plans_.size() >= kMaxPlans) plans_.clear();  // bounded: the algorithms stay cached
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

Status GemmRunner::query_heuristic(const GemmArgs& g, Plan* plan, int m, const std::string& what,
                                   Algo* out) {
  ++heuristic_queries_;
  // Layouts over m rows when they differ from the plan's (the bucket's largest row count).
  cublasLtMatrixLayout_t b = plan->b, c = plan->c;
  cublasLtMatrixLayout_t b_m = nullptr, c_m = nullptr;
  struct Free {
    cublasLtMatrixLayout_t* l;
    ~Free() {
      if (*l != nullptr) KITE_CUBLAS_WARN(cublasLtMatrixLayoutDestroy(*l));
    }
  } free_b{&b_m}, free_c{&c_m};
  if (m != g.m) {
    KITE_RETURN_IF_ERROR(
        cublas_status(cublasLtMatrixLayoutCreate(&b_m, cuda_type(g.dtype), g.k, m, g.ldx), what));
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatrixLayoutCreate(&c_m, cuda_type(g.out_dtype), g.n, m, g.ldy), what));
    b = b_m;
    c = c_m;
  }
  cublasLtMatmulPreference_t pref = nullptr;
  KITE_RETURN_IF_ERROR(cublas_status(cublasLtMatmulPreferenceCreate(&pref), what));
  const uint64_t ws = kWorkspaceBytes;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan->desc, plan->a,
                                        b, c, c, pref, 1, &result, &found);
  }
  KITE_CUBLAS_WARN(cublasLtMatmulPreferenceDestroy(pref));
  if (st != CUBLAS_STATUS_SUCCESS && g.dtype == DType::kF8E4M3) {
    // This cuBLASLt (or device) has no scaled FP8 GEMM for these scale modes: the caller falls
    // back to a dequantized bf16 GEMM (linear_dispatch.cpp) rather than failing the step.
    return unimplemented(what + " scaled FP8 GEMM: cuBLASLt heuristic returned " +
                         cublas_status(st, "").message());
  }
  KITE_RETURN_IF_ERROR(cublas_status(st, what + " heuristic"));
  if (found == 0) {
    return unimplemented(what + " " + std::string(dtype_name(g.dtype)) +
                         ": cuBLASLt has no algorithm for this shape (m=" + std::to_string(m) +
                         ")");
  }
  out->algo = result.algo;
  return ok_status();
}

Status GemmRunner::gemm(const GemmArgs& g, cudaStream_t stream) {
  if (!gemm_supports(g.dtype, g.out_dtype)) {
    return unimplemented("cuBLASLt GEMM: " + std::string(dtype_name(g.dtype)) + " -> " +
                         std::string(dtype_name(g.out_dtype)) + " is not supported");
  }
  if (g.m == 0) return ok_status();
  KITE_ASSIGN_OR_RETURN(Plan * plan, plan_for(g));
  if (plan->has_bias) {
    KITE_RETURN_IF_ERROR(
        cublas_status(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &g.bias, sizeof(g.bias)),
                      "cuBLASLt bias pointer"));
  }
  if (plan->fp8) {
    if (g.w_scale == nullptr || g.x_scale == nullptr) {
      return invalid_argument("FP8 GEMM without its scales");
    }
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                       &g.w_scale, sizeof(g.w_scale)),
        "cuBLASLt FP8 weight scale"));
    KITE_RETURN_IF_ERROR(cublas_status(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                       &g.x_scale, sizeof(g.x_scale)),
        "cuBLASLt FP8 activation scale"));
  }
  const float alpha = 1.f, beta = 0.f;
  return cublas_status(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), plan->desc, &alpha,
                                      g.w, plan->a, g.x, plan->b, &beta, g.y, plan->c, g.y, plan->c,
                                      &plan->algo, workspace_.data(), kWorkspaceBytes, stream),
                       "cublasLtMatmul");
}

}  // namespace kite::cuda
