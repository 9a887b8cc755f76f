// Tensor parallelism in the model layer: which part of a model a rank holds (TpLayout, vLLM's
// layout) and the cutting of bound checkpoint weights (model_weights.h) into a rank's shard, by
// each weight's declared ShardDim (model_graph.h). Backends take their shard from here: the CUDA
// backend uploads shard_model_weights' result; the CPU backend cuts its own weight form the same
// way (backend/cpu/tensor_parallel.h).
//
//   q/k/v (qkv_proj), gate/up (gate_up_proj)  column-parallel: a rank's heads / intermediate
//                                             rows (row views of the checkpoint, never copied)
//   o_proj, down_proj                         row-parallel: the matching input columns (copied,
//                                             F32); the bias only on rank 0; an all-reduce after
//   embedding, LM head                        vocab-parallel: ceil(vocab / tp) rows per rank (the
//                                             last rank may hold fewer); embedding rows outside a
//                                             rank's range are zero before an all-reduce; the LM
//                                             head's logits are gathered to the full vocabulary
//   norms, RoPE factors, q/k norms            replicated
// Query heads are split evenly; KV heads too when tp divides them, else (tp a multiple of the KV
// heads) each KV head is replicated on the tp / num_kv_heads ranks whose query heads read it.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"
#include "models/model_weights.h"

namespace kite {

struct TpLayout {
  int rank = 0;
  int size = 1;
  int64_t q_head_begin = 0, num_q_heads = 0;    // this rank's query heads
  int64_t kv_head_begin = 0, num_kv_heads = 0;  // this rank's KV heads
  int64_t inter_begin = 0, intermediate = 0;    // this rank's MLP rows
  int64_t vocab_begin = 0, vocab_rows = 0;      // this rank's vocabulary rows
  int64_t vocab_stride = 0;                     // ceil(vocab / size): every rank's logits width
};

// Errors (kInvalidArgument, naming the sizes): tp not dividing the query heads, the KV heads
// (unless tp is a multiple of them) or the intermediate size; a vocabulary smaller than tp;
// (kUnimplemented) mixture-of-experts models.
Result<TpLayout> make_tp_layout(const ModelConfig& c, int rank, int size);

// The config a rank's graph is built from: its head counts, intermediate size and vocab_stride
// as the vocabulary (head_dim stays the model's).
ModelConfig local_config(const ModelConfig& c, const TpLayout& t);

// What a rank keeps of one declared weight (a column-, row- or vocab-parallel WeightDecl; the
// rows of the stacked weight, i.e. across its parts): row ranges for column- and vocab-parallel
// weights (and their biases), or one column range for row-parallel ones (the bias on rank 0
// only). Both backends' cuts apply it to their weight form. kUnimplemented for a column/row
// split this layout does not know; replicated weights have no cut.
struct RowRange {
  int64_t begin = 0, count = 0;  // rows of the stacked weight
};
struct ShardCut {
  std::vector<RowRange> rows;  // non-empty: keep these rows
  int64_t col_begin = 0, cols = 0;  // else keep these columns
  bool keep_bias = true;
};
Result<ShardCut> shard_cut(const WeightDecl& d, const ModelConfig& c, const TpLayout& t);

// Cuts `weights` (bound to the full model's `graph`) down to the rank's shard, in place: row
// views for column- and vocab-parallel weights (and their biases), F32 copies of the rank's
// columns for row-parallel ones (kept in `owned`, which must outlive `weights`; the bias on rank
// 0 only). The Weights keep pointing at `graph`'s declarations; their parts have the shapes of a
// graph built from local_config. kUnimplemented for FP8 checkpoint weights and for a column/row
// split this layout does not know.
Status shard_model_weights(const ModelGraph& graph, const ModelConfig& c, const TpLayout& t,
                           ModelWeights* weights, std::deque<std::vector<float>>* owned);

}  // namespace kite
