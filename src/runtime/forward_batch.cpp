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

std::vector<int32_t> micro_batch_bounds(const ForwardBatch& batch, int max_parts) {
  const int32_t s = batch.num_seqs();
  const int32_t parts = std::max(1, std::min(max_parts, s));
  std::vector<int32_t> bounds = {0};
  const int64_t n = batch.num_tokens();
  for (int32_t i = 1; i < parts; ++i) {
    // The first sequence boundary at or past i / parts of the tokens, leaving at least one
    // sequence to each part before and after it.
    const int64_t target = n * i / parts;
    int32_t cut = bounds.back() + 1;
    while (cut < s - (parts - i) && batch.query_start_loc[static_cast<size_t>(cut)] < target) {
      ++cut;
    }
    bounds.push_back(cut);
  }
  bounds.push_back(s);
  return bounds;
}

void slice_batch(const ForwardBatch& batch, int32_t seq_begin, int32_t seq_end, ForwardBatch* part,
                 std::vector<int32_t>* logits_rows) {
  const auto sb = static_cast<size_t>(seq_begin), se = static_cast<size_t>(seq_end);
  const int32_t t0 = batch.query_start_loc[sb], t1 = batch.query_start_loc[se];
  auto tokens = [&](const std::vector<int32_t>& v, std::vector<int32_t>* out) {
    out->assign(v.begin() + t0, v.begin() + t1);
  };
  tokens(batch.token_ids, &part->token_ids);
  tokens(batch.positions, &part->positions);
  tokens(batch.slot_mapping, &part->slot_mapping);
  part->query_start_loc.clear();
  part->max_query_len = 0;
  for (size_t i = sb; i <= se; ++i) {
    part->query_start_loc.push_back(batch.query_start_loc[i] - t0);
    if (i > sb) {
      part->max_query_len =
          std::max(part->max_query_len, batch.query_start_loc[i] - batch.query_start_loc[i - 1]);
    }
  }
  part->seq_lens.assign(batch.seq_lens.begin() + seq_begin, batch.seq_lens.begin() + seq_end);
  part->max_seq_len = 0;
  for (int32_t len : part->seq_lens) part->max_seq_len = std::max(part->max_seq_len, len);
  const int32_t b0 = batch.block_table_indptr[sb], b1 = batch.block_table_indptr[se];
  part->block_table_indptr.clear();
  for (size_t i = sb; i <= se; ++i)
    part->block_table_indptr.push_back(batch.block_table_indptr[i] - b0);
  part->block_table.assign(batch.block_table.begin() + b0, batch.block_table.begin() + b1);
  part->logits_indices.clear();
  logits_rows->clear();
  for (int32_t r = 0; r < batch.num_logits(); ++r) {
    const int32_t t = batch.logits_indices[static_cast<size_t>(r)];
    if (t < t0 || t >= t1) continue;
    part->logits_indices.push_back(t - t0);
    logits_rows->push_back(r);
  }
  part->num_pooling_rows = 0;
}

}  // namespace kite
