// Prefill attention: flash-attention-2 style on mma.sync tensor cores, over the paged KV cache.
//
// CTA = (query tile, kv head), 4 warps, 64 rows: row r is query token q_start + r / group of the
// tile's sequence and q head kv_head * group + r % group, so one K/V tile serves the whole GQA
// group. Warp w owns rows 16w..16w+15. KV tiles of kBlockN tokens are copied with cp.async into
// a two-stage shared-memory ring (tile j+1 loads while tile j computes). Shared tiles are
// [rows][head_dim] bf16 with 16-byte chunk c of row r stored at chunk c ^ (r & 7), which keeps
// ldmatrix free of bank conflicts.
//
// kFp8 (an FP8 KV cache): K/V rows are E4M3 bytes; each thread loads its 8-byte chunk into
// registers and stores it to shared memory as 8 exact bf16 values (no cp.async: the conversion
// needs the data in registers), and the layer's scales are folded in once — k_scale into the
// softmax scale, v_scale into the output — so the tensor-core loop is the bf16 one.
#include <cfloat>

#include "backend/cuda/attention.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/mma.cuh"
#include "core/check.h"

namespace kite::cuda {

namespace {

constexpr int kBlockM = 64;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <int kHeadDim>
struct PrefillTraits {
  static constexpr int kBlockN = kHeadDim == 256 ? 32 : 64;
  static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  static constexpr size_t kSmemBytes =
      (static_cast<size_t>(kBlockM) + 4 * kBlockN) * kHeadDim * sizeof(__nv_bfloat16);
};

template <int kHeadDim>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * kHeadDim + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ float exp2_or_zero(float x) { return x == -INFINITY ? 0.f : exp2f(x); }

template <int kHeadDim, bool kFp8>
__global__ void __launch_bounds__(kThreads) prefill_kernel(AttentionParams p) {
  using Traits = PrefillTraits<kHeadDim>;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kChunks = Traits::kChunks;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + kBlockM * kHeadDim;      // [2][kBlockN][kHeadDim]
  __nv_bfloat16* sV = sK + 2 * kBlockN * kHeadDim;  // [2][kBlockN][kHeadDim]

  pdl_launch_dependents();
  pdl_wait();

  const int tile = blockIdx.x;
  const int kvh = blockIdx.y;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int seq = p.prefill_tile_seq[tile];
  const int q_start = p.prefill_tile_q_start[tile];
  const int q_begin = p.query_start_loc[seq];
  const int qlen = p.query_start_loc[seq + 1] - q_begin;
  const int kv_len = p.seq_lens[seq];
  const int prefix = kv_len - qlen;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int ntok = min(kBlockM / group, qlen - q_start);
  const int rows = ntok * group;
  const int kv_end = prefix + q_start + ntok;  // exclusive; the last query's position + 1
  const int32_t* bt = p.block_table + p.block_table_indptr[seq];
  const __nv_bfloat16* qg = static_cast<const __nv_bfloat16*>(p.q);
  const __nv_bfloat16* kc = static_cast<const __nv_bfloat16*>(p.k_cache);
  const __nv_bfloat16* vc = static_cast<const __nv_bfloat16*>(p.v_cache);
  const uint8_t* kc8 = static_cast<const uint8_t*>(p.k_cache);
  const uint8_t* vc8 = static_cast<const uint8_t*>(p.v_cache);
  const int bs = p.block_size;

  // Q tile.
  for (int c = tid; c < kBlockM * kChunks; c += kThreads) {
    const int r = c / kChunks;
    const int ch = c % kChunks;
    const __nv_bfloat16* src = qg;
    int bytes = 0;
    if (r < rows) {
      const int64_t tok = q_begin + q_start + r / group;
      const int h = kvh * group + r % group;
      src = qg + tok * p.q_stride + static_cast<int64_t>(h) * kHeadDim + ch * 8;
      bytes = 16;
    }
    cp_async_16(smem_addr(sQ + swz<kHeadDim>(r, ch)), src, bytes);
  }

  // Each thread copies one fixed 16-byte chunk column of kRowsPerPass-strided rows, so its
  // chunk offset is computed once; a row's block lookup is a shift when block_size is a power
  // of two.
  constexpr int kRowsPerPass = kThreads / kChunks;
  const int my_chunk = tid % kChunks;
  const int my_row0 = tid / kChunks;
  const int bs_shift = (bs & (bs - 1)) == 0 ? __ffs(bs) - 1 : -1;
  auto load_kv = [&](int j, int stage) {
    const int n0 = j * kBlockN;
    __nv_bfloat16* dk = sK + stage * kBlockN * kHeadDim;
    __nv_bfloat16* dv = sV + stage * kBlockN * kHeadDim;
#pragma unroll
    for (int r = my_row0; r < kBlockN; r += kRowsPerPass) {
      const int t = n0 + r;
      int64_t off = 0;
      int bytes = 0;
      if (t < kv_end) {
        const int blk = bs_shift >= 0 ? t >> bs_shift : t / bs;
        const int in_blk = bs_shift >= 0 ? t & (bs - 1) : t - blk * bs;
        const int64_t page = bt[blk];
        off = ((page * p.num_kv_heads + kvh) * bs + in_blk) * kHeadDim + my_chunk * 8;
        bytes = 16;
      }
      const int so = swz<kHeadDim>(r, my_chunk);
      if constexpr (kFp8) {
        uint4 k16 = make_uint4(0, 0, 0, 0), v16 = k16;
        if (bytes > 0) {
          k16 = fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(kc8 + off));
          v16 = fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(vc8 + off));
        }
        *reinterpret_cast<uint4*>(dk + so) = k16;
        *reinterpret_cast<uint4*>(dv + so) = v16;
      } else {
        cp_async_16(smem_addr(dk + so), kc + off, bytes);
        cp_async_16(smem_addr(dv + so), vc + off, bytes);
      }
    }
  };

  const int num_tiles = (kv_end + kBlockN - 1) / kBlockN;
  // Sliding window: KV tiles before the first query's window start are skipped.
  const int window = p.sliding_window;
  const int first_tile = window > 0 ? max(0, prefix + q_start - window + 1) / kBlockN : 0;
  load_kv(first_tile, 0);
  cp_async_commit();  // group 0: Q + KV tile 0

  // The softmax scale, times an FP8 cache's k_scale (the mma products are q . e4m3 values).
  const float qk_scale = p.scale * (kFp8 ? p.k_scale : 1.f);
  const float scale_log2 = qk_scale * kLog2e;
  const float softcap = p.softcap;
  const int g_row = lane >> 2;  // row within the 8-row half of the warp's 16 rows
  const int t_col = lane & 3;
  const int r0 = warp * 16 + g_row;
  const int r1 = r0 + 8;
  const int qpos0 = prefix + q_start + r0 / group;
  const int qpos1 = prefix + q_start + r1 / group;
  const int min_qpos = prefix + q_start;

  float m[2] = {-INFINITY, -INFINITY};
  float l[2] = {0.f, 0.f};
  float o[kHeadDim / 8][4];
#pragma unroll
  for (int i = 0; i < kHeadDim / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;

  // Q fragments stay in registers for head_dim <= 128 (loaded once the first copy lands).
  constexpr bool kQInRegs = kHeadDim <= 128;
  uint32_t qf[kQInRegs ? kHeadDim / 16 : 1][4];
  for (int j = first_tile; j < num_tiles; ++j) {
    const int stage = (j - first_tile) & 1;
    if (j + 1 < num_tiles) {
      load_kv(j + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    if constexpr (kQInRegs) {
      if (j == first_tile) {
#pragma unroll
        for (int kk = 0; kk < kHeadDim / 16; ++kk) {
          ldmatrix_x4(qf[kk],
                      smem_addr(sQ + swz<kHeadDim>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                   kk * 2 + (lane >> 4))));
        }
      }
    }
    const __nv_bfloat16* tK = sK + stage * kBlockN * kHeadDim;
    const __nv_bfloat16* tV = sV + stage * kBlockN * kHeadDim;

    // S = Q K^T for the warp's 16 rows x kBlockN columns.
    float s[kBlockN / 8][4];
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      uint32_t a[4];
      if constexpr (kQInRegs) {
        a[0] = qf[kk][0];
        a[1] = qf[kk][1];
        a[2] = qf[kk][2];
        a[3] = qf[kk][3];
      } else {
        ldmatrix_x4(a, smem_addr(sQ + swz<kHeadDim>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                    kk * 2 + (lane >> 4))));
      }
#pragma unroll
      for (int nn = 0; nn < kBlockN / 16; ++nn) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_addr(tK + swz<kHeadDim>(nn * 16 + (lane & 7) + (lane >> 4) * 8,
                                                    kk * 2 + ((lane >> 3) & 1))));
        mma_bf16_16816(s[2 * nn], a, b[0], b[1]);
        mma_bf16_16816(s[2 * nn + 1], a, b[2], b[3]);
      }
    }

    // Scale, causal mask, online softmax.
    const int n0 = j * kBlockN;
    // Causal: keys after the query; window: keys at or before qpos - window.
    const bool need_mask = n0 + kBlockN - 1 > min_qpos || (window > 0 && n0 <= kv_end - 1 - window);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = softcap > 0.f ? softcap_log2(s[i][e] * qk_scale, softcap) : s[i][e] * scale_log2;
        if (need_mask) {
          const int col = n0 + i * 8 + t_col * 2 + (e & 1);
          const int qpos = e < 2 ? qpos0 : qpos1;
          if (col > qpos || (window > 0 && col <= qpos - window)) v = -INFINITY;
        }
        s[i][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
    float ref[2], corr[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      ref[h] = mx[h] == -INFINITY ? 0.f : mx[h];
      corr[h] = exp2_or_zero(m[h] - ref[h]);
      m[h] = mx[h];
      l[h] *= corr[h];
    }
#pragma unroll
    for (int i = 0; i < kHeadDim / 8; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }
#pragma unroll
    for (int i = 0; i < kBlockN / 8; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pv = exp2_or_zero(s[i][e] - ref[e >> 1]);
        s[i][e] = pv;
        l[e >> 1] += pv;
      }
    }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dd = 0; dd < kHeadDim / 16; ++dd) {
        uint32_t b[4];
        ldmatrix_x4_trans(b,
                          smem_addr(tV + swz<kHeadDim>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                       dd * 2 + (lane >> 4))));
        mma_bf16_16816(o[2 * dd], a, b[0], b[1]);
        mma_bf16_16816(o[2 * dd + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this stage
  }

  // Normalize and store.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
  __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.out);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = h == 0 ? r0 : r1;
    if (r >= rows) continue;
    const float inv = (l[h] > 0.f ? 1.f / l[h] : 0.f) * (kFp8 ? p.v_scale : 1.f);
    const int64_t tok = q_begin + q_start + r / group;
    const int qh = kvh * group + r % group;
    __nv_bfloat16* dst = out + (tok * p.num_q_heads + qh) * kHeadDim + t_col * 2;
#pragma unroll
    for (int i = 0; i < kHeadDim / 8; ++i) {
      *reinterpret_cast<uint32_t*>(dst + i * 8) =
          pack_bf16x2(o[i][2 * h] * inv, o[i][2 * h + 1] * inv);
    }
  }
}

}  // namespace

void attention_prefill(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_prefill_tiles == 0) return;
  check_supported("attention_prefill", "dtype", p.dtype, TensorCoreDTypes{});
  const int group = p.num_q_heads / p.num_kv_heads;
  KITE_CHECK(tensor_core_attention_supports(p.head_dim, group))
      << "attention_prefill: head_dim " << p.head_dim << " / GQA group " << group
      << " is not supported (head_dim " << TensorCoreHeadDims::to_string() << ", group 1 to "
      << kPrefillMaxGroup << ")";
  KITE_DISPATCH_VALUE("attention_prefill", "head_dim", p.head_dim, TensorCoreHeadDims, kHeadDim, {
    constexpr size_t smem = PrefillTraits<kHeadDim>::kSmemBytes;
    auto* kernel = p.kv_fp8 ? prefill_kernel<kHeadDim, true> : prefill_kernel<kHeadDim, false>;
    // Above 48 KiB of dynamic shared memory a kernel must opt in, once per device.
    dev.once(reinterpret_cast<const void*>(kernel), [&] {
      KITE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem)));
    });
    launch(kernel, dim3(p.num_prefill_tiles, p.num_kv_heads), dim3(kThreads), smem, dev, stream, p);
  });
}

}  // namespace kite::cuda
