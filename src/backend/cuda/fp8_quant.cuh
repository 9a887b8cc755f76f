// The FP8 E4M3 activation-quantization rule on the device, shared by the standalone
// quantize_fp8 kernel and the kernels that write an FP8 copy of their bf16 output (RMSNorm, the
// gated activations: fp8_quant.h's Fp8Output):
//   scale = amax / 448 (1 for an all-zero group), amax = max |x| over the group (fmaxf: a NaN
//   element never becomes the amax); q = e4m3(x / scale), IEEE division, round to nearest even,
//   saturating to +-448.
// The same rule as checkpoint/dequant.h's quantize_fp8_rows (the CPU emulation).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/common.cuh"
#include "backend/cuda/fp8_quant.h"

namespace kite::cuda {

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float fp8_scale_of(float amax) {
  return amax > 0.f ? amax / 448.f : 1.f;
}

// E4M3 bytes of x / s, packed little-endian (element 0 in the lowest byte).
__device__ __forceinline__ uint32_t e4m3x4(const float* x, float s) {
  return static_cast<uint32_t>(to_e4m3(x[0] / s)) | static_cast<uint32_t>(to_e4m3(x[1] / s)) << 8 |
         static_cast<uint32_t>(to_e4m3(x[2] / s)) << 16 |
         static_cast<uint32_t>(to_e4m3(x[3] / s)) << 24;
}

// Four bf16 values (an 8-byte load) as floats.
__device__ __forceinline__ void unpack_bf16x4(const uint2& v, float (&f)[4]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
  const float2 a = __bfloat1622float2(h[0]), b = __bfloat1622float2(h[1]);
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}

// Quantizes row `row` (of `rows`) of bf16 values `y[0 .. cols)` into `o` by the rule above:
// one scale per row (o.group 0: a block reduction) or per o.group columns (one warp per group).
// Rows whose bf16 values and E4M3 bytes are aligned for it move 8 (per row) or 4 (per group)
// elements per access; the values and their maxima are the same either way. The row is read
// from global memory: a kernel that has just written it calls this after a __syncthreads() (the
// block's writes are then visible to all its threads).
// REQUIRES: every thread of the block calls it; blockDim.x a multiple of 32; scratch >= 32 floats.
__device__ __forceinline__ void quantize_row_fp8(const __nv_bfloat16* y, int cols, int row,
                                                 int rows, const Fp8Output& o, float* scratch) {
  uint8_t* q = o.q + static_cast<int64_t>(row) * o.q_stride;
  const uintptr_t ya = reinterpret_cast<uintptr_t>(y), qa = reinterpret_cast<uintptr_t>(q);
  if (o.group == 0) {
    // 16-byte loads of 8 values, 8-byte stores of their bytes.
    const bool vec = cols % 8 == 0 && ya % 16 == 0 && qa % 8 == 0;
    const int n = vec ? cols / 8 : cols;
    float amax = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      if (vec) {
        float v[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(y)[i], v);
#pragma unroll
        for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
      } else {
        amax = fmaxf(amax, fabsf(__bfloat162float(y[i])));
      }
    }
    const float s = fp8_scale_of(block_max(amax, scratch));
    if (threadIdx.x == 0) o.scale[row] = s;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      if (vec) {
        float v[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(y)[i], v);
        reinterpret_cast<uint2*>(q)[i] = make_uint2(e4m3x4(v, s), e4m3x4(v + 4, s));
      } else {
        q[i] = to_e4m3(__bfloat162float(y[i]) / s);
      }
    }
    return;
  }
  // One warp per group; 8-byte loads of 4 values and 4-byte stores of their bytes when every
  // group starts and ends on a multiple of 4 columns.
  const bool vec = o.group % 4 == 0 && cols % 4 == 0 && ya % 8 == 0 && qa % 4 == 0;
  const int per = vec ? 4 : 1;  // columns per lane access
  const int groups = (cols + o.group - 1) / o.group;
  const int lane = threadIdx.x & 31;
  const int num_warps = blockDim.x >> 5;
  for (int g = threadIdx.x >> 5; g < groups; g += num_warps) {  // warp-uniform
    const int c0 = g * o.group, c1 = min(cols, c0 + o.group);
    float amax = 0.f;
    for (int c = c0 + lane * per; c < c1; c += 32 * per) {
      if (vec) {
        float v[4];
        unpack_bf16x4(*reinterpret_cast<const uint2*>(y + c), v);
#pragma unroll
        for (int j = 0; j < 4; ++j) amax = fmaxf(amax, fabsf(v[j]));
      } else {
        amax = fmaxf(amax, fabsf(__bfloat162float(y[c])));
      }
    }
    const float s = fp8_scale_of(warp_max(amax));
    if (lane == 0) o.scale[o.group_major ? g * rows + row : row * groups + g] = s;
    for (int c = c0 + lane * per; c < c1; c += 32 * per) {
      if (vec) {
        float v[4];
        unpack_bf16x4(*reinterpret_cast<const uint2*>(y + c), v);
        *reinterpret_cast<uint32_t*>(q + c) = e4m3x4(v, s);
      } else {
        q[c] = to_e4m3(__bfloat162float(y[c]) / s);
      }
    }
  }
}

}  // namespace kite::cuda
