// Checking CUDA runtime and cuBLAS(Lt) calls.
//
// Two kinds of failure:
//  - user-causable (out of memory, no device, unsupported GPU): convert to a Status with
//    cuda_status()/cublas_status() and return it (KITE_CUDA_RETURN_IF_ERROR);
//  - invariant breaks (a launch with bad arguments, an illegal address in a kernel): abort
//    with the call, file and line (KITE_CUDA_CHECK).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "core/check.h"
#include "kite/status.h"

namespace kite::cuda {

// OK for cudaSuccess; kResourceExhausted for cudaErrorMemoryAllocation; kUnavailable for "no
// device"/"insufficient driver"; kInternal otherwise. `what` names the failed operation.
Status cuda_status(cudaError_t err, std::string_view what);
Status cublas_status(cublasStatus_t st, std::string_view what);

const char* cublas_status_name(cublasStatus_t st);

void warn_cuda(cudaError_t err, const char* what);
void warn_cublas(cublasStatus_t st, const char* what);

}  // namespace kite::cuda

#define KITE_CUDA_CHECK(expr)                                        \
  do {                                                               \
    cudaError_t kite_cuda_err_ = (expr);                             \
    KITE_CHECK(kite_cuda_err_ == cudaSuccess)                        \
        << #expr << ": " << cudaGetErrorName(kite_cuda_err_) << " (" \
        << cudaGetErrorString(kite_cuda_err_) << ")";                \
  } while (0)

#define KITE_CUBLAS_CHECK(expr)                                                \
  do {                                                                         \
    cublasStatus_t kite_cublas_st_ = (expr);                                   \
    KITE_CHECK(kite_cublas_st_ == CUBLAS_STATUS_SUCCESS)                       \
        << #expr << ": " << ::kite::cuda::cublas_status_name(kite_cublas_st_); \
  } while (0)

// For teardown paths that cannot return a Status (destructors, cleanup after another error):
// a failure is logged, never dropped silently.
#define KITE_CUDA_WARN(expr) ::kite::cuda::warn_cuda((expr), #expr)
#define KITE_CUBLAS_WARN(expr) ::kite::cuda::warn_cublas((expr), #expr)

// Returns a Status from the enclosing function when the CUDA call fails.
#define KITE_CUDA_RETURN_IF_ERROR(expr) \
  KITE_RETURN_IF_ERROR(::kite::cuda::cuda_status((expr), #expr))

// After a kernel launch: the launch itself must have been accepted.
#define KITE_CUDA_CHECK_LAUNCH() KITE_CUDA_CHECK(cudaGetLastError())
