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
