// The FP8 KV cache's element conversions on the device (--kv-cache-dtype fp8): a value x is
// stored as e4m3(x / scale), rounded to nearest even and saturated to +-448 (NaN stays NaN),
// and read back as float(e4m3) * scale — backend/cpu/ops.h's definition, which the GPU tests
// compare against. e4m3 -> half is exact, so reads add no rounding of their own.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace kite::cuda {

// IEEE division (nvcc's default -prec-div=true), as the CPU's x / scale.
__device__ __forceinline__ uint8_t kv_fp8_quantize(float x, float scale) {
  return static_cast<uint8_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3));
}

// The e4m3 value of one byte, unscaled (exact).
__device__ __forceinline__ float kv_fp8_value(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(b, __NV_E4M3)));
}

// Eight e4m3 bytes (v, little-endian: byte i is value i) -> f[i] = value * scale.
__device__ __forceinline__ void unpack_fp8x8(const uint2& v, float scale, float (&f)[8]) {
  const uint32_t w[2] = {v.x, v.y};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_fp8x2_storage_t pair =
        static_cast<__nv_fp8x2_storage_t>((w[i / 2] >> (16 * (i % 2))) & 0xffffu);
    const float2 h = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
    f[2 * i] = h.x * scale;
    f[2 * i + 1] = h.y * scale;
  }
}

// Eight e4m3 bytes -> eight bf16 values, unscaled (exact: e4m3 fits in bf16), packed as 16 bytes.
__device__ __forceinline__ uint4 fp8x8_to_bf16x8(const uint2& v) {
  const uint32_t w[2] = {v.x, v.y};
  uint4 out;
  uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_fp8x2_storage_t pair =
        static_cast<__nv_fp8x2_storage_t>((w[i / 2] >> (16 * (i % 2))) & 0xffffu);
    const float2 h = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
    const __nv_bfloat162 b = __floats2bfloat162_rn(h.x, h.y);
    o[i] = *reinterpret_cast<const uint32_t*>(&b);
  }
  return out;
}

}  // namespace kite::cuda
