#include "backend/cuda/gemm.h"

#include <cublasLt.h>

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

GemmRunner::~GemmRunner() {
  plans_.clear();
  if (handle_ != nullptr) KITE_CUBLAS_WARN(cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_)));
}

Result<std::unique_ptr<GemmRunner>> GemmRunner::create() {
  std::unique_ptr<GemmRunner> r(new GemmRunner());
  cublasLtHandle_t h = nullptr;
  KITE_RETURN_IF_ERROR(cublas_status(cublasLtCreate(&h), "cublasLtCreate"));
  r->handle_ = h;
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

  cublasLtMatmulPreference_t pref = nullptr;
  KITE_RETURN_IF_ERROR(cublas_status(cublasLtMatmulPreferenceCreate(&pref), what));
  const uint64_t ws = kWorkspaceBytes;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan->desc, plan->a,
                                        plan->b, plan->c, plan->c, pref, 1, &result, &found);
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
                         ": cuBLASLt has no algorithm for this shape");
  }
  plan->algo = result.algo;
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
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
