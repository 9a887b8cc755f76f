// ForwardBatch: one engine step flattened for the model (all host memory, int32).
//
// The step mixes prefill chunks and decodes of many sequences: sequence i contributes the
// query tokens [query_start_loc[i], query_start_loc[i+1]) at positions
// seq_lens[i] - num_query_tokens(i) ... seq_lens[i] - 1. Their K/V are written to
// slot_mapping[token] (block_id * block_size + offset) before attention, and attention for
// sequence i reads the first seq_lens[i] cached tokens through its block table (causal within
// the chunk).
#pragma once

#include <cstdint>
#include <vector>

namespace kite {

struct ForwardBatch {
  std::vector<int32_t> token_ids;           // [num_tokens]
  std::vector<int32_t> positions;           // [num_tokens]
  std::vector<int32_t> query_start_loc;     // [num_seqs + 1], query_start_loc[0] = 0
  std::vector<int32_t> seq_lens;            // [num_seqs] KV length after this step
  std::vector<int32_t> slot_mapping;        // [num_tokens]; -1 = do not write (padding)
  std::vector<int32_t> block_table_indptr;  // [num_seqs + 1] CSR offsets into block_table
  std::vector<int32_t> block_table;         // [block_table_indptr[num_seqs]] block ids
  std::vector<int32_t> logits_indices;      // [num_logits] token rows that need logits
  int32_t max_query_len = 0;
  int32_t max_seq_len = 0;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(seq_lens.size()); }
  int32_t num_logits() const { return static_cast<int32_t>(logits_indices.size()); }
  // Every sequence has exactly one query token (CUDA-graph eligible).
  bool decode_only() const { return max_query_len == 1; }
};

}  // namespace kite
