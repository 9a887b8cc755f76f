// Paged causal attention on the CPU (see ops.h for the definition).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd.h"
#include "core/check.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

// Where query token t sits: its sequence and its KV index (the last KV index it may read).
struct QueryInfo {
  int32_t seq;
  int32_t kv_pos;
};

std::vector<QueryInfo> query_infos(const PagedAttentionParams& p) {
  const int64_t num_tokens = p.query_start_loc[p.num_seqs];
  std::vector<QueryInfo> infos(static_cast<size_t>(num_tokens));
  for (int s = 0; s < p.num_seqs; ++s) {
    const int32_t begin = p.query_start_loc[s];
    const int32_t end = p.query_start_loc[s + 1];
    const int32_t q_len = end - begin;
    const int32_t seq_len = p.seq_lens[s];
    KITE_CHECK(q_len >= 0 && q_len <= seq_len)
        << "seq " << s << " q_len " << q_len << " seq_len " << seq_len;
    const int64_t num_blocks_needed = (seq_len + p.block_size - 1) / p.block_size;
    KITE_CHECK_GE(p.block_table_indptr[s + 1] - p.block_table_indptr[s], num_blocks_needed)
        << "block table of seq " << s << " too short for " << seq_len << " tokens";
    for (int64_t b = 0; b < num_blocks_needed; ++b) {
      const int32_t block = p.block_table[p.block_table_indptr[s] + b];
      KITE_CHECK(block >= 0 && block < p.num_blocks) << "seq " << s << " block " << block;
    }
    for (int32_t j = 0; j < q_len; ++j) {
      infos[static_cast<size_t>(begin + j)] = {s, seq_len - q_len + j};
    }
  }
  return infos;
}

// The 256 E4M3 codes as floats (an FP8 cache's rows are decoded through it).
const float* fp8_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(256);
    for (int i = 0; i < 256; ++i)
      t[static_cast<size_t>(i)] = fp8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table.data();
}

// row[d] = table[bytes[d]] * scale for d in [0, n).
void dequant_row(const uint8_t* bytes, int n, float scale, float* row) {
  const float* table = fp8_table();
  for (int d = 0; d < n; ++d) row[d] = table[bytes[d]] * scale;
}

// out_row = softmax(scale * K q) V over KV indices [first, kv_pos] of one (token, head), where
// first is 0, or kv_pos - sliding_window + 1 with a window. `row`: [head_dim] scratch (an FP8
// cache's dequantized K or V row).
void attend_one(const PagedAttentionParams& p, const float* q, const int32_t* blocks,
                int32_t kv_pos, int kv_head, float* scores, float* row, float* out_row) {
  const bool fp8 = p.k_cache_fp8 != nullptr;
  const int64_t kv_dim = static_cast<int64_t>(p.num_kv_heads) * p.head_dim;
  const int64_t head_off = static_cast<int64_t>(kv_head) * p.head_dim;
  const int32_t first = p.sliding_window > 0 ? std::max(0, kv_pos - p.sliding_window + 1) : 0;
  const int32_t n = kv_pos + 1 - first;
  auto slot_of = [&](int32_t j) {
    const int32_t i = first + j;
    return static_cast<int64_t>(blocks[i / p.block_size]) * p.block_size + i % p.block_size;
  };
  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n; ++i) {
    const float* k = nullptr;
    if (fp8) {
      dequant_row(p.k_cache_fp8 + slot_of(i) * kv_dim + head_off, p.head_dim, p.k_scale, row);
      k = row;
    } else {
      k = p.k_cache + slot_of(i) * kv_dim + head_off;
    }
    scores[i] = p.scale * simd::dot(q, k, p.head_dim);
    if (p.softcap > 0) scores[i] = p.softcap * std::tanh(scores[i] / p.softcap);
    mx = std::max(mx, scores[i]);
  }
  double sum = 0;
  for (int32_t i = 0; i < n; ++i) {
    scores[i] = std::exp(scores[i] - mx);
    sum += scores[i];
  }
  std::fill_n(out_row, p.head_dim, 0.0f);
  for (int32_t i = 0; i < n; ++i) {
    const float* v = nullptr;
    if (fp8) {
      dequant_row(p.v_cache_fp8 + slot_of(i) * kv_dim + head_off, p.head_dim, p.v_scale, row);
      v = row;
    } else {
      v = p.v_cache + slot_of(i) * kv_dim + head_off;
    }
    simd::axpy(scores[i], v, out_row, p.head_dim);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int d = 0; d < p.head_dim; ++d) out_row[d] *= inv;
}

}  // namespace

void paged_attention(const PagedAttentionParams& p, ThreadPool* pool) {
  KITE_CHECK(p.num_heads > 0 && p.num_kv_heads > 0 && p.num_heads % p.num_kv_heads == 0)
      << p.num_heads << " / " << p.num_kv_heads;
  KITE_CHECK(p.block_size > 0 && p.head_dim > 0 && p.sliding_window >= 0);
  const std::vector<QueryInfo> infos = query_infos(p);
  const int64_t num_tokens = static_cast<int64_t>(infos.size());
  if (num_tokens == 0) return;
  int32_t max_seq_len = 0;
  for (int s = 0; s < p.num_seqs; ++s) max_seq_len = std::max(max_seq_len, p.seq_lens[s]);
  const int group = p.num_heads / p.num_kv_heads;
  const int64_t items = num_tokens * p.num_heads;

  auto run = [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(max_seq_len));
    std::vector<float> row(static_cast<size_t>(p.head_dim));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p.num_heads;
      const int h = static_cast<int>(item % p.num_heads);
      const QueryInfo& qi = infos[static_cast<size_t>(t)];
      const int32_t* blocks = p.block_table + p.block_table_indptr[qi.seq];
      attend_one(p, p.q + t * p.q_stride + static_cast<int64_t>(h) * p.head_dim, blocks, qi.kv_pos,
                 h / group, scores.data(), row.data(),
                 p.out + t * p.out_stride + static_cast<int64_t>(h) * p.head_dim);
    }
  };
  // Cost of one item is about 2 * head_dim * (average KV length) flops.
  const int64_t item_work = 2 * static_cast<int64_t>(p.head_dim) * (max_seq_len / 2 + 1);
  if (pool == nullptr || items * item_work <= (1 << 15)) {
    run(0, items);
  } else {
    pool->parallel_for(items, run, std::max<int64_t>(1, (1 << 15) / item_work));
  }
}

}  // namespace kite::cpu
