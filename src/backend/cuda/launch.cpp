#include "backend/cuda/launch.h"

#include "backend/cuda/cuda_check.h"

namespace kite::cuda {

void check_launch(cudaError_t err, dim3 grid, dim3 block, size_t smem_bytes) {
  KITE_CHECK(err == cudaSuccess) << "kernel launch grid=(" << grid.x << "," << grid.y << ","
                                 << grid.z << ") block=(" << block.x << "," << block.y << ","
                                 << block.z << ") smem=" << smem_bytes << ": "
                                 << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ")";
}

}  // namespace kite::cuda
