#include "runtime/forward_batch.h"

#include <fmt/format.h>

#include <algorithm>

namespace kite {

Status validate_batch(const ForwardBatch& b, const BatchLimits& lim) {
  auto bad = [](std::string m) { return invalid_argument("forward batch: " + std::move(m)); };
  auto over = [](std::string m) { return out_of_range("forward batch: " + std::move(m)); };
  const int32_t n = b.num_tokens();
  const int32_t s = b.num_seqs();
  if (lim.planned && (n == 0 || s == 0)) return bad("empty batch");
  if (b.positions.size() != static_cast<size_t>(n) ||
      b.slot_mapping.size() != static_cast<size_t>(n)) {
    return bad("positions and slot_mapping must have one entry per token");
  }
  if (b.query_start_loc.size() != static_cast<size_t>(s) + 1 || b.query_start_loc[0] != 0 ||
      b.query_start_loc[static_cast<size_t>(s)] != n) {
    return bad("query_start_loc must have num_seqs + 1 entries from 0 to num_tokens");
  }
  if (b.block_table_indptr.size() != static_cast<size_t>(s) + 1 || b.block_table_indptr[0] != 0 ||
      b.block_table_indptr[static_cast<size_t>(s)] != static_cast<int32_t>(b.block_table.size())) {
    return bad("block_table_indptr must have num_seqs + 1 entries from 0 to the table size");
  }
  if (lim.max_tokens > 0 && n > lim.max_tokens) {
    return over(
        fmt::format("{} tokens exceed the runner's max_num_batched_tokens {}", n, lim.max_tokens));
  }
  if (lim.max_seqs > 0 && s > lim.max_seqs) {
    return over(fmt::format("{} sequences exceed max_num_seqs {}", s, lim.max_seqs));
  }
  if (lim.max_block_table > 0 && static_cast<int64_t>(b.block_table.size()) > lim.max_block_table) {
    return over(fmt::format("block table of {} entries exceeds the runner's capacity {}",
                            b.block_table.size(), lim.max_block_table));
  }
  const int64_t num_slots = lim.num_blocks * lim.block_size;
  for (int32_t t = 0; t < n; ++t) {
    if (b.token_ids[t] < 0 || b.token_ids[t] >= lim.vocab_size) {
      return bad(fmt::format("token id {} is outside the vocabulary [0, {})", b.token_ids[t],
                             lim.vocab_size));
    }
    if (b.positions[t] < 0) return bad(fmt::format("negative position {}", b.positions[t]));
    if (b.slot_mapping[t] < -1 || b.slot_mapping[t] >= num_slots) {
      return bad(
          fmt::format("slot {} is outside the cache ({} slots)", b.slot_mapping[t], num_slots));
    }
  }
  int32_t max_q = 0, max_kv = 0;
  for (int32_t i = 0; i < s; ++i) {
    const int32_t q_len = b.query_start_loc[i + 1] - b.query_start_loc[i];
    const int32_t seq_len = b.seq_lens[i];
    if (q_len < 1) return bad(fmt::format("sequence {} has no query tokens", i));
    if (seq_len < q_len) {
      return bad(
          fmt::format("sequence {}: {} query tokens for a KV length of {}", i, q_len, seq_len));
    }
    const int32_t blocks = b.block_table_indptr[i + 1] - b.block_table_indptr[i];
    if (blocks < 0 || static_cast<int64_t>(blocks) * lim.block_size < seq_len) {
      return bad(fmt::format("sequence {}: {} blocks cannot hold {} tokens", i, blocks, seq_len));
    }
    max_q = std::max(max_q, q_len);
    max_kv = std::max(max_kv, seq_len);
  }
  for (int32_t id : b.block_table) {
    if (id < 0 || id >= lim.num_blocks) {
      return bad(fmt::format("block id {} is outside the cache ({} blocks)", id, lim.num_blocks));
    }
  }
  if (lim.planned && (b.max_query_len != max_q || b.max_seq_len < max_kv)) {
    return bad("max_query_len/max_seq_len do not match the sequences");
  }
  if (lim.planned && b.logits_indices.empty()) return bad("no logits rows requested");
  if (lim.max_tokens > 0 && b.num_logits() > lim.max_tokens) {
    return over(fmt::format("{} logits rows exceed max_num_batched_tokens {}", b.num_logits(),
                            lim.max_tokens));
  }
  if (b.num_pooling_rows < 0 || b.num_pooling_rows > b.num_logits()) {
    return bad(fmt::format("{} pooling rows for {} logits rows", b.num_pooling_rows,
                           b.num_logits()));
  }
  for (int32_t idx : b.logits_indices) {
    if (idx < 0 || idx >= n) return bad(fmt::format("logits index {} is not a token row", idx));
  }
  return ok_status();
}

}  // namespace kite
