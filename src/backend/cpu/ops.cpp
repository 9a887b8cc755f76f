// Element-wise and row-wise CPU ops: embedding, norms, RoPE, SiLU, KV write, softmax.
// linear.cpp holds the GEMM/GEMV, attention.cpp the paged attention.
#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "backend/cpu/simd.h"
#include "checkpoint/dequant.h"
#include "core/check.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

// Runs fn(begin, end) over [0, n) on the pool (or inline), in chunks of about `min_work`
// units of work when each item costs `item_work`.
template <typename Fn>
void parallel_rows(ThreadPool* pool, int64_t n, int64_t item_work, const Fn& fn) {
  constexpr int64_t kMinWork = 1 << 15;  // below this, threading costs more than it saves
  if (pool == nullptr || n * item_work <= kMinWork) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t min_chunk = std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, item_work));
  pool->parallel_for(n, fn, min_chunk);
}

// 1 / sqrt(mean(x^2) + eps) of one row.
float inv_rms(const float* x, int64_t d, float eps) {
  simd::V8 acc = simd::zero();
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const simd::V8 v = simd::load(x + j);
    acc = simd::fmadd(v, v, acc);
  }
  float ss = simd::hsum(acc);
  for (; j < d; ++j) ss += x[j] * x[j];
  return 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
}

void scale_row(const float* x, const float* w, float s, int64_t d, float* out) {
  const simd::V8 vs = simd::set1(s);
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    simd::store(out + j, simd::mul(simd::mul(simd::load(x + j), vs), simd::load(w + j)));
  }
  for (; j < d; ++j) out[j] = x[j] * s * w[j];
}

template <typename T>
void embed_rows(const T* table, int64_t hidden, int64_t vocab, const int32_t* ids, int64_t begin,
                int64_t end, float* out) {
  for (int64_t t = begin; t < end; ++t) {
    const int32_t id = ids[t];
    KITE_CHECK(id >= 0 && id < vocab) << "token id " << id << " vocab " << vocab;
    const T* row = table + id * hidden;
    float* o = out + t * hidden;
    for (int64_t j = 0; j < hidden; ++j) o[j] = simd::to_f32(row[j]);
  }
}

}  // namespace

void embedding(const TensorView& table, const int32_t* token_ids, int64_t n, float* out,
               ThreadPool* pool) {
  KITE_CHECK_EQ(table.ndim, 2);
  KITE_CHECK(table.is_contiguous());
  const int64_t vocab = table.dim(0);
  const int64_t hidden = table.dim(1);
  parallel_rows(pool, n, hidden, [&](int64_t b, int64_t e) {
    switch (table.dtype) {
      case DType::kF32:
        embed_rows(table.as<float>(), hidden, vocab, token_ids, b, e, out);
        break;
      case DType::kF16:
        embed_rows(table.as<f16_t>(), hidden, vocab, token_ids, b, e, out);
        break;
      case DType::kBF16:
        embed_rows(table.as<bf16_t>(), hidden, vocab, token_ids, b, e, out);
        break;
      default: {  // GGUF quantized rows
        KITE_CHECK(can_dequantize(table.dtype)) << "embedding dtype " << dtype_name(table.dtype);
        const int64_t row_bytes = table.row_bytes();
        for (int64_t t = b; t < e; ++t) {
          const int32_t id = token_ids[t];
          KITE_CHECK(id >= 0 && id < vocab) << "token id " << id << " vocab " << vocab;
          dequantize_row(table.dtype, static_cast<const uint8_t*>(table.data) + id * row_bytes,
                         out + t * hidden, hidden);
        }
      }
    }
  });
}

void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out,
              ThreadPool* pool) {
  parallel_rows(pool, n, d, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* xi = x + i * d;
      scale_row(xi, weight, inv_rms(xi, d, eps), d, out + i * d);
    }
  });
}

void add_rms_norm(float* residual, const float* x, const float* weight, int64_t n, int64_t d,
                  float eps, float* out, ThreadPool* pool) {
  parallel_rows(pool, n, d, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* r = residual + i * d;
      const float* xi = x + i * d;
      for (int64_t j = 0; j < d; ++j) r[j] += xi[j];
      scale_row(r, weight, inv_rms(r, d, eps), d, out + i * d);
    }
  });
}

void head_rms_norm(float* x, int64_t n, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                   const float* weight, float eps, ThreadPool* pool) {
  parallel_rows(pool, n, num_heads * head_dim, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      for (int64_t h = 0; h < num_heads; ++h) {
        float* xh = x + i * row_stride + h * head_dim;
        scale_row(xh, weight, inv_rms(xh, head_dim, eps), head_dim, xh);
      }
    }
  });
}

std::vector<double> rope_inv_freq(int64_t rotary_dim, double theta, const RopeScaling& scaling,
                                  const float* freq_factors) {
  KITE_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0) << rotary_dim;
  const int64_t half = rotary_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv[static_cast<size_t>(i)] =
        1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(rotary_dim));
  }
  switch (scaling.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      for (double& f : inv) f /= scaling.factor;
      break;
    case RopeScaling::Type::kLongRope:
      KITE_CHECK_EQ(static_cast<int64_t>(scaling.short_factor.size()), half);
      for (int64_t i = 0; i < half; ++i) {
        inv[static_cast<size_t>(i)] /= scaling.short_factor[static_cast<size_t>(i)];
      }
      break;
    case RopeScaling::Type::kLlama3: {
      const double old_len = static_cast<double>(scaling.original_max_position_embeddings);
      const double low_wavelen = old_len / scaling.low_freq_factor;
      const double high_wavelen = old_len / scaling.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
          f /= scaling.factor;                 // long wavelengths: fully interpolated
        } else if (wavelen >= high_wavelen) {  // the band between: smooth blend
          const double smooth = (old_len / wavelen - scaling.low_freq_factor) /
                                (scaling.high_freq_factor - scaling.low_freq_factor);
          f = (1.0 - smooth) * f / scaling.factor + smooth * f;
        }
      }
      break;
    }
  }
  if (freq_factors != nullptr) {
    for (int64_t i = 0; i < half; ++i) inv[static_cast<size_t>(i)] /= freq_factors[i];
  }
  return inv;
}

std::vector<double> rope_inv_freq_long(int64_t rotary_dim, double theta,
                                       const RopeScaling& scaling) {
  KITE_CHECK(scaling.type == RopeScaling::Type::kLongRope);
  KITE_CHECK_EQ(static_cast<int64_t>(scaling.long_factor.size()), rotary_dim / 2);
  RopeScaling as_short = scaling;
  as_short.short_factor = scaling.long_factor;
  return rope_inv_freq(rotary_dim, theta, as_short);
}

void rope_neox(float* x, int64_t n, int64_t row_stride, int64_t num_heads, int64_t head_dim,
               const int32_t* positions, const double* inv_freq, ThreadPool* pool,
               int64_t rotary_dim, float attention_factor) {
  if (rotary_dim == 0) rotary_dim = head_dim;
  KITE_CHECK(rotary_dim % 2 == 0 && rotary_dim > 0 && rotary_dim <= head_dim)
      << rotary_dim << " of " << head_dim;
  const int64_t half = rotary_dim / 2;
  parallel_rows(pool, n, num_heads * rotary_dim + half * 8, [&](int64_t b, int64_t e) {
    std::vector<float> cos_v(static_cast<size_t>(half));
    std::vector<float> sin_v(static_cast<size_t>(half));
    for (int64_t t = b; t < e; ++t) {
      const double pos = positions[t];
      for (int64_t i = 0; i < half; ++i) {
        const double a = pos * inv_freq[i];
        cos_v[static_cast<size_t>(i)] = static_cast<float>(std::cos(a)) * attention_factor;
        sin_v[static_cast<size_t>(i)] = static_cast<float>(std::sin(a)) * attention_factor;
      }
      for (int64_t h = 0; h < num_heads; ++h) {
        float* xh = x + t * row_stride + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = xh[i];
          const float x1 = xh[i + half];
          const float c = cos_v[static_cast<size_t>(i)];
          const float s = sin_v[static_cast<size_t>(i)];
          xh[i] = x0 * c - x1 * s;
          xh[i + half] = x1 * c + x0 * s;
        }
      }
    }
  });
}

void silu_mul(const float* gate_up, int64_t n, int64_t inter, float* out, ThreadPool* pool) {
  parallel_rows(pool, n, inter * 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gate_up + i * 2 * inter;
      const float* u = g + inter;
      float* o = out + i * inter;
      for (int64_t j = 0; j < inter; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  });
}

void gelu_tanh_mul(const float* gate_up, int64_t n, int64_t inter, float* out, ThreadPool* pool) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  parallel_rows(pool, n, inter * 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gate_up + i * 2 * inter;
      const float* u = g + inter;
      float* o = out + i * inter;
      for (int64_t j = 0; j < inter; ++j) {
        const float x = g[j];
        o[j] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * u[j];
      }
    }
  });
}

void softcap(const float* x, int64_t n, float cap, float* out) {
  KITE_CHECK(cap > 0) << cap;
  for (int64_t i = 0; i < n; ++i) out[i] = cap * std::tanh(x[i] / cap);
}

void kv_cache_write(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n,
                    int64_t kv_dim, const int32_t* slot_mapping, int64_t num_slots, float* k_cache,
                    float* v_cache) {
  for (int64_t t = 0; t < n; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    KITE_CHECK_LT(slot, num_slots);
    std::copy_n(k + t * ldk, kv_dim, k_cache + slot * kv_dim);
    std::copy_n(v + t * ldv, kv_dim, v_cache + slot * kv_dim);
  }
}

uint8_t quantize_kv_fp8(float x, float scale) { return f32_to_fp8e4m3(x / scale); }

void kv_cache_write_fp8(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n,
                        int64_t kv_dim, const int32_t* slot_mapping, int64_t num_slots,
                        float k_scale, float v_scale, uint8_t* k_cache, uint8_t* v_cache) {
  KITE_CHECK(std::isfinite(k_scale) && k_scale > 0 && std::isfinite(v_scale) && v_scale > 0)
      << k_scale << " " << v_scale;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    KITE_CHECK_LT(slot, num_slots);
    for (int64_t i = 0; i < kv_dim; ++i) {
      k_cache[slot * kv_dim + i] = quantize_kv_fp8(k[t * ldk + i], k_scale);
      v_cache[slot * kv_dim + i] = quantize_kv_fp8(v[t * ldv + i], v_scale);
    }
  }
}

void softmax(const float* x, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    float* oi = out + i * d;
    const float mx = *std::max_element(xi, xi + d);
    double sum = 0;
    for (int64_t j = 0; j < d; ++j) {
      oi[j] = std::exp(xi[j] - mx);
      sum += oi[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < d; ++j) oi[j] *= inv;
  }
}

void log_softmax(const float* x, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    float* oi = out + i * d;
    const float mx = *std::max_element(xi, xi + d);
    double sum = 0;
    for (int64_t j = 0; j < d; ++j) sum += std::exp(static_cast<double>(xi[j] - mx));
    const float log_sum = static_cast<float>(std::log(sum));
    for (int64_t j = 0; j < d; ++j) oi[j] = (xi[j] - mx) - log_sum;
  }
}

int32_t argmax(const float* x, int64_t d) {
  int32_t best = 0;
  float best_v = -std::numeric_limits<float>::infinity();
  bool found = false;
  for (int64_t j = 0; j < d; ++j) {
    if (x[j] > best_v || (!found && x[j] == best_v)) {
      best_v = x[j];
      best = static_cast<int32_t>(j);
      found = true;
    }
  }
  return best;
}

}  // namespace kite::cpu
