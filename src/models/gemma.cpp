// The Gemma 2 / Gemma 3 (text) decoder. Against the Llama-like one (llama.cpp): the embeddings
// are scaled by sqrt(hidden); every RMSNorm multiplies by (1 + w) (the +1 folded into the
// weight at load, WeightDecl::vector_offset); each sub-layer's output is normalized again
// before it joins the residual (post-attention / post-feed-forward norms); the MLP is GeGLU
// with tanh-approximated GELU; the softmax scale is query_pre_attn_scalar^-0.5; layers
// alternate between sliding-window and global attention (ModelConfig::sliding_layers).
// Gemma 2 soft-caps the attention scores and the final logits; Gemma 3 RMS-normalizes each q/k
// head and gives its sliding layers their own RoPE base (rope_local_base_freq, unscaled).
//
// One layer, for the step's n tokens (residual stream `residual`, sub-layer output `delta`):
//   hidden   = rms_norm(residual += delta) * (1 + w_in)        (layer 0: the embeddings)
//   qkv      = hidden @ [Wq; Wk; Wv]^T
//   q, k     = rope_{local|global}([Gemma 3: head norms](q, k)); cache[layer] = k, v
//   attn     = paged_attention(q, cache[layer], scale, window if sliding, softcap)
//   delta    = rms_norm(attn @ Wo^T) * (1 + w_post_attn)
//   hidden   = rms_norm(residual += delta) * (1 + w_pre_ff)
//   delta    = rms_norm((gelu_tanh(hidden @ Wg^T) * (hidden @ Wu^T)) @ Wd^T) * (1 + w_post_ff)
// then logits = softcap(rms_norm(residual + delta)[logits rows] * (1 + w_final) @ lm_head^T).
#include <fmt/format.h>

#include <cmath>

#include "core/dtype.h"
#include "models/graph_builder.h"
#include "models/registry.h"

namespace kite {
namespace {

// transformers multiplies the embeddings by sqrt(hidden_size) as a tensor of the model's dtype,
// so a bfloat16 checkpoint uses the bfloat16-rounded value (sqrt(3584) = 59.87 -> 59.75).
float embedding_scale(const ModelConfig& c) {
  const auto s = static_cast<float>(std::sqrt(static_cast<double>(c.hidden_size)));
  switch (c.torch_dtype) {
    case DType::kBF16:
      return bf16_to_f32(f32_to_bf16(s));
    case DType::kF16:
      return f16_to_f32(f32_to_f16(s));
    default:
      return s;
  }
}

}  // namespace

Result<ModelGraph> build_gemma_graph(const ModelConfig& c) {
  GraphBuilder b(c, "gemma");
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  const bool gemma3 = c.family == ModelFamily::kGemma3;
  if (c.hidden_act != Activation::kGeluTanh) {
    return invalid_argument("Gemma's MLP is GeGLU (gelu_pytorch_tanh)");
  }
  if (static_cast<int64_t>(c.sliding_layers.size()) != c.num_hidden_layers) {
    return invalid_argument("Gemma needs a sliding/global flag per layer");
  }
  // Gemma's (1 + w) RMSNorm: every norm weight is loaded as w + 1.
  constexpr float kPlusOne = 1.f;
  auto norm = [&](const std::string& tensor, int64_t n) {
    return b.vector(tensor, "", n, /*optional=*/false, kPlusOne);
  };

  // A multimodal Gemma 3 checkpoint stores its text model under "language_model." (the LM
  // head, when untied, as language_model.lm_head).
  const std::string top =
      c.architecture == "Gemma3ForConditionalGeneration" ? "language_model." : "";
  const std::string m = top + "model.";
  const WeightId embed = b.embedding(m + "embed_tokens.weight", "", V, H);
  const ValueId residual = b.value("residual", H);
  const ValueId hidden = b.value("hidden", H);
  const ValueId qkv = b.value("qkv", q + 2 * kv);
  const ValueId attn = b.value("attn", q);
  const ValueId sub_out = b.value("sub_out", H);  // a sub-layer's output before its post-norm
  const ValueId delta = b.value("delta", H);
  const ValueId gate_up = b.value("gate_up", 2 * I);
  const ValueId act = b.value("act", I);
  const ValueId last = b.value("last_hidden", H, RowSpace::kLogits);
  const ValueId logits = b.value("logits", V, RowSpace::kLogits, /*f32=*/true);

  struct Layer {
    WeightId input_norm, qkv, q_norm = kNoWeight, k_norm = kNoWeight, o, post_attn_norm,
                              pre_ff_norm, gate_up, down, post_ff_norm;
  };
  std::vector<Layer> layers(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("{}layers.{}.", m, l);
    L.input_norm = norm(p + "input_layernorm.weight", H);
    KITE_ASSIGN_OR_RETURN(L.qkv, b.linear(p + "self_attn.qkv_proj",
                                          {{p + "self_attn.q_proj", q, "", 0},
                                           {p + "self_attn.k_proj", kv, "", 0},
                                           {p + "self_attn.v_proj", kv, "", 0}},
                                          H, ShardDim::kColumn, BiasMode::kIfPresent));
    if (c.qk_norm) {
      L.q_norm = norm(p + "self_attn.q_norm.weight", c.head_dim);
      L.k_norm = norm(p + "self_attn.k_norm.weight", c.head_dim);
    }
    KITE_ASSIGN_OR_RETURN(L.o,
                          b.linear(p + "self_attn.o_proj", {{p + "self_attn.o_proj", H, "", 0}}, q,
                                   ShardDim::kRow, BiasMode::kIfPresent));
    L.post_attn_norm = norm(p + "post_attention_layernorm.weight", H);
    L.pre_ff_norm = norm(p + "pre_feedforward_layernorm.weight", H);
    KITE_ASSIGN_OR_RETURN(
        L.gate_up, b.linear(p + "mlp.gate_up_proj",
                            {{p + "mlp.gate_proj", I, "", 0}, {p + "mlp.up_proj", I, "", 0}}, H,
                            ShardDim::kColumn));
    KITE_ASSIGN_OR_RETURN(L.down, b.linear(p + "mlp.down_proj", {{p + "mlp.down_proj", H, "", 0}},
                                           I, ShardDim::kRow));
    L.post_ff_norm = norm(p + "post_feedforward_layernorm.weight", H);
  }
  const WeightId final_norm = norm(m + "norm.weight", H);
  KITE_ASSIGN_OR_RETURN(WeightId lm_head, b.lm_head(top + "lm_head.weight", "", embed));

  // Global layers: rope_theta with rope_scaling; Gemma 3's sliding layers: their own base.
  const int global_rope = b.rope(RopeDecl{c.rope_theta, c.rope_scaling, c.rotary_dim()});
  const int local_rope =
      gemma3 ? b.rope(RopeDecl{c.rope_local_base_freq, RopeScaling{}, c.rotary_dim()})
             : global_rope;

  const auto scale = static_cast<float>(1.0 / std::sqrt(c.query_pre_attn_scalar));
  const auto attn_softcap = static_cast<float>(c.attn_logit_softcapping);
  const int window = static_cast<int>(c.sliding_window.value_or(0));
  b.embed(embed, residual, embedding_scale(c));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& L = layers[static_cast<size_t>(l)];
    const int layer = static_cast<int>(l);
    const bool sliding = c.sliding_layers[static_cast<size_t>(l)];
    b.rms_norm(residual, l == 0 ? kNoValue : delta, L.input_norm, hidden);
    b.linear_op(hidden, L.qkv, qkv);
    b.rope_kv_write(qkv, layer, L.q_norm, L.k_norm, sliding ? local_rope : global_rope);
    b.attention(qkv, layer, attn, scale, sliding ? window : 0, attn_softcap);
    b.linear_op(attn, L.o, sub_out);
    b.rms_norm(sub_out, kNoValue, L.post_attn_norm, delta);
    b.rms_norm(residual, delta, L.pre_ff_norm, hidden);
    b.linear_op(hidden, L.gate_up, gate_up);
    b.gelu_tanh_mul(gate_up, act);
    b.linear_op(act, L.down, sub_out);
    b.rms_norm(sub_out, kNoValue, L.post_ff_norm, delta);
  }
  b.final_norm(residual, delta, final_norm, last);
  b.linear_op(last, lm_head, logits);
  if (c.final_logit_softcapping > 0) {
    b.softcap(logits, logits, static_cast<float>(c.final_logit_softcapping));
  }
  b.set_logits(logits);
  b.set_num_kv_layers(static_cast<int>(c.num_hidden_layers));
  return b.finish();
}

}  // namespace kite
