#include <cmath>
#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/dispatch.cuh"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/rope.h"

namespace kite::cuda {

namespace {

constexpr int kWarps = 8;

template <typename T>
__device__ __forceinline__ T* cache_row(void* cache, int64_t slot, int kvh,
                                        const RopeKvWriteParams& p) {
  const int64_t block = slot / p.block_size;
  const int64_t off = slot % p.block_size;
  return static_cast<T*>(cache) +
         ((block * p.num_kv_heads + kvh) * p.block_size + off) * p.head_dim;
}

// One block per token, one warp per head (q heads, k heads, v heads in turn). The two dtypes
// differ only in the marked arithmetic (see rope.h).
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) rope_kv_write_kernel(RopeKvWriteParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int half = p.head_dim / 2;
  const int num_heads = p.num_q_heads + 2 * p.num_kv_heads;
  // The position as each dtype's angle takes it: float (bf16, as transformers), double (f32).
  using Pos = std::conditional_t<kIsF32<T>, double, float>;
  const Pos pos = static_cast<Pos>(p.positions[t]);
  const int64_t slot = p.slot_mapping != nullptr ? p.slot_mapping[t] : -1;
  const bool write_cache = p.k_cache != nullptr && slot >= 0;
  T* row = static_cast<T*>(p.qkv) + static_cast<int64_t>(t) * p.qkv_stride;

  for (int h = warp; h < num_heads; h += kWarps) {
    T* x = row + static_cast<int64_t>(h) * p.head_dim;
    if (h >= p.num_q_heads + p.num_kv_heads) {  // v head: copy into the cache
      if (write_cache && p.kv_fp8) {
        uint8_t* dst = cache_row<uint8_t>(p.v_cache, slot, h - p.num_q_heads - p.num_kv_heads, p);
        for (int i = lane; i < p.head_dim; i += 32) dst[i] = kv_fp8_quantize(to_f(x[i]), p.v_scale);
      } else if (write_cache) {
        T* dst = cache_row<T>(p.v_cache, slot, h - p.num_q_heads - p.num_kv_heads, p);
        for (int i = lane; i < p.head_dim; i += 32) dst[i] = x[i];
      }
      continue;
    }
    const bool is_k = h >= p.num_q_heads;
    const T* norm_w = static_cast<const T*>(is_k ? p.k_norm : p.q_norm);
    float r = 1.f;
    if (norm_w != nullptr) {
      float ss = 0.f;
      for (int i = lane; i < p.head_dim; i += 32) {
        if constexpr (kIsF32<T>) {
          ss = fmaf(x[i], x[i], ss);
        } else {
          const float v = __bfloat162float(x[i]);
          ss += v * v;
        }
      }
      ss = warp_sum(ss);
      if constexpr (kIsF32<T>) {
        r = 1.f / sqrtf(ss / static_cast<float>(p.head_dim) + p.eps);
      } else {
        r = rsqrtf(ss / static_cast<float>(p.head_dim) + p.eps);
      }
    }
    const bool write_k = is_k && write_cache;
    T* dst = write_k && !p.kv_fp8 ? cache_row<T>(p.k_cache, slot, h - p.num_q_heads, p) : nullptr;
    uint8_t* dst8 =
        write_k && p.kv_fp8 ? cache_row<uint8_t>(p.k_cache, slot, h - p.num_q_heads, p) : nullptr;
    for (int i = lane; i < half; i += 32) {
      float x1 = to_f(x[i]);
      float x2 = to_f(x[i + half]);
      float s, c;
      if constexpr (kIsF32<T>) {
        if (norm_w != nullptr) {
          x1 = x1 * r * norm_w[i];
          x2 = x2 * r * norm_w[i + half];
        }
        // The angle in double, as the CPU backend computes it.
        const double a = pos * p.inv_freq64[i];
        c = static_cast<float>(cos(a));
        s = static_cast<float>(sin(a));
      } else {
        if (norm_w != nullptr) {
          x1 = round_bf16(__bfloat162float(norm_w[i]) * round_bf16(x1 * r));
          x2 = round_bf16(__bfloat162float(norm_w[i + half]) * round_bf16(x2 * r));
        }
        // float(pos) * inv_freq in float32, as transformers computes the angle.
        sincosf(pos * p.inv_freq[i], &s, &c);
      }
      const T o1 = from_f<T>(x1 * c - x2 * s);
      const T o2 = from_f<T>(x2 * c + x1 * s);
      x[i] = o1;
      x[i + half] = o2;
      if (dst != nullptr) {
        dst[i] = o1;
        dst[i + half] = o2;
      }
      if (dst8 != nullptr) {
        dst8[i] = kv_fp8_quantize(to_f(o1), p.k_scale);
        dst8[i + half] = kv_fp8_quantize(to_f(o2), p.k_scale);
      }
    }
  }
}

}  // namespace

void rope_kv_write(const RopeKvWriteParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  KITE_DISPATCH_DTYPE("rope_kv_write", p.dtype, ElementwiseDTypes, T, {
    launch(rope_kv_write_kernel<T>, dim3(p.num_tokens), dim3(kWarps * 32), 0, dev, stream, p);
  });
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
