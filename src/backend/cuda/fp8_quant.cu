#include <cuda_fp8.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/fp8_quant.h"

namespace kite::cuda {
namespace {

constexpr int kThreads = 256;

// One block per row: the rule and the layouts of fp8_quant.cuh, as the producers' fused copies.
__global__ void __launch_bounds__(kThreads) quantize_fp8_kernel(QuantizeFp8Params p) {
  __shared__ float scratch[32];
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x;
  const auto* x = static_cast<const __nv_bfloat16*>(p.x) + r * p.x_stride;
  quantize_row_fp8(x, p.cols, r, p.rows, p.out, scratch);
}

__global__ void dequantize_fp8_kernel(DequantizeFp8Params p) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.y;
  const int scols = (p.cols + kFp8Group - 1) / kFp8Group;
  __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.out) + static_cast<int64_t>(r) * p.cols;
  const uint8_t* w = p.w + static_cast<int64_t>(r) * p.cols;
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < p.cols; c += gridDim.x * blockDim.x) {
    const float s = p.block == 0 ? p.scale[r] : p.scale[(r / kFp8Group) * scols + c / kFp8Group];
    const __half h(__nv_cvt_fp8_to_halfraw(w[c], __NV_E4M3));
    out[c] = __float2bfloat16_rn(__half2float(h) * s);
  }
}

}  // namespace

void quantize_fp8(const QuantizeFp8Params& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0) return;
  launch(quantize_fp8_kernel, dim3(p.rows), dim3(kThreads), 0, dev, stream, p);
}

void dequantize_fp8_weight(const DequantizeFp8Params& p, const DeviceContext& dev,
                           cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0) return;
  const int blocks_x = std::min((p.cols + kThreads - 1) / kThreads, 8);
  launch(dequantize_fp8_kernel, dim3(blocks_x, p.rows), dim3(kThreads), 0, dev, stream, p);
}

}  // namespace kite::cuda
