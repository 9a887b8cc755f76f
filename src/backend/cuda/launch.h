// Host-side launch settings shared by every launcher (plain C++; no CUDA syntax).
#pragma once

#include <cuda_runtime_api.h>

namespace kite::cuda {

// Programmatic dependent launch: on for compute capability >= 9.0 unless KITE_CUDA_PDL=0.
// Decided once per process from the current device.
bool pdl_enabled();

// Number of multiprocessors of the current device (cached).
int num_sms();

// Aborts with the launch configuration when `err` is not cudaSuccess.
void check_launch(cudaError_t err, dim3 grid, dim3 block, size_t smem_bytes);

}  // namespace kite::cuda
