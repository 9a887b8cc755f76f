// Host-side launch helpers shared by every launcher (plain C++; no CUDA syntax). Device
// properties (SM count, PDL) live in the runner's DeviceContext (device_context.h), never in
// process-wide state.
#pragma once

#include <cuda_runtime_api.h>

namespace kite::cuda {

// Aborts with the launch configuration when `err` is not cudaSuccess.
void check_launch(cudaError_t err, dim3 grid, dim3 block, size_t smem_bytes);

}  // namespace kite::cuda
