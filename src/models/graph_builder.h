// GraphBuilder: what a family definition writes its weights and forward with. It spells the
// declarations the same way for every family (tensor names, shard dims, quantization scales
// from the config's quantization_config), so a definition file states only the family's shape.
#pragma once

#include <string>
#include <vector>

#include "checkpoint/config.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite {

class GraphBuilder {
 public:
  GraphBuilder(const ModelConfig& config, std::string family);

  // One checkpoint tensor of a linear layer: module name ("model.layers.0.self_attn.q_proj")
  // and its rows; llama.cpp's module name and Q/K head permutation for GGUF files.
  struct Part {
    std::string module;
    int64_t rows = 0;
    std::string gguf_module;  // "blk.0.attn_q"; empty = not in GGUF files
    int64_t gguf_permuted_heads = 0;
    int32_t gguf_expert = -1;  // the slice of a stacked GGUF expert tensor (TensorDecl)
  };

  // A linear layer [sum of part rows, cols] stacked from `parts`, with its bias mode. Quantized
  // (scales declared) when the config's quantization_config covers every part; an error when it
  // covers only some of them (a fused layer has one format). `quantizable` false keeps it in
  // the checkpoint's float dtype whatever the config says (MoE routers, as vLLM).
  Result<WeightId> linear(std::string name, const std::vector<Part>& parts, int64_t cols,
                          ShardDim shard, BiasMode bias = BiasMode::kNone, bool quantizable = true);
  // The embedding table [vocab, hidden] (`tensor` is the full name, e.g. ...embed_tokens.weight).
  WeightId embedding(std::string tensor, std::string gguf_tensor, int64_t rows, int64_t cols);
  // The LM head [vocab, hidden]; with tied embeddings it falls back to the embedding's tensor.
  Result<WeightId> lm_head(std::string tensor, std::string gguf_tensor, WeightId embedding);
  // A vector [n] (norm weight); optional ones may be absent from the checkpoint. `offset` is
  // added to it at load (WeightDecl::vector_offset).
  WeightId vector(std::string tensor, std::string gguf_tensor, int64_t n, bool optional = false,
                  float offset = 0.f);
  // A rotary embedding for rope_kv_write; returns its index.
  int rope(RopeDecl r);
  // A mixture-of-experts block whose weights are declared (router and experts through linear());
  // marks each expert's weights with its expert index (WeightDecl::expert). Returns its index.
  int moe(MoeDecl m);

  ValueId value(std::string name, int64_t width, RowSpace rows = RowSpace::kTokens,
                bool f32 = false);

  // The ops (see OpKind). `eps` for norms is the config's rms_norm_eps.
  void embed(WeightId table, ValueId out, float scale = 1.f);
  void rms_norm(ValueId residual, ValueId delta, WeightId weight, ValueId out);
  void final_norm(ValueId residual, ValueId delta, WeightId weight, ValueId out_logit_rows);
  void linear_op(ValueId in, WeightId weight, ValueId out);
  void rope_kv_write(ValueId qkv, int layer, WeightId q_norm, WeightId k_norm, int rope_index = 0);
  void attention(ValueId qkv, int layer, ValueId out, float scale, int sliding_window,
                 float logit_softcap = 0.f);
  void silu_mul(ValueId gate_up, ValueId out);
  void gelu_tanh_mul(ValueId gate_up, ValueId out);
  void softcap(ValueId in, ValueId out, float cap);
  void moe_op(ValueId in, int moe_index, ValueId out);

  void set_num_kv_layers(int n) { graph_.num_kv_layers = n; }
  void set_logits(ValueId v) { graph_.logits = v; }
  void set_rope_freqs(WeightId w) { graph_.rope_freqs = w; }

  // The finished graph, checked (check_graph).
  Result<ModelGraph> finish();

 private:
  WeightId add(WeightDecl w);
  // Appends an op of `kind` reading `in` and writing `out`; the caller sets the rest.
  Op& push_op(OpKind kind, ValueId in, ValueId out);

  const ModelConfig& config_;
  ModelGraph graph_;
};

}  // namespace kite
