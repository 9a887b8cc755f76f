#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/norm.h"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 256;

// x + delta as the dtype's arithmetic forms the residual: rounded to bf16, or exact in f32.
template <typename T>
__device__ __forceinline__ float residual_add(float x, T d) {
  if constexpr (kIsF32<T>) {
    return x + d;
  } else {
    return round_bf16(x + __bfloat162float(d));
  }
}

// One block per output row. Pass 1 forms x (and writes it back to the residual when asked) and
// its sum of squares; pass 2 re-reads x (from L1/L2) and normalizes. kVec (bf16 rows whose length
// is a multiple of 8): 16-byte vectors. The f32 instantiation is scalar. kQuant (bf16 only): pass 3
// quantizes the row written by pass 2 into p.fp8 (fp8_quant.cuh), reading it back.
template <typename T, bool kVec, bool kQuant>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(RmsNormParams p) {
  static_assert(!(kVec && kIsF32<T>), "the f32 RMSNorm is scalar");
  static_assert(!(kQuant && kIsF32<T>), "the FP8 copy is of bf16 rows");
  __shared__ float scratch[32];
  pdl_launch_dependents();
  pdl_wait();
  const int row = blockIdx.x;
  const int64_t src = p.row_indices != nullptr ? p.row_indices[row] : row;
  const bool write_back = p.delta != nullptr && p.row_indices == nullptr;
  T* res = static_cast<T*>(p.residual) + src * p.hidden;
  const T* del = p.delta != nullptr ? static_cast<const T*>(p.delta) + src * p.hidden : nullptr;
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(row) * p.hidden;
  const T* w = static_cast<const T*>(p.weight);

  float ss = 0.f;
  if constexpr (kVec) {
    const int n = p.hidden / 8;
    for (int i = threadIdx.x; i < n; i += kThreads) {
      float x[8];
      uint4 rv = reinterpret_cast<const uint4*>(res)[i];
      unpack_bf16x8(rv, x);
      if (del != nullptr) {
        float d[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(del)[i], d);
#pragma unroll
        for (int j = 0; j < 8; ++j) x[j] = round_bf16(x[j] + d[j]);
        if (write_back) reinterpret_cast<uint4*>(res)[i] = pack_bf16x8(x);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += x[j] * x[j];
    }
  } else {
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
      float x = to_f(res[i]);
      if (del != nullptr) {
        x = residual_add(x, del[i]);
        if (write_back) res[i] = from_f<T>(x);
      }
      if constexpr (kIsF32<T>) {
        ss = fmaf(x, x, ss);
      } else {
        ss += x * x;
      }
    }
  }
  ss = block_sum(ss, scratch);
  float r;
  if constexpr (kIsF32<T>) {
    r = 1.f / sqrtf(ss / static_cast<float>(p.hidden) + p.eps);
  } else {
    r = rsqrtf(ss / static_cast<float>(p.hidden) + p.eps);
  }
  // Pass 2: when the residual was written back, each thread re-reads exactly the elements it
  // wrote, so no barrier is needed between the passes.
  if constexpr (kVec) {
    const int n = p.hidden / 8;
    for (int i = threadIdx.x; i < n; i += kThreads) {
      float x[8], wv[8];
      unpack_bf16x8(reinterpret_cast<const uint4*>(res)[i], x);
      if (del != nullptr && !write_back) {
        float d[8];
        unpack_bf16x8(reinterpret_cast<const uint4*>(del)[i], d);
#pragma unroll
        for (int j = 0; j < 8; ++j) x[j] = round_bf16(x[j] + d[j]);
      }
      unpack_bf16x8(reinterpret_cast<const uint4*>(w)[i], wv);
#pragma unroll
      for (int j = 0; j < 8; ++j) x[j] = wv[j] * round_bf16(x[j] * r);
      reinterpret_cast<uint4*>(out)[i] = pack_bf16x8(x);
    }
  } else {
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
      float x = to_f(res[i]);
      if (del != nullptr && !write_back) x = residual_add(x, del[i]);
      if constexpr (kIsF32<T>) {
        out[i] = x * r * w[i];
      } else {
        out[i] = __float2bfloat16_rn(__bfloat162float(w[i]) * round_bf16(x * r));
      }
    }
  }
  if constexpr (kQuant) {
    __syncthreads();  // pass 2's writes of the row, visible to every thread of the block
    quantize_row_fp8(out, p.hidden, row, p.num_rows, p.fp8, scratch);
  }
}

}  // namespace

void rms_norm(const RmsNormParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  const bool quant = p.fp8.enabled();
  KITE_CHECK(!quant || p.dtype == DType::kBF16) << "rms_norm: an FP8 copy of a non-bf16 output";
  const dim3 grid(p.num_rows), block(kThreads);
  KITE_DISPATCH_DTYPE("rms_norm", p.dtype, ElementwiseDTypes, T, {
    if constexpr (kIsF32<T>) {
      launch(rms_norm_kernel<T, false, false>, grid, block, 0, dev, stream, p);
    } else if (p.hidden % 8 == 0) {
      if (quant) {
        launch(rms_norm_kernel<T, true, true>, grid, block, 0, dev, stream, p);
      } else {
        launch(rms_norm_kernel<T, true, false>, grid, block, 0, dev, stream, p);
      }
    } else if (quant) {
      launch(rms_norm_kernel<T, false, true>, grid, block, 0, dev, stream, p);
    } else {
      launch(rms_norm_kernel<T, false, false>, grid, block, 0, dev, stream, p);
    }
  });
}

}  // namespace kite::cuda
