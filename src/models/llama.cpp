// The Llama-like decoder, written once for every family that shares it: Llama 2/3/3.1/3.2,
// SmolLM2 and TinyStories (plain), Mistral (sliding-window attention), Qwen2/2.5 (q/k/v
// biases), Qwen3 (per-head RMSNorm of q and k), Phi-3/3.5/4 (q/k/v and gate/up fused in the
// checkpoint; partial rotary), Qwen3-MoE (Qwen3 attention; sparse mixture-of-experts blocks,
// dense MLPs on its mlp_only_layers) and Mixtral (Mistral attention; a sparse block in every
// layer). Per-family switches come from ModelConfig.
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
//   (MoE layers instead: delta = moe(hidden): router softmax top-k over the experts, each
//    expert a gated SiLU MLP, outputs combined by the routing weights; model_graph.h MoeDecl)
// then logits = rms_norm(residual + delta)[logits rows] @ lm_head^T.
#include <fmt/format.h>

#include <cmath>

#include "models/graph_builder.h"
#include "models/registry.h"

namespace kite {
namespace {

// The sparse MoE block of layer `l` in its published checkpoint layout:
//   Qwen3-MoE  mlp.gate (router), mlp.experts.{e}.gate_proj / up_proj / down_proj
//   Mixtral    block_sparse_moe.gate, block_sparse_moe.experts.{e}.w1 (gate) / w3 (up) / w2 (down)
// Each expert's gate and up are stacked into one [2 * I, H] weight, split by column under
// tensor parallelism like a dense gate_up_proj, its down by row.
Result<int> declare_moe(GraphBuilder& b, const ModelConfig& c, int l) {
  const bool mixtral = c.family == ModelFamily::kMixtral;
  const int64_t H = c.hidden_size, I = c.moe_intermediate_size, E = c.num_experts;
  const std::string p =
      fmt::format("model.layers.{}.{}", l, mixtral ? "block_sparse_moe." : "mlp.");
  const std::string g = fmt::format("blk.{}.", l);
  MoeDecl m;
  m.top_k = static_cast<int>(c.num_experts_per_tok);
  m.renormalize = c.norm_topk_prob;
  m.intermediate = I;
  // The router stays whole on every rank and in its float dtype (vLLM never quantizes it: FP8
  // checkpoints such as Qwen3-30B-A3B-FP8 store it in BF16).
  KITE_ASSIGN_OR_RETURN(m.router, b.linear(p + "gate", {{p + "gate", E, g + "ffn_gate_inp", 0}}, H,
                                           ShardDim::kReplicated, BiasMode::kNone,
                                           /*quantizable=*/false));
  const std::string_view gate = mixtral ? "w1" : "gate_proj";
  const std::string_view up = mixtral ? "w3" : "up_proj";
  const std::string_view down = mixtral ? "w2" : "down_proj";
  for (int64_t e = 0; e < E; ++e) {
    const std::string x = fmt::format("{}experts.{}.", p, e);
    const auto ge = static_cast<int32_t>(e);  // its slice of llama.cpp's stacked experts
    KITE_ASSIGN_OR_RETURN(WeightId gate_up,
                          b.linear(x + "gate_up_proj",
                                   {{x + std::string(gate), I, g + "ffn_gate_exps", 0, ge},
                                    {x + std::string(up), I, g + "ffn_up_exps", 0, ge}},
                                   H, ShardDim::kColumn));
    KITE_ASSIGN_OR_RETURN(
        WeightId d,
        b.linear(x + std::string(down), {{x + std::string(down), H, g + "ffn_down_exps", 0, ge}}, I,
                 ShardDim::kRow));
    m.gate_up.push_back(gate_up);
    m.down.push_back(d);
  }
  return b.moe(std::move(m));
}

}  // namespace

Result<ModelGraph> build_llama_graph(const ModelConfig& c) {
  GraphBuilder b(c, "llama");
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  // llama.cpp permutes the Q/K rows of llama-architecture GGUFs (interleaved RoPE).
  const bool permuted_qk = c.family == ModelFamily::kLlama || c.family == ModelFamily::kMistral ||
                           c.family == ModelFamily::kMixtral;
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
  // The dense MLP's activations, unless every layer is a sparse MoE block (Mixtral).
  bool dense_layers = !c.is_moe();
  for (bool sparse : c.moe_layers) dense_layers = dense_layers || !sparse;
  const ValueId gate_up = dense_layers ? b.value("gate_up", 2 * I) : kNoValue;
  const ValueId act = dense_layers ? b.value("act", I) : kNoValue;
  const ValueId last = b.value("last_hidden", H, RowSpace::kLogits);
  const ValueId logits = b.value("logits", V, RowSpace::kLogits, /*f32=*/true);

  struct Layer {
    WeightId input_norm, qkv, q_norm = kNoWeight, k_norm = kNoWeight, o, post_norm;
    WeightId gate_up = kNoWeight, down = kNoWeight;  // dense layers
    int moe = -1;                                    // MoE layers: index into the graph's moes
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
    if (c.is_moe() && c.moe_layers[static_cast<size_t>(l)]) {
      KITE_ASSIGN_OR_RETURN(L.moe, declare_moe(b, c, static_cast<int>(l)));
      continue;
    }
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
    if (L.moe >= 0) {
      b.moe_op(hidden, L.moe, delta);
      continue;
    }
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
