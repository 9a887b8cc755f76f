#include <algorithm>

#include "backend/cuda/activation.h"
#include "backend/cuda/activation_math.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;

// Grid (x blocks over the row's items, one y per token). kVec (bf16 rows whose length is a
// multiple of 8): 16-byte vectors. The f32 instantiation is scalar. kQuant (bf16 only): grid
// (one x per token), each block walks its whole row, then quantizes the row it wrote into p.fp8
// (fp8_quant.cuh), reading it back.
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

template <typename T, bool kVec, Gate kGate, bool kQuant>
__global__ void gated_mul_kernel(SiluMulParams p) {
  static_assert(!(kVec && kIsF32<T>), "the f32 SiLU-mul is scalar");
  static_assert(!(kQuant && kIsF32<T>), "the FP8 copy is of bf16 rows");
  pdl_launch_dependents();
  pdl_wait();
  const int t = kQuant ? blockIdx.x : blockIdx.y;
  const int first = kQuant ? threadIdx.x : blockIdx.x * blockDim.x + threadIdx.x;
  const int step = kQuant ? blockDim.x : gridDim.x * blockDim.x;
  const T* g = static_cast<const T*>(p.gate_up) + static_cast<int64_t>(t) * 2 * p.inter;
  const T* u = g + p.inter;
  T* o = static_cast<T*>(p.out) + static_cast<int64_t>(t) * p.inter;
  if constexpr (kVec) {
    const int n = p.inter / 8;
    for (int i = first; i < n; i += step) {
      float gv[8], uv[8];
      unpack_bf16x8(reinterpret_cast<const uint4*>(g)[i], gv);
      unpack_bf16x8(reinterpret_cast<const uint4*>(u)[i], uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) gv[j] = gated_bf16<kGate>(gv[j], uv[j]);
      reinterpret_cast<uint4*>(o)[i] = pack_bf16x8(gv);
    }
  } else {
    for (int i = first; i < p.inter; i += step) {
      if constexpr (kIsF32<T>) {
        o[i] = gated_f32<kGate>(g[i], u[i]);
      } else {
        o[i] =
            __float2bfloat16_rn(gated_bf16<kGate>(__bfloat162float(g[i]), __bfloat162float(u[i])));
      }
    }
  }
  if constexpr (kQuant) {
    __shared__ float scratch[32];
    __syncthreads();  // the row's writes above, visible to every thread of the block
    quantize_row_fp8(o, p.inter, t, p.num_tokens, p.fp8, scratch);
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
  const bool quant = p.fp8.enabled();
  KITE_CHECK(!quant || p.dtype == DType::kBF16) << name << ": an FP8 copy of a non-bf16 output";
  KITE_DISPATCH_DTYPE(name, p.dtype, ElementwiseDTypes, T, {
    const bool vec = !kIsF32<T> && p.inter % 8 == 0;
    const int items = vec ? p.inter / 8 : p.inter;
    const dim3 grid((items + kThreads - 1) / kThreads, p.num_tokens), block(kThreads);
    if constexpr (kIsF32<T>) {
      launch(gated_mul_kernel<T, false, kGate, false>, grid, block, 0, dev, stream, p);
    } else if (quant) {  // one block per token
      if (vec) {
        launch(gated_mul_kernel<T, true, kGate, true>, dim3(p.num_tokens), block, 0, dev, stream,
               p);
      } else {
        launch(gated_mul_kernel<T, false, kGate, true>, dim3(p.num_tokens), block, 0, dev, stream,
               p);
      }
    } else if (vec) {
      launch(gated_mul_kernel<T, true, kGate, false>, grid, block, 0, dev, stream, p);
    } else {
      launch(gated_mul_kernel<T, false, kGate, false>, grid, block, 0, dev, stream, p);
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
