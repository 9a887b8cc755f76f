// ModelGraph: a model definition as data — the weights a family declares and its forward pass
// written once as a list of ops over named activations. Every backend runs this one list (the
// CPU backend op by op; the CUDA backend after fuse_ops(), models/fusion.h), so a layer loop exists
// in exactly one place: the family's definition file (models/llama.cpp for the Llama-like
// families).
//
// Shapes: a matrix weight is [rows, cols] = [out_features, in_features] (Hugging Face's
// nn.Linear layout); activations are [num_rows, width] row-major, where num_rows is the step's
// token count (RowSpace::kTokens) or its number of logits rows (RowSpace::kLogits).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/config.h"
#include "core/dtype.h"

namespace kite {

using WeightId = int32_t;  // index into ModelGraph::weights; kNoWeight = none
using ValueId = int32_t;   // index into ModelGraph::values; kNoValue = none
constexpr WeightId kNoWeight = -1;
constexpr ValueId kNoValue = -1;

// How a tensor-parallel rank takes its share of a weight (vLLM's linear-layer kinds).
enum class ShardDim : uint8_t {
  kReplicated,  // every rank holds all of it (norm weights)
  kColumn,      // split along rows (out_features): q/k/v, gate/up; biases split with them
  kRow,         // split along cols (in_features): o_proj, down_proj; the bias stays whole
  kVocab,       // embedding and LM head: vocabulary rows split across ranks
};
std::string_view shard_dim_name(ShardDim d);

enum class WeightKind : uint8_t {
  kEmbedding,  // [vocab, hidden] table read by row
  kLinear,     // [out, in] matrix of a linear layer
  kVector,     // [n] norm weight or RoPE frequency factors
};

// One tensor of the checkpoint.
struct TensorDecl {
  std::string name;       // Hugging Face name: "model.layers.0.self_attn.q_proj.weight"
  std::string gguf_name;  // llama.cpp's name ("blk.0.attn_q.weight"); empty = not in GGUFs
  std::vector<int64_t> shape;
  // llama.cpp permutes the rows of these heads for its interleaved RoPE in llama-architecture
  // GGUFs: > 0 = the number of heads to un-permute back to rotate-half order.
  int64_t gguf_permuted_heads = 0;
  // llama.cpp stacks MoE experts into one [num_experts, rows, cols] tensor (ffn_gate_exps,
  // ffn_up_exps, ffn_down_exps): >= 0 = this tensor is expert `gguf_expert`'s slice of it.
  int32_t gguf_expert = -1;
};

enum class BiasMode : uint8_t { kNone, kRequired, kIfPresent };

// Scales of a quantized linear weight, from config.json's quantization_config.
struct QuantDecl {
  QuantScheme scheme = QuantScheme::kNone;
  DType weight_dtype = DType::kBF16;  // what the checkpoint stores (F8E4M3 when quantized)
  // Per part: the weight-scale tensor ([1], [rows, 1] or [ceil(rows/b0), ceil(cols/b1)]) and the
  // static input scale ([1]; absent = activation scales computed per token at run time).
  std::vector<TensorDecl> weight_scales;
  std::vector<TensorDecl> input_scales;
  int64_t block_rows = 0, block_cols = 0;  // QuantScheme::kFp8Block
};

// A weight as the model uses it: one logical tensor, stacked along its rows from the checkpoint
// tensors in `parts` (fused q/k/v -> qkv_proj, gate/up -> gate_up_proj, the way vLLM's
// QKVParallelLinear stacks them) with an optional bias per part.
struct WeightDecl {
  std::string name;  // logical: "model.layers.0.self_attn.qkv_proj", "model.norm"
  WeightKind kind = WeightKind::kLinear;
  int64_t rows = 0;  // out_features / vocab / vector length
  int64_t cols = 0;  // in_features / hidden; 1 for vectors
  std::vector<TensorDecl> parts;
  std::vector<TensorDecl> bias;  // one per part when bias_mode != kNone
  BiasMode bias_mode = BiasMode::kNone;
  ShardDim shard = ShardDim::kReplicated;
  QuantDecl quant;
  bool optional = false;  // absent from the checkpoint = not used (rope_freqs.weight)
  // Tied embeddings: when the checkpoint lacks parts[0], this tensor (and vice versa).
  std::string tied_to;
  // kVector: added to every element when a backend loads it. Gemma's RMSNorm multiplies by
  // (1 + w): its checkpoints store w, and the +1 is folded in here (1) so that every norm op
  // stays rms_norm(x) * weight.
  float vector_offset = 0.f;
  // MoE expert weights: the expert they belong to (>= 0), so that expert parallelism can give
  // whole experts to ranks; within an expert `shard` says how tensor parallelism splits it
  // (gate/up by column, down by row: vLLM's FusedMoE). -1 = not an expert's weight.
  int32_t expert = -1;
};

// One rotary embedding (its inverse frequencies: backend/cpu/ops.h rope_inv_freq). A family
// with several (Gemma 3: local and global layers) declares each; kRopeKvWrite names one.
struct RopeDecl {
  double theta = 10000.0;
  RopeScaling scaling;
  int64_t rotary_dim = 0;  // dims rotated at the start of each head (<= head_dim, even)
};

// A sparse mixture-of-experts block (Qwen3-MoE, Mixtral). Per token of its input x [n, hidden]:
//   p = softmax(x @ router^T)                       [num_experts], in F32
//   top = the top_k experts by p (ties: the lower expert index first)
//   w_j = p[top_j] (/ sum over top of p when renormalize)
//   out = sum_j w_j * (silu(x @ gate_e^T) * (x @ up_e^T)) @ down_e^T,  e = top_j
// summed in the order of j (descending probability), so a token's output does not depend on
// the other tokens of the step. No shared experts (Qwen2-MoE's): not declared by any family yet.
struct MoeDecl {
  WeightId router = kNoWeight;    // [num_experts, hidden] ("mlp.gate", "block_sparse_moe.gate")
  std::vector<WeightId> gate_up;  // per expert: [2 * intermediate, hidden] = [gate; up]
  std::vector<WeightId> down;     // per expert: [hidden, intermediate]
  int top_k = 0;
  bool renormalize = false;  // Qwen3-MoE's norm_topk_prob; always for Mixtral
  int64_t intermediate = 0;  // per expert
};

enum class RowSpace : uint8_t { kTokens, kLogits };

// An activation buffer, [num_rows, width]; ops may write it many times (each layer reuses it).
struct ValueDecl {
  std::string name;
  int64_t width = 0;
  RowSpace rows = RowSpace::kTokens;
  bool f32 = false;  // always F32 (logits); else the backend's compute dtype
};

enum class OpKind : uint8_t {
  // out[t] = weight[token_ids[t]]
  kEmbedding,
  // [residual += delta;] out = rms_norm(residual) * weight. With gather_logits the rows are
  // residual[logits_indices[r]] (+ delta[...]) and the residual is not written.
  kRmsNorm,
  // out = in @ weight^T (+ bias)
  kLinear,
  // On the [q | k | v] rows of `in`: [per-head RMSNorm of q and k (weight, weight2);] RoPE of q
  // and k at the step's positions; K and V written to KV-cache layer `layer` at slot_mapping.
  kRopeKvWrite,
  // out = causal paged attention of the q heads of `in` over KV-cache layer `layer`
  kAttention,
  // out[:, i] = silu(in[:, i]) * in[:, width(out) + i]   (in = [gate | up])
  kSiluMul,
  // out[:, i] = gelu_tanh(in[:, i]) * in[:, width(out) + i]   (Gemma's GeGLU)
  kGeluTanhMul,
  // out = softcap * tanh(in / softcap)   (Gemma 2's final logit soft-capping; may be in place)
  kSoftcap,
  // out = the mixture-of-experts block ModelGraph::moes[moe] of `in` (MoeDecl)
  kMoe,
};
std::string_view op_kind_name(OpKind k);

// What a fused linear does before / after its matrix product (fuse_decode_ops()).
enum class Epilogue : uint8_t {
  kNone,
  kResidualAdd,  // out = residual + in @ W^T, written in place of the residual
  kRopeKv,       // out = [q | k | v] with RoPE applied; K/V written to the cache (kRopeKvWrite)
  kSiluMul,      // W = [gate; up]: out = silu(gate) * up (kSiluMul)
};

struct Op {
  OpKind kind = OpKind::kLinear;
  ValueId in = kNoValue;     // kRmsNorm: the residual
  ValueId delta = kNoValue;  // kRmsNorm: added into the residual first
  ValueId out = kNoValue;
  WeightId weight = kNoWeight;   // table, matrix, norm weight, or q_norm
  WeightId weight2 = kNoWeight;  // kRopeKvWrite: k_norm
  int layer = -1;                // KV-cache layer (kRopeKvWrite, kAttention)
  float eps = 0.f;               // kRmsNorm, kRopeKvWrite's q/k norms, a prologue norm
  bool gather_logits = false;    // kRmsNorm: rows = logits_indices
  // kAttention: softmax scale; > 0 window = attend to the last `sliding_window` positions only.
  // kEmbedding: the rows are multiplied by `scale` (Gemma: sqrt(hidden)); 1 = plain.
  float scale = 0.f;
  int sliding_window = 0;
  // kAttention: scores (after `scale`) become softcap * tanh(score / softcap) before the
  // softmax (Gemma 2); kSoftcap: the cap. 0 = none.
  float softcap = 0.f;
  int rope = 0;  // kRopeKvWrite: index into ModelGraph::ropes
  int moe = -1;  // kMoe: index into ModelGraph::moes

  // Set by fuse_ops() (models/fusion.h) on kLinear only.
  WeightId prologue_norm = kNoWeight;  // RMS-normalize `in` with this weight (eps) first
  Epilogue epilogue = Epilogue::kNone;
  // kSiluMul epilogue: the [gate | up] value the unfused product would have gone to, for a
  // backend that cannot fuse at this step's size.
  ValueId scratch = kNoValue;
};

struct ModelGraph {
  std::string family;  // "llama" (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM2, Phi-3, Qwen3-MoE,
                       // Mixtral), "gemma"
  std::vector<WeightDecl> weights;
  std::vector<ValueDecl> values;
  std::vector<Op> ops;
  int num_kv_layers = 0;            // KV-cache layers the ops address (0 .. n-1)
  ValueId logits = kNoValue;        // the F32 [num_logits, vocab] output
  WeightId rope_freqs = kNoWeight;  // optional RoPE frequency factors (GGUF rope_freqs.weight)
                                    // of ropes[0]
  std::vector<RopeDecl> ropes;      // at least one
  std::vector<MoeDecl> moes;        // one per sparse layer (kMoe ops)

  const WeightDecl& weight(WeightId id) const { return weights[static_cast<size_t>(id)]; }
  const ValueDecl& value(ValueId id) const { return values[static_cast<size_t>(id)]; }
  // Every checkpoint tensor the definition reads: parts, biases, scales.
  std::vector<const TensorDecl*> tensors() const;
};

// Checks the graph's internal consistency (ids in range, widths of each op's operands agree,
// fused fields only on linears). A definition that fails this is a bug: kInternal.
Status check_graph(const ModelGraph& g);

// Ops over values: one line per op ("linear qkv <- hidden [model.layers.0.self_attn.qkv_proj]"),
// for tests and `--log-level debug`.
std::string format_ops(const ModelGraph& g, const std::vector<Op>& ops);

}  // namespace kite
