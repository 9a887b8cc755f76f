#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/embedding.h"

namespace kite::cuda {

namespace {

// One block per token. kVec: copy 16 bytes at a time when a row is a multiple of 16 bytes.
template <typename T, bool kVec>
__global__ void embedding_kernel(EmbeddingParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int id = p.token_ids[t] - p.vocab_begin;
  const bool valid = id >= 0 && id < p.vocab;
  if constexpr (kVec) {
    const int n = p.hidden / static_cast<int>(16 / sizeof(T));
    const uint4* src = reinterpret_cast<const uint4*>(p.table) + static_cast<int64_t>(id) * n;
    uint4* dst = reinterpret_cast<uint4*>(p.out) + static_cast<int64_t>(t) * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      dst[i] = valid ? src[i] : make_uint4(0, 0, 0, 0);
    }
  } else {
    const T* src = static_cast<const T*>(p.table) + static_cast<int64_t>(id) * p.hidden;
    T* dst = static_cast<T*>(p.out) + static_cast<int64_t>(t) * p.hidden;
    for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) {
      dst[i] = !valid ? T(0.f) : p.scale == 1.f ? src[i] : from_f<T>(to_f(src[i]) * p.scale);
    }
  }
}

}  // namespace

void embedding(const EmbeddingParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  const dim3 grid(p.num_tokens), block(128);
  KITE_DISPATCH_DTYPE("embedding", p.dtype, ElementwiseDTypes, T, {
    if (p.scale == 1.f && p.hidden % static_cast<int>(16 / sizeof(T)) == 0) {
      launch(embedding_kernel<T, true>, grid, block, 0, dev, stream, p);
    } else {
      launch(embedding_kernel<T, false>, grid, block, 0, dev, stream, p);
    }
  });
}

}  // namespace kite::cuda
