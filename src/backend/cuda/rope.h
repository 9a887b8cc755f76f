// Per-token attention input preparation, one kernel: optional per-head RMSNorm of q and k
// (Qwen3), rotary position embedding of q and k (neox / rotate-half layout: dims i and
// i + head_dim/2 form a pair), and the write of k and v into the paged KV cache.
//
// Rotation of pair i at position pos, with f = float(pos) * inv_freq[i] (float32, as
// Hugging Face computes it), c = cos(f), s = sin(f):
//   x[i] <- x[i] c - x[i + d/2] s,   x[i + d/2] <- x[i + d/2] c + x[i] s
// inv_freq already holds any rope scaling (linear, llama3, LongRoPE's short factors); see
// rope_inv_freq(). Partial rotary (Phi-3.5 / Phi-4-mini): only the first rotary_dim dims of a
// head rotate (pairs i and i + rotary_dim/2); the rest pass through (q/k norms still apply).
// LongRoPE: c and s are multiplied by attention_factor, and a sequence whose last token of the
// step is past long_after (original_max_position_embeddings) takes inv_freq_long — the CPU
// backend's rule, decided on the device from query_start_loc (no host sync; graph-safe).
//
// dtype bf16: q/k/v, norms and cache bf16; the q/k norm rounds as Hugging Face's (x * rsqrt,
// rounded, times the weight, rounded), the rotated values are rounded once. dtype f32 (the
// float32 compute mode): everything F32, nothing rounded, the norm's sum of squares with fmaf and
// 1 / sqrtf, the angle computed in double from inv_freq64 with c and s rounded to float: the CPU
// backend's arithmetic.
//
// KV cache layout (both K and V): [num_blocks, num_kv_heads, block_size, head_dim] of dtype, or
// of E4M3 bytes with kv_fp8 (the value written, rounded to dtype first, is stored as
// e4m3(value / k_scale) — v_scale for V —, kv_fp8.cuh); token with slot s goes to block
// s / block_size, offset s % block_size. slot -1 = not written.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "checkpoint/config.h"
#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct RopeKvWriteParams {
  void* qkv = nullptr;     // [num_tokens, qkv_stride] of dtype: q heads, then k heads, then v heads
  int64_t qkv_stride = 0;  // elements between tokens
  const int32_t* positions = nullptr;     // [num_tokens]
  const int32_t* slot_mapping = nullptr;  // [num_tokens]
  const float* inv_freq = nullptr;        // [head_dim / 2] (bf16)
  const void* q_norm = nullptr;           // nullptr or [head_dim] of dtype
  const void* k_norm = nullptr;           // nullptr or [head_dim] of dtype (both or neither)
  void* k_cache = nullptr;                // nullptr = no cache write
  void* v_cache = nullptr;
  int num_tokens = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // even
  int block_size = 0;
  float eps = 1e-6f;
  DType dtype = DType::kBF16;          // ElementwiseDTypes (kernel_support.h)
  const double* inv_freq64 = nullptr;  // [rotary_dim / 2], required with f32
  int rotary_dim = 0;                  // even, <= head_dim; 0 = head_dim
  float attention_factor = 1.f;        // LongRoPE's scaling of cos and sin
  // LongRoPE (nullptr = none): the long-context tables, [rotary_dim / 2] each, and the
  // sequences of the step (to find each token's sequence and its last position).
  const float* inv_freq_long = nullptr;
  const double* inv_freq64_long = nullptr;
  int64_t long_after = 0;
  const int32_t* query_start_loc = nullptr;  // [num_seqs + 1]
  int num_seqs = 0;
  bool kv_fp8 = false;  // the caches hold E4M3 bytes with these layer scales
  float k_scale = 1.f;
  float v_scale = 1.f;
};

void rope_kv_write(const RopeKvWriteParams& p, const DeviceContext& dev, cudaStream_t stream);

// Inverse frequencies [rotary_dim / 2] for theta and scaling, computed in double;
// `freq_factors` (GGUF rope_freqs.weight, [rotary_dim / 2]) divide them after the scaling when
// given; `long_factors`: LongRoPE's long table (scaling.long_factor instead of short_factor).
// The same arithmetic as the CPU backend's cpu::rope_inv_freq. rope_inv_freq rounds them to
// float (the bf16 path). The ModelConfig forms: head_dim, rope_theta and rope_scaling.
std::vector<double> rope_inv_freq64(int64_t rotary_dim, double theta, const RopeScaling& scaling,
                                    const float* freq_factors = nullptr, bool long_factors = false);
std::vector<double> rope_inv_freq64(const ModelConfig& cfg, const float* freq_factors = nullptr);
std::vector<float> rope_inv_freq(const ModelConfig& cfg, const float* freq_factors = nullptr);

}  // namespace kite::cuda
