// ModelConfig: the shape and hyper-parameters of a decoder-only model, from a Hugging Face
// config.json or GGUF metadata. One struct for every supported family (they share one decoder).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "kite/status.h"

namespace kite {

enum class ModelFamily {
  kLlama,     // Llama 2/3/3.1/3.2, SmolLM2, TinyStories, llama2.c
  kMistral,   // Mistral: Llama layout, sliding-window attention when sliding_window is set
  kQwen2,     // Qwen2/2.5: q/k/v biases
  kQwen3,     // Qwen3: per-head RMSNorm on q and k, no biases
  kPhi3,      // Phi-3/3.5/4: Llama layout with fused qkv_proj / gate_up_proj checkpoint tensors
  kGemma2,    // Gemma 2: (1 + w) norms, GeGLU, soft-capping, alternating sliding/global layers
  kGemma3,    // Gemma 3 (text): Gemma 2 plus per-head q/k norms and two RoPE bases
  kQwen3Moe,  // Qwen3-MoE: Qwen3 attention, sparse MoE blocks (mlp_only_layers dense)
  kMixtral,   // Mixtral: Mistral attention, a sparse MoE block in every layer
};
std::string_view model_family_name(ModelFamily f);

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3, kLongRope };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, longrope
  // LongRoPE (Phi-3-128k, Phi-3.5, Phi-4-mini: rope_scaling type "longrope" or "su"):
  // inv_freq[i] = theta^(-2i/d) / short_factor[i] for sequences within
  // original_max_position_embeddings, / long_factor[i] beyond ([rotary_dim / 2] each); cos and
  // sin are multiplied by attention_factor (config's, else transformers' default
  // sqrt(1 + ln(s) / ln(original)) with s = the rope factor, else max_position_embeddings /
  // original; 1 if s <= 1).
  std::vector<double> short_factor, long_factor;
  double attention_factor = 1.0;
};

enum class Activation : uint8_t {
  kSilu,      // silu(gate) * up
  kGeluTanh,  // gelu_pytorch_tanh(gate) * up (Gemma's GeGLU)
};

// How a checkpoint's linear weights are quantized (config.json's quantization_config).
enum class QuantScheme : uint8_t {
  kNone,
  kFp8PerTensor,   // float8_e4m3fn weights, one F32 scale per tensor ([1])
  kFp8PerChannel,  // one scale per output row ([rows, 1])
  kFp8Block,       // one scale per block_rows x block_cols tile ([ceil(rows/b0), ceil(cols/b1)])
};
std::string_view quant_scheme_name(QuantScheme s);

// How activations entering a quantized linear are scaled.
enum class ActivationQuant : uint8_t {
  kNone,              // weight-only quantization
  kDynamicPerToken,   // a scale per token row, computed at run time
  kDynamicPerTensor,  // one scale per step, computed at run time
  kStaticPerTensor,   // the checkpoint's input_scale
};

struct QuantizationConfig {
  std::string method;  // "" (none), "fp8", "compressed-tensors"
  QuantScheme scheme = QuantScheme::kNone;
  ActivationQuant activations = ActivationQuant::kNone;
  int64_t block_rows = 0, block_cols = 0;  // kFp8Block
  std::string weight_scale_name;           // "weight_scale" or "weight_scale_inv"
  // Modules kept in the checkpoint's float dtype: exact module names ("lm_head") or "re:"
  // regular expressions over them, as compressed-tensors and vLLM write them.
  std::vector<std::string> ignore;
  // compressed-tensors' kv_cache_scheme (8-bit float, per tensor): the checkpoint carries a static
  // k_scale and v_scale per layer (models/kv_cache_scales.h), used with --kv-cache-dtype fp8.
  bool kv_cache_scales = false;

  // Whether the weights are quantized (a checkpoint with only a kv_cache_scheme is not).
  bool enabled() const { return scheme != QuantScheme::kNone; }
  // Whether the linear module `name` ("model.layers.0.self_attn.q_proj", "lm_head") is stored
  // quantized.
  bool quantizes(std::string_view module) const;
};

// Parses config.json's "quantization_config" object. Supported: quant_method "fp8" (per-tensor,
// or 128x128-style block scales with weight_block_size; dynamic or static activations) and
// "compressed-tensors" with format "float-quantized" (8-bit float weights, strategy tensor,
// channel or block; input activations none, dynamic per token/tensor, or static per tensor; and
// an optional kv_cache_scheme of 8-bit float per-tensor scales, alone or with the weights').
// Anything else is kUnimplemented naming what is supported; malformed fields kInvalidArgument.
Result<QuantizationConfig> parse_quantization_config(std::string_view json_object_text);

struct ModelConfig {
  // "LlamaForCausalLM", "Qwen2ForCausalLM", ...; "Gemma3ForConditionalGeneration" for the text
  // model of a multimodal Gemma 3 checkpoint (its definition declares the tensors it stores).
  std::string architecture;
  ModelFamily family = ModelFamily::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // `head_dim` key, else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections have biases (Qwen2)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3, Gemma 3)
  Activation hidden_act = Activation::kSilu;
  // RoPE rotates the first head_dim * partial_rotary_factor dims of each head (Phi-4-mini).
  double partial_rotary_factor = 1.0;
  // Mistral, Phi-3: each query attends to the last sliding_window positions (itself included).
  // Gemma 2/3: the same, on the layers sliding_layers marks.
  std::optional<int64_t> sliding_window;
  // Gemma 2/3: [num_hidden_layers], true = a sliding-window layer (config.json layer_types,
  // or every other layer (Gemma 2) / all but every sliding_window_pattern-th (Gemma 3)).
  std::vector<bool> sliding_layers;
  // Gemma: softmax scale = query_pre_attn_scalar^-0.5 (0 = 1/sqrt(head_dim)); soft-caps of the
  // attention scores and of the final logits (cap * tanh(x / cap); 0 = none).
  double query_pre_attn_scalar = 0;
  double attn_logit_softcapping = 0;
  double final_logit_softcapping = 0;
  // Gemma 3: RoPE base of the sliding-window layers (default RoPE, no scaling); the global
  // layers use rope_theta and rope_scaling.
  double rope_local_base_freq = 0;
  // Mixture of experts (Qwen3-MoE, Mixtral). num_experts 0 = a dense model. Each MoE block
  // routes a token to its num_experts_per_tok experts by softmax(router logits) top-k, their
  // probabilities renormalized to sum 1 when norm_topk_prob (Mixtral always);
  // moe_intermediate_size is each expert's (Mixtral: intermediate_size). moe_layers:
  // [num_hidden_layers], true = a sparse MoE block, false = the dense MLP of
  // intermediate_size (Qwen3-MoE's mlp_only_layers and decoder_sparse_step).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  std::vector<bool> moe_layers;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
  DType torch_dtype = DType::kF32;  // dtype the checkpoint declares
  QuantizationConfig quantization;  // none unless config.json has a quantization_config

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
  bool is_moe() const { return num_experts > 0; }
  // Dims of each head RoPE rotates (int(head_dim * partial_rotary_factor), as transformers).
  int64_t rotary_dim() const {
    return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
  }
  // Checks the invariants every backend relies on (positive sizes, heads divide, ...).
  Status validate() const;
};

// Parses a Hugging Face config.json. Unknown architectures are kUnimplemented with a message
// naming the supported ones; missing/mistyped fields are kInvalidArgument naming the field.
Result<ModelConfig> parse_hf_config(std::string_view json_text);

}  // namespace kite
