// CPU reference ops of the decoder (F32 compute). They define what every backend computes: the
// CUDA kernels are tested against them, so each op states its exact formula.
//
// Conventions:
//   - Activations are F32, row-major; `[n, d]` means n rows of d values. Where an op reads
//     part of a wider row (q and k inside the fused qkv row) it takes a row stride in elements.
//   - Weights of linear layers and embeddings are F32, F16, BF16 or a GGUF block quantization
//     (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; dequantized on the fly in chunks, bit-identical to
//     dequantizing first: model/dequant.h); norm weights and biases are F32 (the runner
//     converts those small vectors once at load).
//   - `pool` may be nullptr (run on the calling thread). Results do not depend on the number
//     of threads: every output element is computed by one thread in a fixed order.
//   - Sizes and indices come from kite itself (the engine validated user input before), so
//     violations are KITE_CHECK failures, not Status errors.
#pragma once

#include <cstdint>
#include <vector>

#include "checkpoint/config.h"
#include "core/tensor.h"

namespace kite {
class ThreadPool;
}

namespace kite::cpu {

// ---- embeddings and norms -----------------------------------------------------------------

// out[t, :] = float(table[token_ids[t], :]).
//   table: [vocab, hidden] (any weight dtype); token_ids: [n], each in [0, vocab); out: [n,
//   hidden].
void embedding(const TensorView& table, const int32_t* token_ids, int64_t n, float* out,
               ThreadPool* pool);

// out[i, :] = x[i, :] / sqrt(mean_j(x[i, j]^2) + eps) * weight   (the Llama RMSNorm)
//   x, out: [n, d] (may alias); weight: [d].
void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out,
              ThreadPool* pool);

// Fused residual add + RMSNorm (the pre-norm of every layer but the first):
//   residual[i, :] += x[i, :];  out[i, :] = rms_norm(residual[i, :]) * weight
//   residual: [n, d] in/out; x: [n, d]; weight: [d]; out: [n, d] (may alias x).
void add_rms_norm(float* residual, const float* x, const float* weight, int64_t n, int64_t d,
                  float eps, float* out, ThreadPool* pool);

// RMSNorm of each head of each row, in place (Qwen3's q_norm/k_norm before RoPE):
//   x: n rows with row stride `row_stride`, each holding num_heads x head_dim values from
//   offset 0; weight: [head_dim].
void head_rms_norm(float* x, int64_t n, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                   const float* weight, float eps, ThreadPool* pool);

// ---- rotary position embedding ------------------------------------------------------------

// inv_freq[i] for i in [0, rotary_dim/2), in float64:
//   base:    theta^(-2i / rotary_dim)
//   linear:  base / factor
//   llama3:  Llama 3.1's band-wise scaling (wavelength above original/low_freq_factor: / factor;
//            below original/high_freq_factor: unchanged; between: smooth interpolation)
//   freq_factors (GGUF `rope_freqs.weight`, optional, [rotary_dim/2]): base / freq_factors[i]
//            applied after the scaling above (files that carry it have no scaling metadata).
//   longrope: base / short_factor[i] (the frequencies within original_max_position_embeddings;
//            rope_inv_freq_long gives the ones beyond: base / long_factor[i])
std::vector<double> rope_inv_freq(int64_t rotary_dim, double theta, const RopeScaling& scaling,
                                  const float* freq_factors = nullptr);
std::vector<double> rope_inv_freq_long(int64_t rotary_dim, double theta,
                                       const RopeScaling& scaling);

// NeoX / Hugging Face "rotate-half" RoPE, in place, of the first rotary_dim dims of each head
// (0 = head_dim; the rest pass through: partial rotary). For each row t and head h, with
// half = rotary_dim / 2, a = positions[t] * inv_freq[i] (computed in float64):
//   x0 = x[h, i], x1 = x[h, i + half]
//   x[h, i]        = x0 * c - x1 * s,  c = float(cos(a)) * attention_factor
//   x[h, i + half] = x1 * c + x0 * s,  s = float(sin(a)) * attention_factor   for i in [0, half)
// (attention_factor: LongRoPE's scaling of cos and sin; 1 elsewhere).
//   x: n rows with row stride `row_stride`, num_heads x head_dim values from offset 0;
//   positions: [n]; inv_freq: [rotary_dim / 2].
void rope_neox(float* x, int64_t n, int64_t row_stride, int64_t num_heads, int64_t head_dim,
               const int32_t* positions, const double* inv_freq, ThreadPool* pool,
               int64_t rotary_dim = 0, float attention_factor = 1.f);

// ---- linear layers --------------------------------------------------------------------------

// y = x @ W^T (+ bias):  y[i, j] = sum_k x[i, k] * W[j, k] (+ bias[j]), F32 accumulation.
//   x: [m, k] F32 with row stride ldx (>= k); w: [n, k] any weight dtype, contiguous;
//   bias: [n] or nullptr; y: [m, n] with row stride ldy (>= n). y must not alias x.
// Blocked over k and n (GEMM) for prefill, streaming W once (GEMV) when m is small.
void linear(const float* x, int64_t m, int64_t ldx, const TensorView& w, const float* bias,
            float* y, int64_t ldy, ThreadPool* pool);
inline void linear(const float* x, int64_t m, const TensorView& w, const float* bias, float* y,
                   ThreadPool* pool) {
  linear(x, m, w.dim(1), w, bias, y, w.dim(0), pool);
}

// out[i, j] = silu(gate[i, j]) * up[i, j], silu(g) = g / (1 + exp(-g)), where row i of
// gate_up is [gate | up]:  gate_up: [n, 2 * inter]; out: [n, inter].
void silu_mul(const float* gate_up, int64_t n, int64_t inter, float* out, ThreadPool* pool);

// out[i, j] = gelu_tanh(gate[i, j]) * up[i, j] with transformers' gelu_pytorch_tanh,
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2 / pi) (g + 0.044715 g^3))); layout as silu_mul.
void gelu_tanh_mul(const float* gate_up, int64_t n, int64_t inter, float* out, ThreadPool* pool);

// out[i] = cap * tanh(x[i] / cap) for i in [0, n) (soft-capping; x and out may alias).
void softcap(const float* x, int64_t n, float cap, float* out);

// ---- paged KV cache and attention ---------------------------------------------------------
//
// KV cache layout (one tensor for K and one for V per layer):
//   [num_blocks, block_size, num_kv_heads, head_dim] F32 (or FP8 E4M3 bytes, below); token slot
//   s = block * block_size + offset holds row s of the [num_blocks * block_size,
//   num_kv_heads * head_dim] view.
//
// FP8 KV cache (--kv-cache-dtype fp8, vLLM's definition): one float scale per layer for K and
// one for V; a value x is stored as e4m3(x / scale) (round to nearest even, saturating to
// +-448: f32_to_fp8e4m3) and read back as fp8e4m3_to_f32(byte) * scale. This is the reference
// the CUDA kernels' FP8 cache is tested against.

// k_cache[slot_mapping[t], :] = k[t, :] and likewise for v; slots of -1 are skipped.
//   k, v: n rows of kv_dim = num_kv_heads * head_dim values with row strides ldk, ldv;
//   slot_mapping: [n], each -1 or in [0, num_slots); k_cache, v_cache: [num_slots, kv_dim].
void kv_cache_write(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n,
                    int64_t kv_dim, const int32_t* slot_mapping, int64_t num_slots, float* k_cache,
                    float* v_cache);
// The FP8 cache's write: k_cache[slot, i] = e4m3(k[t, i] / k_scale), likewise v with v_scale.
//   k_cache, v_cache: [num_slots, kv_dim] E4M3 bytes. REQUIRES: scales finite and > 0.
void kv_cache_write_fp8(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n,
                        int64_t kv_dim, const int32_t* slot_mapping, int64_t num_slots,
                        float k_scale, float v_scale, uint8_t* k_cache, uint8_t* v_cache);
// e4m3(x / scale): the value an FP8 cache stores for x.
uint8_t quantize_kv_fp8(float x, float scale);

struct PagedAttentionParams {
  const float* q = nullptr;  // [num_tokens, num_heads * head_dim], row stride q_stride
  int64_t q_stride = 0;
  const float* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const float* v_cache = nullptr;  // same
  // An FP8 cache instead (k_cache/v_cache unused): E4M3 bytes in the same layout, dequantized
  // on read as fp8e4m3_to_f32(byte) * k_scale (v_scale for V).
  const uint8_t* k_cache_fp8 = nullptr;
  const uint8_t* v_cache_fp8 = nullptr;
  float k_scale = 1.f;
  float v_scale = 1.f;
  float* out = nullptr;            // [num_tokens, num_heads * head_dim], row stride out_stride
  int64_t out_stride = 0;
  int64_t num_blocks = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // divides num_heads; query head h reads kv head h / (heads / kv_heads)
  int head_dim = 0;
  int block_size = 0;
  float scale = 0;  // usually 1 / sqrt(head_dim)
  // Sliding-window attention (Mistral): a query at KV index p reads only the last
  // sliding_window indices [p - sliding_window + 1, p]. 0 = no window (full causal).
  int32_t sliding_window = 0;
  // Soft-capping of the scores (Gemma 2): s = softcap * tanh(s / softcap) after `scale`.
  // 0 = none.
  float softcap = 0;

  // Batch structure (as in runtime/forward_batch.h):
  int num_seqs = 0;
  const int32_t* query_start_loc = nullptr;     // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;            // [num_seqs] KV length incl. this step
  const int32_t* block_table_indptr = nullptr;  // [num_seqs + 1]
  const int32_t* block_table = nullptr;         // block ids, CSR
};

// Causal attention of each query token over its sequence's cached keys/values. Query j of
// sequence s (q_len = query_start_loc[s+1] - query_start_loc[s]) sits at KV index
// p = seq_lens[s] - q_len + j and attends to KV indices [0, p] (or [p - sliding_window + 1, p]
// with a window, clamped at 0, as Hugging Face's sliding-window mask); KV index i lives in slot
// block_table[s][i / block_size] * block_size + i % block_size.
//   out[t, h, :] = sum_i softmax_i(cap(scale * q[t, h, :] . K[i, kvh, :])) * V[i, kvh, :]
// where cap is the soft-cap (identity without one).
// The cache must already hold this step's K/V (kv_cache_write first).
void paged_attention(const PagedAttentionParams& p, ThreadPool* pool);

// ---- softmax ------------------------------------------------------------------------------

// out[i, :] = exp(x[i, :] - max) / sum(exp(x[i, :] - max)). x, out: [n, d] (may alias).
void softmax(const float* x, int64_t n, int64_t d, float* out);
// out[i, :] = x[i, :] - max - log(sum(exp(x[i, :] - max))). x, out: [n, d] (may alias).
void log_softmax(const float* x, int64_t n, int64_t d, float* out);
// Index of the largest value (the lowest index among equal maxima; NaN never wins). x: [d].
int32_t argmax(const float* x, int64_t d);

}  // namespace kite::cpu
