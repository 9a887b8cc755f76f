#include <algorithm>

#include "backend/cuda/activation.h"
#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;

// Grid (x blocks over the row's items, one y per token). kVec (bf16 rows whose length is a
// multiple of 8): 16-byte vectors. The f32 instantiation is scalar.
enum class Gate { kSilu, kGeluTanh };

template <Gate kGate>
__device__ __forceinline__ float gated_bf16(float g, float u) {
  if constexpr (kGate == Gate::kSilu) {
    return silu_mul_bf16(g, u);
  } else {
    return gelu_tanh_mul_bf16(g, u);
  }
}

template <Gate kGate>
__device__ __forceinline__ float gated_f32(float g, float u) {
  if constexpr (kGate == Gate::kSilu) {
    return g / (1.f + expf(-g)) * u;  // the CPU backend's arithmetic, unrounded
  } else {
    return gelu_tanh(g) * u;
  }
}

template <typename T, bool kVec, Gate kGate>
__global__ void gated_mul_kernel(SiluMulParams p) {
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
      for (int j = 0; j < 8; ++j) gv[j] = gated_bf16<kGate>(gv[j], uv[j]);
      reinterpret_cast<uint4*>(o)[i] = pack_bf16x8(gv);
    }
  } else {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.inter; i += gridDim.x * blockDim.x) {
      if constexpr (kIsF32<T>) {
        o[i] = gated_f32<kGate>(g[i], u[i]);
      } else {
        o[i] =
            __float2bfloat16_rn(gated_bf16<kGate>(__bfloat162float(g[i]), __bfloat162float(u[i])));
      }
    }
  }
}

__global__ void softcap_kernel(float* x, int64_t n, float cap) {
  pdl_launch_dependents();
  pdl_wait();
  const float inv = 1.f / cap;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = cap * tanhf(x[i] * inv);
  }
}

template <Gate kGate>
void gated_mul(const char* name, const SiluMulParams& p, const DeviceContext& dev,
               cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_DISPATCH_DTYPE(name, p.dtype, ElementwiseDTypes, T, {
    const bool vec = !kIsF32<T> && p.inter % 8 == 0;
    const int items = vec ? p.inter / 8 : p.inter;
    const dim3 grid((items + kThreads - 1) / kThreads, p.num_tokens), block(kThreads);
    if constexpr (kIsF32<T>) {
      launch(gated_mul_kernel<T, false, kGate>, grid, block, 0, dev, stream, p);
    } else if (vec) {
      launch(gated_mul_kernel<T, true, kGate>, grid, block, 0, dev, stream, p);
    } else {
      launch(gated_mul_kernel<T, false, kGate>, grid, block, 0, dev, stream, p);
    }
  });
}

}  // namespace

void silu_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream) {
  gated_mul<Gate::kSilu>("silu_mul", p, dev, stream);
}

void gelu_tanh_mul(const SiluMulParams& p, const DeviceContext& dev, cudaStream_t stream) {
  gated_mul<Gate::kGeluTanh>("gelu_tanh_mul", p, dev, stream);
}

void softcap_inplace(float* x, int64_t n, float cap, const DeviceContext& dev,
                     cudaStream_t stream) {
  if (n == 0) return;
  KITE_CHECK(cap > 0.f) << "softcap: cap " << cap;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  launch(softcap_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, dev, stream, x, n,
         cap);
}

}  // namespace kite::cuda
