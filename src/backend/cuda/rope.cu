#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/rope.h"

namespace kite::cuda {

namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ __nv_bfloat16* cache_row(void* cache, int64_t slot, int kvh,
                                                    const RopeKvWriteParams& p) {
  const int64_t block = slot / p.block_size;
  const int64_t off = slot % p.block_size;
  return static_cast<__nv_bfloat16*>(cache) +
         ((block * p.num_kv_heads + kvh) * p.block_size + off) * p.head_dim;
}

// One block per token, one warp per head (q heads, k heads, v heads in turn).
__global__ void __launch_bounds__(kWarps * 32) rope_kv_write_kernel(RopeKvWriteParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int half = p.head_dim / 2;
  const int num_heads = p.num_q_heads + 2 * p.num_kv_heads;
  const float pos = static_cast<float>(p.positions[t]);
  const int64_t slot = p.slot_mapping != nullptr ? p.slot_mapping[t] : -1;
  const bool write_cache = p.k_cache != nullptr && slot >= 0;
  __nv_bfloat16* row = static_cast<__nv_bfloat16*>(p.qkv) + static_cast<int64_t>(t) * p.qkv_stride;

  for (int h = warp; h < num_heads; h += kWarps) {
    __nv_bfloat16* x = row + static_cast<int64_t>(h) * p.head_dim;
    if (h >= p.num_q_heads + p.num_kv_heads) {  // v head: copy into the cache
      if (write_cache) {
        __nv_bfloat16* dst = cache_row(p.v_cache, slot, h - p.num_q_heads - p.num_kv_heads, p);
        for (int i = lane; i < p.head_dim; i += 32) dst[i] = x[i];
      }
      continue;
    }
    const bool is_k = h >= p.num_q_heads;
    const __nv_bfloat16* norm_w = static_cast<const __nv_bfloat16*>(is_k ? p.k_norm : p.q_norm);
    float r = 1.f;
    if (norm_w != nullptr) {
      float ss = 0.f;
      for (int i = lane; i < p.head_dim; i += 32) {
        const float v = __bfloat162float(x[i]);
        ss += v * v;
      }
      ss = warp_sum(ss);
      r = rsqrtf(ss / static_cast<float>(p.head_dim) + p.eps);
    }
    __nv_bfloat16* dst =
        (is_k && write_cache) ? cache_row(p.k_cache, slot, h - p.num_q_heads, p) : nullptr;
    for (int i = lane; i < half; i += 32) {
      float x1 = __bfloat162float(x[i]);
      float x2 = __bfloat162float(x[i + half]);
      if (norm_w != nullptr) {
        x1 = round_bf16(__bfloat162float(norm_w[i]) * round_bf16(x1 * r));
        x2 = round_bf16(__bfloat162float(norm_w[i + half]) * round_bf16(x2 * r));
      }
      float s, c;
      sincosf(pos * p.inv_freq[i], &s, &c);
      const __nv_bfloat16 o1 = __float2bfloat16_rn(x1 * c - x2 * s);
      const __nv_bfloat16 o2 = __float2bfloat16_rn(x2 * c + x1 * s);
      x[i] = o1;
      x[i + half] = o2;
      if (dst != nullptr) {
        dst[i] = o1;
        dst[i + half] = o2;
      }
    }
  }
}

// The F32 variant: one block per token, one warp per head.
__global__ void __launch_bounds__(kWarps * 32) rope_kv_write_f32_kernel(RopeKvWriteParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int half = p.head_dim / 2;
  const int num_heads = p.num_q_heads + 2 * p.num_kv_heads;
  const double pos = static_cast<double>(p.positions[t]);
  const int64_t slot = p.slot_mapping != nullptr ? p.slot_mapping[t] : -1;
  const bool write_cache = p.k_cache != nullptr && slot >= 0;
  float* row = static_cast<float*>(p.qkv) + static_cast<int64_t>(t) * p.qkv_stride;
  auto cache_at = [&](void* cache, int kvh) {
    return static_cast<float*>(cache) +
           ((slot / p.block_size * p.num_kv_heads + kvh) * p.block_size + slot % p.block_size) *
               p.head_dim;
  };
  for (int h = warp; h < num_heads; h += kWarps) {
    float* x = row + static_cast<int64_t>(h) * p.head_dim;
    if (h >= p.num_q_heads + p.num_kv_heads) {
      if (write_cache) {
        float* dst = cache_at(p.v_cache, h - p.num_q_heads - p.num_kv_heads);
        for (int i = lane; i < p.head_dim; i += 32) dst[i] = x[i];
      }
      continue;
    }
    const bool is_k = h >= p.num_q_heads;
    const float* norm_w = static_cast<const float*>(is_k ? p.k_norm : p.q_norm);
    float r = 1.f;
    if (norm_w != nullptr) {
      float ss = 0.f;
      for (int i = lane; i < p.head_dim; i += 32) ss = fmaf(x[i], x[i], ss);
      ss = warp_sum(ss);
      r = 1.f / sqrtf(ss / static_cast<float>(p.head_dim) + p.eps);
    }
    float* dst = (is_k && write_cache) ? cache_at(p.k_cache, h - p.num_q_heads) : nullptr;
    for (int i = lane; i < half; i += 32) {
      float x1 = x[i];
      float x2 = x[i + half];
      if (norm_w != nullptr) {
        x1 = x1 * r * norm_w[i];
        x2 = x2 * r * norm_w[i + half];
      }
      const double a = pos * p.inv_freq64[i];
      const float c = static_cast<float>(cos(a));
      const float s = static_cast<float>(sin(a));
      const float o1 = x1 * c - x2 * s;
      const float o2 = x2 * c + x1 * s;
      x[i] = o1;
      x[i + half] = o2;
      if (dst != nullptr) {
        dst[i] = o1;
        dst[i + half] = o2;
      }
    }
  }
}

}  // namespace

void rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  if (p.f32) {
    launch(rope_kv_write_f32_kernel, dim3(p.num_tokens), dim3(kWarps * 32), 0, stream, p);
    return;
  }
  launch(rope_kv_write_kernel, dim3(p.num_tokens), dim3(kWarps * 32), 0, stream, p);
}

std::vector<double> rope_inv_freq64(const ModelConfig& cfg, const float* freq_factors) {
  const int half = static_cast<int>(cfg.head_dim / 2);
  std::vector<double> inv(half);
  const RopeScaling& rs = cfg.rope_scaling;
  const double kPi = 3.14159265358979323846;
  for (int i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(cfg.rope_theta, (2.0 * i) / static_cast<double>(cfg.head_dim));
    if (rs.type == RopeScaling::Type::kLinear) {
      f /= rs.factor;
    } else if (rs.type == RopeScaling::Type::kLlama3) {
      const double old_len = static_cast<double>(rs.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / rs.low_freq_factor;
      const double high_freq_wavelen = old_len / rs.high_freq_factor;
      const double wavelen = 2.0 * kPi / f;
      if (wavelen > low_freq_wavelen) {
        f = f / rs.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth =
            (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1.0 - smooth) * f / rs.factor + smooth * f;
      }
    }
    if (freq_factors != nullptr) f /= freq_factors[i];
    inv[i] = f;
  }
  return inv;
}

std::vector<float> rope_inv_freq(const ModelConfig& cfg, const float* freq_factors) {
  const std::vector<double> inv = rope_inv_freq64(cfg, freq_factors);
  return std::vector<float>(inv.begin(), inv.end());
}

}  // namespace kite::cuda
