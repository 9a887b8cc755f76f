// Paged attention over the KV cache written by rope_kv_write (see rope.h for the layout).
//
// Sequence s of the batch has query tokens [query_start_loc[s], query_start_loc[s+1]) at
// positions seq_lens[s] - qlen ... seq_lens[s] - 1; each attends causally to the cached tokens
// 0 ... its own position (the cache already holds this step's K/V). GQA: q head h reads kv head
// h / (num_q_heads / num_kv_heads).
//
// Three kernels, chosen by attention_path() and plan_attention() from the shapes table
// (kernel_support.h):
//  - decode (bf16, head_dim 64/128/256, group <= 8): sequences with exactly one query token;
//    split-KV: grid (num_splits, num_kv_heads, num_decode); each split reduces a slice of the
//    context and the last split to finish merges them (no extra launch);
//  - prefill (bf16, head_dim 64/128/256, group <= 64): tensor-core (mma.sync bf16) flash
//    attention over tiles of 64 (query token, head) rows of one kv head, 2-stage cp.async
//    pipeline over KV tiles;
//  - generic (bf16 or f32, even head_dim <= 32, any group): one warp per (query token, q head);
//    for small models.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kite/status.h"

namespace kite::cuda {

class DeviceContext;

struct AttentionParams {
  const void* q = nullptr;        // of dtype; head h of token t at q + t * q_stride + h * head_dim
  int64_t q_stride = 0;           // elements
  void* out = nullptr;            // [num_tokens, num_q_heads * head_dim] of dtype
  const void* k_cache = nullptr;  // [num_blocks, num_kv_heads, block_size, head_dim] of dtype,
  const void* v_cache = nullptr;  // or of E4M3 bytes with kv_fp8
  const int32_t* query_start_loc = nullptr;     // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;            // [num_seqs]
  const int32_t* block_table_indptr = nullptr;  // [num_seqs + 1]
  const int32_t* block_table = nullptr;         // CSR block ids
  int num_tokens = 0;
  int num_seqs = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;
  float scale = 0.f;  // softmax scale, usually 1 / sqrt(head_dim)
  // > 0: the query at position p attends to keys [p - sliding_window + 1, p] only (Mistral).
  int sliding_window = 0;
  // > 0: scores (after `scale`) become softcap * tanh(score / softcap) before the softmax
  // (Gemma 2). The decode, prefill and generic kernels honour it; FlashInfer's prefill is not
  // used for such models (CudaModelRunner::create).
  float softcap = 0.f;
  // Element type of q, the caches and out: kBF16, or kF32 (the float32 compute mode; the generic
  // path only: attention_path_supports).
  DType dtype = DType::kBF16;
  // FP8 KV cache: the caches hold E4M3 bytes, read as float(e4m3) * k_scale (v_scale for V);
  // every kernel takes it (the prefill kernel folds the scales into the softmax scale and the
  // output instead of scaling each element; FlashInfer's prefill does not: see
  // flashinfer_prefill.h).
  bool kv_fp8 = false;
  float k_scale = 1.f;
  float v_scale = 1.f;

  // Work lists (device memory), from AttentionPlan.
  const int32_t* prefill_tile_seq = nullptr;      // [num_prefill_tiles]
  const int32_t* prefill_tile_q_start = nullptr;  // [num_prefill_tiles] first query of the tile
  int num_prefill_tiles = 0;
  const int32_t* decode_seqs = nullptr;  // [num_decode] sequence ids; nullptr = 0..num_decode-1
  int num_decode = 0;
  int num_splits = 1;  // decode split-KV factor

  // Decode split-KV workspace (needed when num_splits > 1), see decode_workspace_bytes().
  float* split_out = nullptr;         // [num_decode, num_q_heads, num_splits, head_dim]
  float* split_lse = nullptr;         // [num_decode, num_q_heads, num_splits, 2] (max, sum)
  int32_t* split_counters = nullptr;  // [num_decode, num_kv_heads], zero; kernels leave it zero
};

enum class AttentionPath { kTensorCore, kGeneric };

// Which path serves these shapes, or kUnimplemented naming the unsupported value (the shapes
// table, kernel_support.h).
Result<AttentionPath> attention_path(int head_dim, int num_q_heads, int num_kv_heads);

// Whether `path`'s kernels compute in `dtype` (tensor-core: bf16; generic: bf16 or f32).
bool attention_path_supports(AttentionPath path, DType dtype);

// Host-side plan of one step's attention (the CPU half of plan/run).
struct AttentionPlan {
  std::vector<int32_t> prefill_tile_seq;
  std::vector<int32_t> prefill_tile_q_start;
  std::vector<int32_t> decode_seqs;  // empty with all_decode
  bool all_decode = false;           // every sequence has one query token
  int num_decode = 0;
  int num_splits = 1;
};

// Query rows one prefill tile holds for one kv head: 64 / group tokens.
int prefill_tokens_per_tile(int num_q_heads, int num_kv_heads);

// Decode split-KV factor for `num_decode` sequences: enough CTAs to fill the GPU twice, at most
// kMaxDecodeSplits, and at most one split per 64 tokens of `max_seq_len` (0 = unknown, as in a
// CUDA graph captured for every length). num_decode * splits <= kMaxSplitRows.
constexpr int kMaxDecodeSplits = 32;
constexpr int kMaxSplitRows = 1024;
int decode_num_splits(int num_decode, int num_kv_heads, int max_seq_len, int num_sms);

// Plans the tensor-core path. Host arrays as in ForwardBatch.
AttentionPlan plan_attention(const int32_t* query_start_loc, const int32_t* seq_lens, int num_seqs,
                             int max_seq_len, int num_q_heads, int num_kv_heads, int num_sms);

// Workspace the decode kernel needs for `max_rows` = max(num_decode * num_splits).
size_t decode_workspace_bytes(int max_rows, int num_q_heads, int head_dim);
size_t decode_counter_bytes(int max_decode, int num_kv_heads);

// Runs the step's attention on `dev`'s device. REQUIRES: the work lists match p (from
// plan_attention) for the tensor-core path; the generic path ignores them.
void attention(const AttentionParams& p, AttentionPath path, const DeviceContext& dev,
               cudaStream_t stream);

// The individual kernels (tests call them directly).
void attention_decode(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream);
void attention_prefill(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream);
void attention_generic(const AttentionParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
