// The Llama-like decoder, written once for every family that shares it: Llama 2/3/3.1/3.2,
// SmolLM2 and TinyStories (plain), Mistral (sliding-window attention), Qwen2/2.5 (q/k/v
// biases), Qwen3 (per-head RMSNorm of q and k), Phi-3/3.5/4 (q/k/v and gate/up fused in the
// checkpoint; partial rotary). Per-family switches come from ModelConfig.
//
// One layer, for the step's n tokens (residual stream `residual`, sub-layer output `delta`):
//   hidden   = rms_norm(residual += delta)            (layer 0: the embeddings, no add)
//   qkv      = hidden @ [Wq; Wk; Wv]^T (+ biases)
//   q, k     = rope([q/k head norms](q, k)); cache[layer][slot_mapping] = k, v
//   attn     = paged_attention(q, cache[layer])
//   delta    = attn @ Wo^T (+ bias)
//   hidden   = rms_norm(residual += delta)
//   act      = silu(hidden @ Wg^T) * (hidden @ Wu^T)
//   delta    = act @ Wd^T
// then logits = rms_norm(residual + delta)[logits rows] @ lm_head^T.
#include <fmt/format.h>

#include <cmath>

#include "models/graph_builder.h"
#include "models/registry.h"

namespace kite {

Result<ModelGraph> build_llama_graph(const ModelConfig& c) {
  GraphBuilder b(c, "llama");
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  // llama.cpp permutes the Q/K rows of llama-architecture GGUFs (interleaved RoPE).
  const bool permuted_qk = c.family == ModelFamily::kLlama || c.family == ModelFamily::kMistral;
  const bool phi3 = c.family == ModelFamily::kPhi3;
  // Llama's attention_bias gives q/k/v/o biases; Qwen2 has q/k/v biases only. Elsewhere biases
  // that a checkpoint carries anyway are used.
  const BiasMode qkv_bias = c.attention_bias ? BiasMode::kRequired : BiasMode::kIfPresent;
  const BiasMode o_bias = c.attention_bias && c.family != ModelFamily::kQwen2
                              ? BiasMode::kRequired
                              : BiasMode::kIfPresent;

  const WeightId embed = b.embedding("model.embed_tokens.weight", "token_embd.weight", V, H);
  const ValueId residual = b.value("residual", H);
  const ValueId hidden = b.value("hidden", H);
  const ValueId qkv = b.value("qkv", q + 2 * kv);
  const ValueId attn = b.value("attn", q);
  const ValueId delta = b.value("delta", H);
  const ValueId gate_up = b.value("gate_up", 2 * I);
  const ValueId act = b.value("act", I);
  const ValueId last = b.value("last_hidden", H, RowSpace::kLogits);
  const ValueId logits = b.value("logits", V, RowSpace::kLogits, /*f32=*/true);

  struct Layer {
    WeightId input_norm, qkv, q_norm = kNoWeight, k_norm = kNoWeight, o, post_norm, gate_up, down;
  };
  std::vector<Layer> layers(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    const std::string g = fmt::format("blk.{}.", l);
    L.input_norm = b.vector(p + "input_layernorm.weight", g + "attn_norm.weight", H);
    if (phi3) {
      // Phi-3 stores the stacked layout itself: qkv_proj's rows are [q; k; v] and
      // gate_up_proj's [gate; up], so each is one part. (A tensor-parallel split would need the
      // part cut per q/k/v, which kite does not do.)
      KITE_ASSIGN_OR_RETURN(
          L.qkv, b.linear(p + "self_attn.qkv_proj", {{p + "self_attn.qkv_proj", q + 2 * kv, "", 0}},
                          H, ShardDim::kColumn, qkv_bias));
    } else {
      KITE_ASSIGN_OR_RETURN(
          L.qkv,
          b.linear(
              p + "self_attn.qkv_proj",
              {{p + "self_attn.q_proj", q, g + "attn_q", permuted_qk ? c.num_attention_heads : 0},
               {p + "self_attn.k_proj", kv, g + "attn_k", permuted_qk ? c.num_key_value_heads : 0},
               {p + "self_attn.v_proj", kv, g + "attn_v", 0}},
              H, ShardDim::kColumn, qkv_bias));
    }
    if (c.qk_norm) {
      L.q_norm = b.vector(p + "self_attn.q_norm.weight", g + "attn_q_norm.weight", c.head_dim);
      L.k_norm = b.vector(p + "self_attn.k_norm.weight", g + "attn_k_norm.weight", c.head_dim);
    }
    KITE_ASSIGN_OR_RETURN(
        L.o, b.linear(p + "self_attn.o_proj", {{p + "self_attn.o_proj", H, g + "attn_output", 0}},
                      q, ShardDim::kRow, o_bias));
    L.post_norm = b.vector(p + "post_attention_layernorm.weight", g + "ffn_norm.weight", H);
    std::vector<GraphBuilder::Part> gate_up_parts = {{p + "mlp.gate_proj", I, g + "ffn_gate", 0},
                                                     {p + "mlp.up_proj", I, g + "ffn_up", 0}};
    if (phi3) gate_up_parts = {{p + "mlp.gate_up_proj", 2 * I, "", 0}};
    KITE_ASSIGN_OR_RETURN(L.gate_up,
                          b.linear(p + "mlp.gate_up_proj", gate_up_parts, H, ShardDim::kColumn));
    KITE_ASSIGN_OR_RETURN(
        L.down, b.linear(p + "mlp.down_proj", {{p + "mlp.down_proj", H, g + "ffn_down", 0}}, I,
                         ShardDim::kRow));
  }
  const WeightId final_norm = b.vector("model.norm.weight", "output_norm.weight", H);
  KITE_ASSIGN_OR_RETURN(WeightId lm_head, b.lm_head("lm_head.weight", "output.weight", embed));
  // Llama 3.1 GGUFs carry their RoPE frequency factors as a tensor.
  b.set_rope_freqs(b.vector("rope_freqs.weight", "rope_freqs.weight", c.head_dim / 2,
                            /*optional=*/true));

  b.rope(RopeDecl{c.rope_theta, c.rope_scaling, c.rotary_dim()});

  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  const int window = static_cast<int>(c.sliding_window.value_or(0));
  b.embed(embed, residual);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& L = layers[static_cast<size_t>(l)];
    const int layer = static_cast<int>(l);
    b.rms_norm(residual, l == 0 ? kNoValue : delta, L.input_norm, hidden);
    b.linear_op(hidden, L.qkv, qkv);
    b.rope_kv_write(qkv, layer, L.q_norm, L.k_norm);
    b.attention(qkv, layer, attn, scale, window);
    b.linear_op(attn, L.o, delta);
    b.rms_norm(residual, delta, L.post_norm, hidden);
    b.linear_op(hidden, L.gate_up, gate_up);
    b.silu_mul(gate_up, act);
    b.linear_op(act, L.down, delta);
  }
  b.final_norm(residual, delta, final_norm, last);
  b.linear_op(last, lm_head, logits);
  b.set_logits(logits);
  b.set_num_kv_layers(static_cast<int>(c.num_hidden_layers));
  return b.finish();
}

}  // namespace kite
