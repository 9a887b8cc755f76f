// The int32 arrays of one step, packed into one host buffer so that a single copy moves them to
// the device, at offsets that depend only on the capacities (a CUDA graph captured for a batch
// size reads them at the same addresses on every replay).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cuda/attention.h"
#include "kite/status.h"
#include "runtime/forward_batch.h"

namespace kite::cuda {

struct StepCapacity {
  int tokens = 0;
  int seqs = 0;
  int logits = 0;  // logits rows of one step's buffers (a step may ask for up to `tokens`)
  int tiles = 0;
  int block_table = 0;
};

// Element offsets (int32 units) of each array; block_table comes last, so its used length
// decides how much is copied.
struct StepLayout {
  size_t token_ids = 0, positions = 0, slot_mapping = 0, query_start_loc = 0, seq_lens = 0,
         block_table_indptr = 0, logits_indices = 0, decode_seqs = 0, tile_seq = 0,
         tile_q_start = 0, block_table = 0;
  size_t total(int block_table_len) const { return block_table + block_table_len; }
};

StepLayout make_step_layout(const StepCapacity& cap);

// Writes the batch (and the attention plan's work lists) at `layout` into `dst` (int32 array of
// at least layout.total(block_table.size())). Sequences num_seqs .. pad_seqs-1 (CUDA-graph
// padding) get one query token of id 0 at position 0, slot -1, seq_len 0 and no blocks; their
// logits rows follow the batch's.
void pack_step(const ForwardBatch& b, const AttentionPlan& plan, const StepLayout& layout,
               int pad_seqs, int32_t* dst);

}  // namespace kite::cuda
