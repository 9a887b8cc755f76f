#include "backend/cuda/step_inputs.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace kite::cuda {

StepLayout make_step_layout(const StepCapacity& c) {
  StepLayout l;
  size_t at = 0;
  auto take = [&](size_t n) {
    const size_t o = at;
    at += (n + 3) & ~size_t{3};  // 16-byte aligned arrays
    return o;
  };
  l.token_ids = take(c.tokens);
  l.positions = take(c.tokens);
  l.slot_mapping = take(c.tokens);
  l.query_start_loc = take(c.seqs + 1);
  l.seq_lens = take(c.seqs);
  l.block_table_indptr = take(c.seqs + 1);
  l.logits_indices = take(c.logits);
  l.decode_seqs = take(c.seqs);
  l.tile_seq = take(c.tiles);
  l.tile_q_start = take(c.tiles);
  l.block_table = take(0);
  return l;
}

Status validate_batch(const ForwardBatch& b, int64_t vocab, int64_t num_blocks, int block_size,
                      const StepCapacity& cap) {
  const size_t nt = b.token_ids.size();
  const size_t ns = b.seq_lens.size();
  auto bad = [](const std::string& m) { return invalid_argument("forward batch: " + m); };
  if (nt == 0 || ns == 0) return bad("empty batch");
  if (b.positions.size() != nt || b.slot_mapping.size() != nt) {
    return bad("positions/slot_mapping must have num_tokens entries");
  }
  if (b.query_start_loc.size() != ns + 1 || b.block_table_indptr.size() != ns + 1) {
    return bad("query_start_loc/block_table_indptr must have num_seqs + 1 entries");
  }
  if (static_cast<int64_t>(nt) > cap.tokens) {
    return out_of_range("forward batch: " + std::to_string(nt) + " tokens exceed the runner's " +
                        "max_num_batched_tokens " + std::to_string(cap.tokens));
  }
  if (static_cast<int64_t>(ns) > cap.seqs) {
    return out_of_range("forward batch: " + std::to_string(ns) + " sequences exceed max_num_seqs " +
                        std::to_string(cap.seqs));
  }
  if (static_cast<int64_t>(b.block_table.size()) > cap.block_table) {
    return out_of_range("forward batch: block table of " + std::to_string(b.block_table.size()) +
                        " entries exceeds the runner's capacity " +
                        std::to_string(cap.block_table));
  }
  if (b.query_start_loc[0] != 0 || b.query_start_loc[ns] != static_cast<int32_t>(nt)) {
    return bad("query_start_loc must run from 0 to num_tokens");
  }
  if (b.block_table_indptr[0] != 0 ||
      b.block_table_indptr[ns] != static_cast<int32_t>(b.block_table.size())) {
    return bad("block_table_indptr must span block_table");
  }
  int max_q = 0, max_kv = 0;
  for (size_t s = 0; s < ns; ++s) {
    const int q = b.query_start_loc[s + 1] - b.query_start_loc[s];
    const int nb = b.block_table_indptr[s + 1] - b.block_table_indptr[s];
    if (q < 1) return bad("sequence " + std::to_string(s) + " has no query tokens");
    if (nb < 0) return bad("block_table_indptr decreases at sequence " + std::to_string(s));
    if (b.seq_lens[s] < q) return bad("seq_lens[" + std::to_string(s) + "] < its query length");
    if (static_cast<int64_t>(nb) * block_size < b.seq_lens[s]) {
      return bad("sequence " + std::to_string(s) + " has too few blocks for seq_len " +
                 std::to_string(b.seq_lens[s]));
    }
    max_q = std::max(max_q, q);
    max_kv = std::max(max_kv, b.seq_lens[s]);
    // Query token j sits at position seq_len - q + j.
    for (int j = 0; j < q; ++j) {
      const int t = b.query_start_loc[s] + j;
      if (b.positions[t] < 0) return bad("negative position at token " + std::to_string(t));
    }
  }
  if (b.max_query_len != max_q || b.max_seq_len < max_kv) {
    return bad("max_query_len/max_seq_len do not match the sequences");
  }
  for (size_t t = 0; t < nt; ++t) {
    if (b.token_ids[t] < 0 || b.token_ids[t] >= vocab) {
      return bad("token id " + std::to_string(b.token_ids[t]) + " at " + std::to_string(t) +
                 " outside [0, " + std::to_string(vocab) + ")");
    }
    if (b.slot_mapping[t] < -1 ||
        b.slot_mapping[t] >= static_cast<int64_t>(num_blocks) * block_size) {
      return bad("slot " + std::to_string(b.slot_mapping[t]) + " out of range");
    }
  }
  for (int32_t id : b.block_table) {
    if (id < 0 || id >= num_blocks) return bad("block id " + std::to_string(id) + " out of range");
  }
  if (b.logits_indices.empty()) return bad("no logits rows requested");
  if (static_cast<int64_t>(b.logits_indices.size()) > cap.tokens) {
    return out_of_range("forward batch: " + std::to_string(b.logits_indices.size()) +
                        " logits rows exceed max_num_batched_tokens " + std::to_string(cap.tokens));
  }
  for (int32_t i : b.logits_indices) {
    if (i < 0 || i >= static_cast<int32_t>(nt)) return bad("logits index out of range");
  }
  return ok_status();
}

void pack_step(const ForwardBatch& b, const AttentionPlan& plan, const StepLayout& l, int pad_seqs,
               int32_t* dst) {
  const int nt = b.num_tokens(), ns = b.num_seqs(), nl = b.num_logits();
  const int extra = std::max(0, pad_seqs - ns);
  auto put = [&](size_t off, const std::vector<int32_t>& v) {
    if (!v.empty()) std::memcpy(dst + off, v.data(), v.size() * sizeof(int32_t));
  };
  put(l.token_ids, b.token_ids);
  put(l.positions, b.positions);
  put(l.slot_mapping, b.slot_mapping);
  put(l.query_start_loc, b.query_start_loc);
  put(l.seq_lens, b.seq_lens);
  put(l.block_table_indptr, b.block_table_indptr);
  put(l.logits_indices, b.logits_indices);
  put(l.decode_seqs, plan.decode_seqs);
  put(l.tile_seq, plan.prefill_tile_seq);
  put(l.tile_q_start, plan.prefill_tile_q_start);
  put(l.block_table, b.block_table);
  const int32_t bt_end = b.block_table_indptr[ns];
  for (int i = 0; i < extra; ++i) {
    dst[l.token_ids + nt + i] = 0;
    dst[l.positions + nt + i] = 0;
    dst[l.slot_mapping + nt + i] = -1;
    dst[l.query_start_loc + ns + 1 + i] = nt + i + 1;
    dst[l.seq_lens + ns + i] = 0;
    dst[l.block_table_indptr + ns + 1 + i] = bt_end;
    dst[l.logits_indices + nl + i] = nt + i;
  }
}

}  // namespace kite::cuda
