#include "backend/cuda/activation.h"
#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;

// Grid (x blocks over the row's items, one y per token). kVec (bf16 rows whose length is a
// multiple of 8): 16-byte vectors. The f32 instantiation is scalar.
template <typename T, bool kVec>
__global__ void silu_mul_kernel(SiluMulParams p) {
  static_assert(!(kVec && kIsF32<T>), "the f32 SiLU-mul is scalar");
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.y;
  const T* g = static_cast<const T*>(p.gate_up) + static_cast<int64_t>(t) * 2 * p.inter;
  const T* u = g + p.inter;
  T* o = static_cast<T*>(p.out) + static_cast<int64_t>(t) * p.inter;
  if constexpr (kVec) {
    const int n = p.inter / 8;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
      float gv[8], uv[8];
      unpack_bf16x8(reinterpret_cast<const uint4*>(g)[i], gv);
      unpack_bf16x8(reinterpret_cast<const uint4*>(u)[i], uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) gv[j] = silu_mul_bf16(gv[j], uv[j]);
      reinterpret_cast<uint4*>(o)[i] = pack_bf16x8(gv);
    }
  } else {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.inter; i += gridDim.x * blockDim.x) {
      if constexpr (kIsF32<T>) {
        o[i] = g[i] / (1.f + expf(-g[i])) * u[i];  // the CPU backend's arithmetic, unrounded
      } else {
        o[i] = __float2bfloat16_rn(silu_mul_bf16(__bfloat162float(g[i]), __bfloat162float(u[i])));
      }
    }
  }
}

}  // namespace

void silu_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_DISPATCH_DTYPE("silu_mul", p.dtype, ElementwiseDTypes, T, {
    const bool vec = !kIsF32<T> && p.inter % 8 == 0;
    const int items = vec ? p.inter / 8 : p.inter;
    const dim3 grid((items + kThreads - 1) / kThreads, p.num_tokens), block(kThreads);
    if constexpr (kIsF32<T>) {
      launch(silu_mul_kernel<T, false>, grid, block, 0, dev, stream, p);
    } else if (vec) {
      launch(silu_mul_kernel<T, true>, grid, block, 0, dev, stream, p);
    } else {
      launch(silu_mul_kernel<T, false>, grid, block, 0, dev, stream, p);
    }
  });
}

}  // namespace kite::cuda
