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
  const int rot = p.rotary_dim > 0 ? p.rotary_dim : p.head_dim;
  const int half = rot / 2;
  const int num_heads = p.num_q_heads + 2 * p.num_kv_heads;
  // The position as each dtype's angle takes it: float (bf16, as transformers), double (f32).
  using Pos = std::conditional_t<kIsF32<T>, double, float>;
  const Pos pos = static_cast<Pos>(p.positions[t]);
  const int64_t slot = p.slot_mapping != nullptr ? p.slot_mapping[t] : -1;
  const bool write_cache = p.k_cache != nullptr && slot >= 0;
  T* row = static_cast<T*>(p.qkv) + static_cast<int64_t>(t) * p.qkv_stride;
  const float* inv_freq = p.inv_freq;
  const double* inv_freq64 = p.inv_freq64;
  if (p.inv_freq_long != nullptr || p.inv_freq64_long != nullptr) {
    // LongRoPE: the long table when t's sequence reaches past long_after in this step.
    int lo = 0, hi = p.num_seqs - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (p.query_start_loc[mid] <= t)
        lo = mid;
      else
        hi = mid - 1;
    }
    const int last = p.query_start_loc[lo + 1] - 1;
    if (static_cast<int64_t>(p.positions[last]) + 1 > p.long_after) {
      inv_freq = p.inv_freq_long;
      inv_freq64 = p.inv_freq64_long;
    }
  }

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
    auto normed = [&](float v, int i) {
      if (norm_w == nullptr) return v;
      if constexpr (kIsF32<T>) {
        return v * r * norm_w[i];
      } else {
        return round_bf16(__bfloat162float(norm_w[i]) * round_bf16(v * r));
      }
    };
    const bool write_k = is_k && write_cache;
    T* dst = write_k && !p.kv_fp8 ? cache_row<T>(p.k_cache, slot, h - p.num_q_heads, p) : nullptr;
    uint8_t* dst8 =
        write_k && p.kv_fp8 ? cache_row<uint8_t>(p.k_cache, slot, h - p.num_q_heads, p) : nullptr;
    for (int i = lane; i < half; i += 32) {
      const float x1 = normed(to_f(x[i]), i);
      const float x2 = normed(to_f(x[i + half]), i + half);
      float s, c;
      if constexpr (kIsF32<T>) {
        // The angle in double, as the CPU backend computes it.
        const double a = pos * inv_freq64[i];
        c = static_cast<float>(cos(a));
        s = static_cast<float>(sin(a));
      } else {
        // float(pos) * inv_freq in float32, as transformers computes the angle.
        sincosf(pos * inv_freq[i], &s, &c);
      }
      if (p.attention_factor != 1.f) {
        c *= p.attention_factor;
        s *= p.attention_factor;
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
    // Partial rotary: the dims past rot pass through (normalized when there is a norm).
    for (int i = rot + lane; i < p.head_dim; i += 32) {
      const T o = norm_w != nullptr ? from_f<T>(normed(to_f(x[i]), i)) : x[i];
      x[i] = o;
      if (dst != nullptr) dst[i] = o;
      if (dst8 != nullptr) dst8[i] = kv_fp8_quantize(to_f(o), p.k_scale);
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

std::vector<double> rope_inv_freq64(int64_t rotary_dim, double theta, const RopeScaling& rs,
                                    const float* freq_factors, bool long_factors) {
  const int64_t half = rotary_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  const double kPi = 3.14159265358979323846;
  const std::vector<double>& longrope = long_factors ? rs.long_factor : rs.short_factor;
  for (int64_t i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(rotary_dim));
    if (rs.type == RopeScaling::Type::kLinear) {
      f /= rs.factor;
    } else if (rs.type == RopeScaling::Type::kLongRope) {
      if (static_cast<size_t>(i) < longrope.size()) f /= longrope[static_cast<size_t>(i)];
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
    inv[static_cast<size_t>(i)] = f;
  }
  return inv;
}

std::vector<double> rope_inv_freq64(const ModelConfig& cfg, const float* freq_factors) {
  return rope_inv_freq64(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, freq_factors);
}

std::vector<float> rope_inv_freq(const ModelConfig& cfg, const float* freq_factors) {
  const std::vector<double> inv = rope_inv_freq64(cfg, freq_factors);
  return std::vector<float>(inv.begin(), inv.end());
}

}  // namespace kite::cuda
