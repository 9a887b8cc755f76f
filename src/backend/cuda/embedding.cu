#include "backend/cuda/common.cuh"
#include "backend/cuda/embedding.h"

namespace kite::cuda {

namespace {

// One block per token. kVec: copy 8 values (16 bytes) at a time when hidden % 8 == 0.
template <bool kVec>
__global__ void embedding_kernel(EmbeddingParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int id = p.token_ids[t];
  const bool valid = id >= 0 && id < p.vocab;
  if constexpr (kVec) {
    const int n = p.hidden / 8;
    const uint4* src = reinterpret_cast<const uint4*>(p.table) + static_cast<int64_t>(id) * n;
    uint4* dst = reinterpret_cast<uint4*>(p.out) + static_cast<int64_t>(t) * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      dst[i] = valid ? src[i] : make_uint4(0, 0, 0, 0);
    }
  } else {
    const __nv_bfloat16* src =
        static_cast<const __nv_bfloat16*>(p.table) + static_cast<int64_t>(id) * p.hidden;
    __nv_bfloat16* dst = static_cast<__nv_bfloat16*>(p.out) + static_cast<int64_t>(t) * p.hidden;
    for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) {
      dst[i] = valid ? src[i] : __float2bfloat16(0.f);
    }
  }
}

}  // namespace

void embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  if (p.hidden % 8 == 0) {
    launch(embedding_kernel<true>, dim3(p.num_tokens), dim3(128), 0, stream, p);
  } else {
    launch(embedding_kernel<false>, dim3(p.num_tokens), dim3(128), 0, stream, p);
  }
}

}  // namespace kite::cuda
