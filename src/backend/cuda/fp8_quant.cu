#include <cuda_fp8.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/fp8_quant.h"

namespace kite::cuda {
namespace {

constexpr int kThreads = 128;  // one CTA per (row, group): a 128-column group per thread block

// Grid (rows, groups); groups = 1 with a per-row scale.
__global__ void __launch_bounds__(kThreads) quantize_fp8_kernel(QuantizeFp8Params p) {
  __shared__ float scratch[32];
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x;
  const int c0 = p.group == 0 ? 0 : blockIdx.y * p.group;
  const int c1 = p.group == 0 ? p.cols : min(p.cols, c0 + p.group);
  const __nv_bfloat16* x = static_cast<const __nv_bfloat16*>(p.x) + r * p.x_stride;
  float amax = 0.f;
  for (int c = c0 + threadIdx.x; c < c1; c += kThreads) {
    amax = fmaxf(amax, fabsf(__bfloat162float(x[c])));
  }
  amax = warp_max(amax);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = amax;
  __syncthreads();
  float m = 0.f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, scratch[w]);
  const float s = fp8_scale_of(m);
  if (threadIdx.x == 0) {
    const int groups = p.group == 0 ? 1 : (p.cols + p.group - 1) / p.group;
    p.scale[p.group_major ? blockIdx.y * p.rows + r : r * groups + blockIdx.y] = s;
  }
  uint8_t* q = p.q + r * p.q_stride;
  for (int c = c0 + threadIdx.x; c < c1; c += kThreads) q[c] = to_e4m3(__bfloat162float(x[c]) / s);
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
  const int groups = p.group == 0 ? 1 : (p.cols + p.group - 1) / p.group;
  launch(quantize_fp8_kernel, dim3(p.rows, groups), dim3(kThreads), 0, dev, stream, p);
}

void dequantize_fp8_weight(const DequantizeFp8Params& p, const DeviceContext& dev,
                           cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0) return;
  const int blocks_x = std::min((p.cols + 255) / 256, 8);
  launch(dequantize_fp8_kernel, dim3(blocks_x, p.rows), dim3(256), 0, dev, stream, p);
}

}  // namespace kite::cuda
