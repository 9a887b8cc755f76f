// Host half of the FlashInfer prefill path: the persistent CTAs' work lists (plain C++, built
// with or without FlashInfer so that it is tested everywhere).
#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/kernel_support.h"
#include "core/check.h"

namespace kite::cuda {
namespace {

// Query rows of one CTA tile of FlashInfer's sm90 paged prefill (its kernel traits: 192 for
// head_dim 64, 128 otherwise).
int cta_tile_q(int head_dim) { return head_dim == 64 ? 192 : 128; }

}  // namespace

bool flashinfer_prefill_supports(int head_dim) { return FlashInferHeadDims::contains(head_dim); }

size_t flashinfer_plan_capacity(int max_tokens, int max_seqs, int num_q_heads, int head_dim,
                                int num_sms) {
  // Tiles: at most ceil(tokens / tile) plus one partial tile per sequence.
  const size_t tiles = static_cast<size_t>(max_tokens) / cta_tile_q(head_dim) + max_seqs;
  return static_cast<size_t>(num_sms) + 1 + 7 * tiles * num_q_heads;
}

FlashInferPlan plan_flashinfer_prefill(const int32_t* query_start_loc, const int32_t* seq_lens,
                                       const int32_t* block_table_indptr,
                                       const std::vector<int32_t>& seqs, int num_q_heads,
                                       int head_dim, int num_sms) {
  struct Tile {
    int32_t seq, tile, qo_len, kv_len;
    int64_t cost;  // keys this tile's rows reach (causal), a proxy for its time
  };
  const int tq = cta_tile_q(head_dim);
  std::vector<Tile> tiles;
  for (const int32_t s : seqs) {
    const int qlen = query_start_loc[s + 1] - query_start_loc[s];
    const int kv_len = seq_lens[s];
    KITE_CHECK(qlen >= 0 && kv_len >= qlen) << "flashinfer plan: seq " << s;
    for (int t = 0; t * tq < qlen; ++t) {
      const int64_t kv_end = kv_len - qlen + std::min(qlen, (t + 1) * tq);
      tiles.push_back({s, t, qlen, kv_len, kv_end + 64});  // + fixed cost per tile
    }
  }
  std::stable_sort(tiles.begin(), tiles.end(),
                   [](const Tile& a, const Tile& b) { return a.cost > b.cost; });

  // Longest first onto the least loaded CTA (LPT); every q head of a tile is its own item.
  using Load = std::pair<int64_t, int>;  // (accumulated cost, cta)
  std::priority_queue<Load, std::vector<Load>, std::greater<Load>> heap;
  for (int c = 0; c < num_sms; ++c) heap.push({0, c});
  struct Item {
    int32_t tile_index, head;
  };
  std::vector<std::vector<Item>> per_cta(num_sms);
  for (int32_t i = 0; i < static_cast<int32_t>(tiles.size()); ++i) {
    for (int h = 0; h < num_q_heads; ++h) {
      auto [load, cta] = heap.top();
      heap.pop();
      per_cta[cta].push_back({i, h});
      heap.push({load + tiles[i].cost, cta});
    }
  }

  FlashInferPlan plan;
  plan.num_ctas = num_sms;
  plan.num_works = static_cast<int>(tiles.size()) * num_q_heads;
  const size_t n = plan.num_works;
  plan.work.assign(num_sms + 1 + 7 * n, 0);
  int32_t* indptr = plan.work.data();
  int32_t* qo_tile = indptr + num_sms + 1;
  int32_t* qo_indptr = qo_tile + n;
  int32_t* kv_indptr = qo_indptr + n;
  int32_t* qo_len = kv_indptr + n;
  int32_t* kv_len = qo_len + n;
  int32_t* head = kv_len + n;
  int32_t* batch = head + n;
  size_t w = 0;
  for (int c = 0; c < num_sms; ++c) {
    for (const Item& it : per_cta[c]) {
      const Tile& t = tiles[it.tile_index];
      qo_tile[w] = t.tile;
      qo_indptr[w] = query_start_loc[t.seq];
      kv_indptr[w] = block_table_indptr[t.seq];
      qo_len[w] = t.qo_len;
      kv_len[w] = t.kv_len;
      head[w] = it.head;
      batch[w] = t.seq;
      ++w;
    }
    indptr[c + 1] = static_cast<int32_t>(w);
  }
  return plan;
}

}  // namespace kite::cuda
