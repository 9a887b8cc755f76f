// GGUF files: ModelConfig from metadata, tensors by their GGUF names (the model definition maps
// them to Hugging Face names), and the inverse of llama.cpp's Q/K row permutation.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "checkpoint/loaders.h"
#include "core/logging.h"

namespace kite {
namespace {

struct GgufArch {
  std::string_view gguf;  // general.architecture
  std::string_view hf;    // the equivalent Hugging Face architecture
  ModelFamily family;
};

constexpr std::array<GgufArch, 4> kGgufArchs = {{
    {"llama", "LlamaForCausalLM", ModelFamily::kLlama},  // Mixtral too (with an expert_count)
    {"qwen2", "Qwen2ForCausalLM", ModelFamily::kQwen2},
    {"qwen3", "Qwen3ForCausalLM", ModelFamily::kQwen3},
    {"qwen3moe", "Qwen3MoeForCausalLM", ModelFamily::kQwen3Moe},
}};

const GgufArch* find_arch(std::string_view name) {
  for (const GgufArch& a : kGgufArchs) {
    if (a.gguf == name) return &a;
  }
  return nullptr;
}

// Optional integer key: absent -> fallback; present with a bad type/range -> error.
Result<int64_t> int_or(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (!f.has(key)) return fallback;
  const GgufValue* v = f.find(key);
  if (v->type == GgufType::kArray) {
    return unimplemented(
        fmt::format("GGUF key '{}' varies per layer, which kite does not support", key));
  }
  return f.get_int(key);
}

// Required integer key (kNotFound when absent).
Result<int64_t> required_int(const GgufFile& f, const std::string& key) {
  if (!f.has(key)) return f.get_int(key);  // the kNotFound error naming the key
  return int_or(f, key, 0);
}

Result<double> float_or(const GgufFile& f, const std::string& key, double fallback) {
  if (!f.has(key)) return fallback;
  return f.get_float(key);
}

// Rows [num_heads * head_dim, cols] of `src` (any dtype; rows are whole blocks) to `dst` with
// HF row h*D + s*D/2 + i taken from GGUF row h*D + 2i + s (the inverse of llama.cpp's permute).
void unpermute_rows(const uint8_t* src, uint8_t* dst, int64_t num_heads, int64_t head_dim,
                    int64_t row_bytes) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t i = 0; i < half; ++i) {
        const int64_t hf_row = h * head_dim + s * half + i;
        const int64_t gguf_row = h * head_dim + 2 * i + s;
        std::memcpy(dst + hf_row * row_bytes, src + gguf_row * row_bytes,
                    static_cast<size_t>(row_bytes));
      }
    }
  }
}

}  // namespace

Result<ModelConfig> model_config_from_gguf(const GgufFile& f) {
  KITE_ASSIGN_OR_RETURN(std::string_view arch_name, f.get_string("general.architecture"));
  const GgufArch* arch = find_arch(arch_name);
  if (arch == nullptr) {
    return unimplemented(fmt::format(
        "GGUF architecture '{}' is not supported (supported: llama, qwen2, qwen3, qwen3moe)",
        arch_name));
  }
  const std::string a(arch_name);
  ModelConfig c;
  c.architecture = std::string(arch->hf);
  c.family = arch->family;
  // Mixture of experts: llama.cpp writes Mixtral as "llama" with an expert count, and runs
  // every layer sparse with the top-k weights renormalized (qwen3moe and llama alike).
  KITE_ASSIGN_OR_RETURN(c.num_experts, int_or(f, a + ".expert_count", 0));
  if (c.num_experts > 0 && c.family == ModelFamily::kLlama) {
    c.family = ModelFamily::kMixtral;
    c.architecture = "MixtralForCausalLM";
  }
  if (c.family == ModelFamily::kQwen3Moe && c.num_experts <= 0) {
    return invalid_argument(fmt::format("GGUF key '{}.expert_count' must be positive", a));
  }
  KITE_ASSIGN_OR_RETURN(c.hidden_size, required_int(f, a + ".embedding_length"));
  KITE_ASSIGN_OR_RETURN(c.intermediate_size, required_int(f, a + ".feed_forward_length"));
  KITE_ASSIGN_OR_RETURN(c.num_hidden_layers, required_int(f, a + ".block_count"));
  KITE_ASSIGN_OR_RETURN(c.num_attention_heads, required_int(f, a + ".attention.head_count"));
  KITE_ASSIGN_OR_RETURN(c.num_key_value_heads,
                        int_or(f, a + ".attention.head_count_kv", c.num_attention_heads));
  if (c.num_attention_heads <= 0) {
    return invalid_argument(fmt::format("GGUF key '{}.attention.head_count' must be positive", a));
  }
  KITE_ASSIGN_OR_RETURN(
      c.head_dim, int_or(f, a + ".attention.key_length", c.hidden_size / c.num_attention_heads));
  KITE_ASSIGN_OR_RETURN(int64_t v_len, int_or(f, a + ".attention.value_length", c.head_dim));
  if (v_len != c.head_dim) {
    return unimplemented(
        fmt::format("key_length {} != value_length {} is not supported", c.head_dim, v_len));
  }
  KITE_ASSIGN_OR_RETURN(int64_t rope_dim, int_or(f, a + ".rope.dimension_count", c.head_dim));
  if (rope_dim != c.head_dim) {
    return unimplemented(
        fmt::format("partial rotary embeddings (rope.dimension_count {} < "
                    "head_dim {}) are not supported",
                    rope_dim, c.head_dim));
  }
  KITE_ASSIGN_OR_RETURN(c.max_position_embeddings, int_or(f, a + ".context_length", 2048));
  KITE_ASSIGN_OR_RETURN(c.rms_norm_eps, f.get_float(a + ".attention.layer_norm_rms_epsilon"));
  KITE_ASSIGN_OR_RETURN(c.rope_theta, float_or(f, a + ".rope.freq_base", 10000.0));

  // RoPE scaling: rope.scaling.type (+ .factor), or the older rope.scale_linear.
  std::string scaling_type = "none";
  if (f.has(a + ".rope.scaling.type")) {
    KITE_ASSIGN_OR_RETURN(std::string_view t, f.get_string(a + ".rope.scaling.type"));
    scaling_type = std::string(t);
  }
  if (scaling_type == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    KITE_ASSIGN_OR_RETURN(c.rope_scaling.factor, f.get_float(a + ".rope.scaling.factor"));
  } else if (scaling_type != "none") {
    return unimplemented(fmt::format(
        "GGUF rope scaling '{}' is not supported (none and linear are; Llama 3.1 files carry "
        "rope_freqs.weight instead)",
        scaling_type));
  } else if (f.has(a + ".rope.scale_linear")) {
    KITE_ASSIGN_OR_RETURN(double factor, f.get_float(a + ".rope.scale_linear"));
    if (factor != 1.0) {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      c.rope_scaling.factor = factor;
    }
  }

  // Vocabulary: the embedding's rows are the truth (the key is optional in many files).
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) return not_found("GGUF file has no tensor 'token_embd.weight'");
  if (embd->n_dims != 2) {
    return invalid_argument(
        fmt::format("tensor 'token_embd.weight' has {} dimensions, expected 2", embd->n_dims));
  }
  c.vocab_size = embd->ne[1];
  if (f.has(a + ".vocab_size")) {
    KITE_ASSIGN_OR_RETURN(int64_t vocab, f.get_int(a + ".vocab_size"));
    if (vocab != c.vocab_size) {
      return invalid_argument(
          fmt::format("{}.vocab_size {} disagrees with token_embd.weight "
                      "({} rows)",
                      a, vocab, c.vocab_size));
    }
  }
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = c.family == ModelFamily::kQwen2;
  c.qk_norm = c.family == ModelFamily::kQwen3 || c.family == ModelFamily::kQwen3Moe;
  c.torch_dtype = DType::kF32;
  if (c.num_experts > 0) {
    KITE_ASSIGN_OR_RETURN(c.num_experts_per_tok, required_int(f, a + ".expert_used_count"));
    KITE_ASSIGN_OR_RETURN(c.moe_intermediate_size,
                          int_or(f, a + ".expert_feed_forward_length", c.intermediate_size));
    c.norm_topk_prob = true;
    if (f.has(a + ".expert_weights_norm")) {
      const GgufValue* v = f.find(a + ".expert_weights_norm");
      if (v->type != GgufType::kBool) {
        return invalid_argument(fmt::format("GGUF key '{}.expert_weights_norm' must be a bool", a));
      }
      c.norm_topk_prob = v->u64 != 0;
    }
    if (c.num_hidden_layers > 0 && c.num_hidden_layers <= 4096) {
      c.moe_layers.assign(static_cast<size_t>(c.num_hidden_layers), true);
    }
  }

  auto token_id = [&](const char* key) -> Result<std::optional<int32_t>> {
    if (!f.has(key)) return std::optional<int32_t>();
    KITE_ASSIGN_OR_RETURN(uint32_t id, f.get_u32(key));
    if (id >= static_cast<uint64_t>(c.vocab_size)) return std::optional<int32_t>();  // "none"
    return std::optional<int32_t>(static_cast<int32_t>(id));
  };
  KITE_ASSIGN_OR_RETURN(c.bos_token_id, token_id("tokenizer.ggml.bos_token_id"));
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    KITE_ASSIGN_OR_RETURN(std::optional<int32_t> id, token_id(key));
    if (id &&
        std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), *id) == c.eos_token_ids.end()) {
      c.eos_token_ids.push_back(*id);
    }
  }
  KITE_RETURN_IF_ERROR(c.validate());
  return c;
}

Status load_gguf_file(const std::string& path, WeightStore* store) {
  KITE_ASSIGN_OR_RETURN(GgufFile parsed, GgufFile::open(path));
  auto file = std::make_shared<GgufFile>(std::move(parsed));
  auto config = model_config_from_gguf(*file);
  if (!config.ok()) return config.status().with_context(path);
  for (const GgufTensorInfo& info : file->tensors()) {
    auto view = file->tensor_view(info);
    if (!view.ok()) return view.status().with_context(path);
    store->put(std::string(info.name), *view);
  }
  store->set_config(*config);
  store->set_gguf(std::move(file));
  return ok_status();
}

Result<TensorView> gguf_unpermute_rows(const TensorView& view, int64_t num_heads, int64_t head_dim,
                                       WeightStore* store) {
  if (view.ndim != 2 || view.dim(0) != num_heads * head_dim || !view.is_contiguous()) {
    return invalid_argument(
        fmt::format("tensor is {}, expected {} rows", view.to_string(), num_heads * head_dim));
  }
  HostBuffer buf(static_cast<size_t>(view.nbytes()));
  unpermute_rows(static_cast<const uint8_t*>(view.data), buf.as<uint8_t>(), num_heads, head_dim,
                 view.row_bytes());
  TensorView t = view;
  t.data = store->own(std::move(buf));
  return t;
}

}  // namespace kite
