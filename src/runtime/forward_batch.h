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

#include "kite/status.h"

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
  // The last num_pooling_rows entries of logits_indices are pooling rows: the runner keeps
  // their final-norm hidden states (ModelRunner::hidden_states_to_host) and computes no logits
  // for them, so `logits` has num_logits - num_pooling_rows rows.
  int32_t num_pooling_rows = 0;
  int32_t max_query_len = 0;
  int32_t max_seq_len = 0;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(seq_lens.size()); }
  int32_t num_logits() const { return static_cast<int32_t>(logits_indices.size()); }
  // Every sequence has exactly one query token (CUDA-graph eligible).
  bool decode_only() const { return max_query_len == 1; }
};

// What a runner can accept; validate_batch checks a batch against it.
struct BatchLimits {
  int64_t vocab_size = 0;
  int64_t num_blocks = 0;  // KV-cache blocks (block ids in [0, num_blocks))
  int block_size = 0;      // tokens per block
  // Capacities of a runner with fixed step buffers; 0 = unbounded. Beyond them: kOutOfRange.
  int64_t max_tokens = 0;       // tokens and logits rows
  int64_t max_seqs = 0;         // sequences
  int64_t max_block_table = 0;  // block_table entries
  // Runners that plan with max_query_len / max_seq_len need them exact (>= for max_seq_len),
  // at least one sequence and at least one logits row.
  bool planned = false;
};

// The one check of a batch before it reaches a backend: array sizes, offsets that run from 0 to
// the totals, every sequence with at least one query token and enough blocks for its KV length,
// token ids in the vocabulary, non-negative positions, slots and block ids inside the cache,
// logits rows that are token rows. kInvalidArgument naming the first problem ("forward batch:
// ..."), kOutOfRange beyond the capacities.
Status validate_batch(const ForwardBatch& batch, const BatchLimits& limits);

// Pipeline micro-batches (docs/parallel.md): the sequence boundaries that cut `batch` into
// min(max_parts, num_seqs) parts (at least 1) of whole, contiguous sequences: part i is sequences
// [bounds[i], bounds[i + 1]). Cut i is the first boundary at or past i / parts of the tokens,
// moved so that every part keeps at least one sequence. Depends on the batch only, so every
// pipeline stage computes the same split.
std::vector<int32_t> micro_batch_bounds(const ForwardBatch& batch, int max_parts);
// Sequences [seq_begin, seq_end) of a valid `batch` as a batch of their own (token rows, block
// table and logits rows rebased; max_query_len / max_seq_len those of the part), valid whenever
// `batch` is. logits_rows[j] = the row of `batch`'s logits that the part's logits row j is.
// REQUIRES: batch.num_pooling_rows == 0 (pooling rows are not split).
void slice_batch(const ForwardBatch& batch, int32_t seq_begin, int32_t seq_end, ForwardBatch* part,
                 std::vector<int32_t>* logits_rows);

}  // namespace kite
