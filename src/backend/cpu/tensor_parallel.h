// Tensor parallelism on the CPU backend: which part of the model a rank holds (TpLayout) and the
// cutting of bound weights into a rank's shard (vLLM's layout).
//
//   q/k/v (qkv_proj), gate/up (gate_up_proj)  column-parallel: a rank's heads / intermediate
//                                             rows; row views of the checkpoint, never copied
//   o_proj, down_proj                         row-parallel: the matching input columns, copied to
//                                             F32; the bias only on rank 0; all-reduce after
//   embedding, LM head                        vocab-parallel: ceil(vocab / tp) rows per rank (the
//                                             last rank may hold fewer); embedding rows outside a
//                                             rank's range are zero before an all-reduce; the LM
//                                             head's logits are all-gathered to the full vocabulary
//   norms, RoPE factors, q/k norms            replicated
// Query heads are split evenly; KV heads too when tp divides them, else (tp a multiple of the KV
// heads) each KV head is replicated on the tp / num_kv_heads ranks whose query heads read it.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_weights.h"
#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"
#include "models/tensor_parallel.h"

namespace kite::cpu {

// The layout and the local config live in the model layer (models/tensor_parallel.h), shared
// with the CUDA backend.
using kite::local_config;
using kite::make_tp_layout;
using kite::TpLayout;

// Cuts `weights` (parallel to the full model's `graph.weights`) down to the rank's shard.
// kUnimplemented for a column/row-parallel weight this layout does not know.
Status shard_weights(const ModelGraph& graph, const ModelConfig& c, const TpLayout& t,
                     std::vector<CpuWeight>* weights);

}  // namespace kite::cpu
