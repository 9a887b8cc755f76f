// Paged attention against a float64 attention over dense per-sequence K/V, on batches that mix
// prefill chunks (with and without a cached prefix) and decodes, with scattered blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

struct Case {
  int num_heads;
  int num_kv_heads;
  int head_dim;
  int block_size;
  std::vector<int> seq_lens;  // KV length after the step
  std::vector<int> q_lens;    // query tokens this step (<= seq_len)
  int sliding_window = 0;     // 0: full causal
  float softcap = 0;          // 0: none (Gemma 2: scores -> cap * tanh(score / cap))
};

void run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int num_seqs = static_cast<int>(c.seq_lens.size());
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;

  // Blocks: a shuffled pool so that sequences' blocks are scattered; block 0 is never used.
  int total_blocks = 1;
  for (int s : c.seq_lens) total_blocks += (s + c.block_size - 1) / c.block_size;
  total_blocks += 3;  // spare blocks filled with garbage
  std::vector<int32_t> pool_ids(static_cast<size_t>(total_blocks - 1));
  std::iota(pool_ids.begin(), pool_ids.end(), 1);
  std::shuffle(pool_ids.begin(), pool_ids.end(), rng);

  std::vector<float> k_cache(static_cast<size_t>(total_blocks * c.block_size * kv_dim));
  std::vector<float> v_cache(k_cache.size());
  for (float& x : k_cache) x = dist(rng) * 100;  // garbage where nothing is written
  for (float& x : v_cache) x = dist(rng) * 100;

  std::vector<int32_t> query_start_loc = {0}, seq_lens, indptr = {0}, block_table;
  std::vector<std::vector<float>> dense_k(num_seqs), dense_v(num_seqs);
  size_t next_block = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const int len = c.seq_lens[s];
    const int nb = (len + c.block_size - 1) / c.block_size;
    for (int b = 0; b < nb; ++b) block_table.push_back(pool_ids[next_block++]);
    indptr.push_back(static_cast<int32_t>(block_table.size()));
    query_start_loc.push_back(query_start_loc.back() + c.q_lens[s]);
    seq_lens.push_back(len);
    dense_k[s].resize(static_cast<size_t>(len * kv_dim));
    dense_v[s].resize(dense_k[s].size());
    for (int i = 0; i < len; ++i) {
      const int64_t slot =
          static_cast<int64_t>(block_table[indptr[s] + i / c.block_size]) * c.block_size +
          i % c.block_size;
      for (int64_t d = 0; d < kv_dim; ++d) {
        const float kv = dist(rng), vv = dist(rng);
        dense_k[s][i * kv_dim + d] = k_cache[slot * kv_dim + d] = kv;
        dense_v[s][i * kv_dim + d] = v_cache[slot * kv_dim + d] = vv;
      }
    }
  }
  const int num_tokens = query_start_loc.back();
  const int64_t q_stride = q_dim + 3;  // q inside a wider row, like the fused qkv buffer
  std::vector<float> q(static_cast<size_t>(num_tokens * q_stride));
  for (float& x : q) x = dist(rng);
  std::vector<float> out(static_cast<size_t>(num_tokens * q_dim), -1.0f);

  PagedAttentionParams p;
  p.q = q.data();
  p.q_stride = q_stride;
  p.k_cache = k_cache.data();
  p.v_cache = v_cache.data();
  p.out = out.data();
  p.out_stride = q_dim;
  p.num_blocks = total_blocks;
  p.num_heads = c.num_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.head_dim = c.head_dim;
  p.block_size = c.block_size;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.sliding_window = c.sliding_window;
  p.softcap = c.softcap;
  p.num_seqs = num_seqs;
  p.query_start_loc = query_start_loc.data();
  p.seq_lens = seq_lens.data();
  p.block_table_indptr = indptr.data();
  p.block_table = block_table.data();
  ThreadPool pool(2);
  paged_attention(p, &pool);

  std::vector<float> out_inline(out.size());
  p.out = out_inline.data();
  paged_attention(p, nullptr);
  EXPECT_EQ(out, out_inline) << "thread count changed the result";

  const int group = c.num_heads / c.num_kv_heads;
  for (int s = 0; s < num_seqs; ++s) {
    for (int j = 0; j < c.q_lens[s]; ++j) {
      const int t = query_start_loc[s] + j;
      const int kv_pos = c.seq_lens[s] - c.q_lens[s] + j;
      for (int h = 0; h < c.num_heads; ++h) {
        const int kvh = h / group;
        // The window keeps the last sliding_window KV indices, this one included.
        const int first = c.sliding_window > 0 ? std::max(0, kv_pos - c.sliding_window + 1) : 0;
        std::vector<double> scores(static_cast<size_t>(kv_pos + 1), -1e300);
        double mx = -1e300;
        for (int i = first; i <= kv_pos; ++i) {
          double dot = 0;
          for (int d = 0; d < c.head_dim; ++d) {
            dot += static_cast<double>(q[t * q_stride + h * c.head_dim + d]) *
                   dense_k[s][i * kv_dim + kvh * c.head_dim + d];
          }
          scores[i] = dot / std::sqrt(static_cast<double>(c.head_dim));
          if (c.softcap > 0) scores[i] = c.softcap * std::tanh(scores[i] / c.softcap);
          mx = std::max(mx, scores[i]);
        }
        double sum = 0;
        for (double& sc : scores) sum += (sc = std::exp(sc - mx));
        for (int d = 0; d < c.head_dim; ++d) {
          double want = 0;
          for (int i = first; i <= kv_pos; ++i) {
            want += scores[i] / sum * dense_v[s][i * kv_dim + kvh * c.head_dim + d];
          }
          ASSERT_NEAR(out[t * q_dim + h * c.head_dim + d], want, 2e-6)
              << "seq " << s << " query " << j << " head " << h << " dim " << d;
        }
      }
    }
  }
}

TEST(PagedAttentionTest, DecodeOnly) { run_case({8, 4, 16, 16, {1, 17, 40}, {1, 1, 1}}, 1); }

TEST(PagedAttentionTest, PrefillFromScratch) { run_case({4, 4, 64, 16, {33}, {33}}, 2); }

TEST(PagedAttentionTest, ChunkedPrefillOverCachedPrefixMixedWithDecodes) {
  run_case({8, 2, 32, 16, {50, 5, 100, 16}, {13, 1, 1, 16}}, 3);
}

TEST(PagedAttentionTest, MultiQueryAndOddHeadDim) { run_case({6, 1, 80, 8, {21, 9}, {7, 9}}, 4); }

TEST(PagedAttentionTest, BlockSizeOneAndHeadDim128) {
  run_case({4, 2, 128, 1, {5, 12}, {5, 2}}, 5);
}

TEST(PagedAttentionTest, EmptyQueriesForSomeSequences) {
  run_case({2, 1, 16, 4, {6, 3}, {0, 3}}, 6);
}

// Mistral's sliding window: prefill chunks and decodes whose queries see more, fewer and
// exactly sliding_window keys; a window wider than every sequence is full causal attention.
TEST(PagedAttentionTest, SlidingWindow) {
  run_case({4, 1, 16, 4, {30, 7, 12, 50}, {30, 7, 5, 1}, 6}, 7);
  run_case({8, 2, 32, 16, {40, 3}, {17, 1}, 1}, 8);
  run_case({4, 2, 16, 16, {33, 20}, {33, 2}, 1000}, 9);
}

// Gemma 2's attention logit soft-cap (a small cap, so the tanh bends the scores), alone and
// with a window.
TEST(PagedAttentionTest, SoftCap) {
  run_case({4, 2, 16, 16, {25, 9}, {25, 1}, 0, 0.5f}, 10);
  run_case({4, 1, 32, 4, {30, 12}, {11, 1}, 5, 0.3f}, 11);
}

}  // namespace
}  // namespace kite::cpu
