// Hugging Face config.json -> ModelConfig, and ModelConfig::validate.
#include "checkpoint/config.h"

#include <fmt/format.h>

#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <limits>

#include "core/json_util.h"

namespace kite {
namespace {

namespace bj = boost::json;

struct ArchInfo {
  std::string_view architecture;  // config.json "architectures"[0]
  std::string_view model_type;    // config.json "model_type"
  ModelFamily family;
};

constexpr std::array<ArchInfo, 10> kArchitectures = {{
    {"LlamaForCausalLM", "llama", ModelFamily::kLlama},
    {"MistralForCausalLM", "mistral", ModelFamily::kMistral},
    {"Qwen2ForCausalLM", "qwen2", ModelFamily::kQwen2},
    {"Qwen3ForCausalLM", "qwen3", ModelFamily::kQwen3},
    {"Phi3ForCausalLM", "phi3", ModelFamily::kPhi3},
    {"Gemma2ForCausalLM", "gemma2", ModelFamily::kGemma2},
    {"Gemma3ForCausalLM", "gemma3_text", ModelFamily::kGemma3},
    {"Gemma3ForConditionalGeneration", "gemma3", ModelFamily::kGemma3},  // its text model
    {"Qwen3MoeForCausalLM", "qwen3_moe", ModelFamily::kQwen3Moe},
    {"MixtralForCausalLM", "mixtral", ModelFamily::kMixtral},
}};

bool is_gemma(ModelFamily f) { return f == ModelFamily::kGemma2 || f == ModelFamily::kGemma3; }

// Sizes above this are not a real model; rejecting them keeps products far from overflow.
constexpr int64_t kMaxDim = int64_t{1} << 24;

std::string supported_architectures() {
  std::string s;
  for (const ArchInfo& a : kArchitectures) {
    if (!s.empty()) s += ", ";
    s += a.architecture;
  }
  return s;
}

Status missing(std::string_view key) {
  return invalid_argument(fmt::format("missing field '{}'", key));
}

Result<int64_t> required_int(const bj::object& o, std::string_view key) {
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> v, json::get_int(o, key));
  if (!v) return missing(key);
  return *v;
}

// An int or a list of ints (eos_token_id is either).
Result<std::vector<int32_t>> int_or_list(const bj::object& o, std::string_view key) {
  std::vector<int32_t> out;
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return out;
  auto to_id = [&](const bj::value& v) -> Result<int32_t> {
    if (v.is_int64() && v.get_int64() >= 0 && v.get_int64() <= INT32_MAX) {
      return static_cast<int32_t>(v.get_int64());
    }
    if (v.is_uint64() && v.get_uint64() <= INT32_MAX) return static_cast<int32_t>(v.get_uint64());
    return invalid_argument(
        fmt::format("field '{}' must be a token id or a list of token ids, "
                    "got {}",
                    key, json::kind_name(v)));
  };
  if (it->value().is_array()) {
    for (const bj::value& v : it->value().get_array()) {
      KITE_ASSIGN_OR_RETURN(int32_t id, to_id(v));
      out.push_back(id);
    }
    return out;
  }
  KITE_ASSIGN_OR_RETURN(int32_t id, to_id(it->value()));
  out.push_back(id);
  return out;
}

Result<DType> parse_torch_dtype(const bj::object& o) {
  // transformers 5 writes "dtype"; earlier versions "torch_dtype".
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> s, json::get_string(o, "dtype"));
  if (!s) {
    KITE_ASSIGN_OR_RETURN(s, json::get_string(o, "torch_dtype"));
  }
  if (!s) return DType::kF32;
  if (*s == "float32") return DType::kF32;
  if (*s == "float16") return DType::kF16;
  if (*s == "bfloat16") return DType::kBF16;
  return unimplemented(
      fmt::format("torch_dtype '{}' is not supported (float32, float16, bfloat16 are)", *s));
}

Result<std::vector<double>> double_list(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) {
    return invalid_argument(fmt::format("field '{}' must be a list of numbers", key));
  }
  std::vector<double> out;
  for (const bj::value& v : it->value().get_array()) {
    if (!v.is_number()) {
      return invalid_argument(fmt::format("field '{}' must be a list of numbers", key));
    }
    out.push_back(v.to_number<double>());
  }
  return out;
}

// LongRoPE as transformers' _compute_longrope_parameters reads it: the factor lists from the
// rope object; original_max_position_embeddings from it or the config's top level (where
// Phi-3 keeps it; else max_position_embeddings); the attention factor's scale is the rope
// object's factor, else max_position_embeddings / original.
Status parse_longrope(const bj::object& o, const bj::object& rope, std::string_view field,
                      ModelConfig* c) {
  auto with_field = [&](Status s) { return s.with_context(std::string(field)); };
  RopeScaling& rs = c->rope_scaling;
  rs.type = RopeScaling::Type::kLongRope;
  for (auto [key, dst] :
       {std::pair<std::string_view, std::vector<double>*>{"short_factor", &rs.short_factor},
        {"long_factor", &rs.long_factor}}) {
    auto v = double_list(rope, key);
    if (!v.ok()) return with_field(v.status());
    *dst = std::move(*v);
  }
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> max_pos,
                        json::get_int(o, "max_position_embeddings"));
  // transformers 5 keeps original_max_position_embeddings in rope_parameters.
  auto orig = json::get_int(rope, "original_max_position_embeddings");
  if (!orig.ok()) return with_field(orig.status());
  if (!*orig) {
    KITE_ASSIGN_OR_RETURN(orig, json::get_int(o, "original_max_position_embeddings"));
  }
  rs.original_max_position_embeddings = orig->value_or(max_pos.value_or(2048));
  if (rs.original_max_position_embeddings <= 0) {
    return invalid_argument(fmt::format("original_max_position_embeddings must be positive, got {}",
                                        rs.original_max_position_embeddings));
  }
  auto factor = json::get_double(rope, "factor");
  if (!factor.ok()) return with_field(factor.status());
  const double scale = factor->value_or(static_cast<double>(max_pos.value_or(2048)) /
                                        static_cast<double>(rs.original_max_position_embeddings));
  rs.factor = scale;
  auto attention = json::get_double(rope, "attention_factor");
  if (!attention.ok()) return with_field(attention.status());
  if (*attention) {
    rs.attention_factor = **attention;
  } else {
    rs.attention_factor =
        scale <= 1.0 ? 1.0
                     : std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(
                                                             rs.original_max_position_embeddings)));
  }
  return ok_status();
}

// rope_scaling (transformers < 5) or rope_parameters (transformers 5, which also holds
// rope_theta).
Status parse_rope(const bj::object& o, ModelConfig* c) {
  const bj::object* rope = nullptr;
  std::string_view field = "rope_scaling";
  for (std::string_view key : {"rope_parameters", "rope_scaling"}) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) continue;
    if (!it->value().is_object()) {
      return invalid_argument(
          fmt::format("field '{}' must be an object, got {}", key, json::kind_name(it->value())));
    }
    rope = &it->value().get_object();
    field = key;
    break;
  }
  // transformers 5 writes Gemma 3's two RoPEs per layer type.
  if (rope != nullptr && rope->contains("full_attention")) {
    const bj::value& full = rope->at("full_attention");
    if (auto it = rope->find("sliding_attention"); it != rope->end() && it->value().is_object()) {
      KITE_ASSIGN_OR_RETURN(std::optional<double> local,
                            json::get_double(it->value().get_object(), "rope_theta"));
      if (local) c->rope_local_base_freq = *local;
    }
    if (!full.is_object()) {
      return invalid_argument(fmt::format("field '{}.full_attention' must be an object", field));
    }
    rope = &full.get_object();
  }
  KITE_ASSIGN_OR_RETURN(std::optional<double> theta, json::get_double(o, "rope_theta"));
  if (rope != nullptr && !theta) {
    KITE_ASSIGN_OR_RETURN(theta, json::get_double(*rope, "rope_theta"));
  }
  c->rope_theta = theta.value_or(10000.0);
  if (rope == nullptr) return ok_status();

  auto with_field = [&](Status s) { return s.with_context(std::string(field)); };
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> type, json::get_string(*rope, "rope_type"));
  if (!type) {
    auto t = json::get_string(*rope, "type");
    if (!t.ok()) return with_field(t.status());
    type = *t;
  }
  const std::string kind = type.value_or("default");
  RopeScaling& rs = c->rope_scaling;
  if (kind == "default") {
    rs.type = RopeScaling::Type::kNone;
    return ok_status();
  }
  if (kind == "longrope" || kind == "su") return parse_longrope(o, *rope, field, c);
  if (kind != "linear" && kind != "llama3") {
    return unimplemented(fmt::format(
        "{} type '{}' is not supported (default, linear, llama3 and longrope are)", field, kind));
  }
  auto factor = json::get_double(*rope, "factor");
  if (!factor.ok()) return with_field(factor.status());
  if (!*factor) return with_field(missing("factor"));
  rs.factor = **factor;
  if (kind == "linear") {
    rs.type = RopeScaling::Type::kLinear;
    return ok_status();
  }
  rs.type = RopeScaling::Type::kLlama3;
  for (auto [key, dst] :
       {std::pair<std::string_view, double*>{"low_freq_factor", &rs.low_freq_factor},
        {"high_freq_factor", &rs.high_freq_factor}}) {
    auto v = json::get_double(*rope, key);
    if (!v.ok()) return with_field(v.status());
    if (!*v) return with_field(missing(key));
    *dst = **v;
  }
  auto orig = json::get_int(*rope, "original_max_position_embeddings");
  if (!orig.ok()) return with_field(orig.status());
  if (!*orig) return with_field(missing("original_max_position_embeddings"));
  rs.original_max_position_embeddings = **orig;
  return ok_status();
}

// A float field whose absence means `absent` and whose null means 0 (none).
Result<double> double_or(const bj::object& o, std::string_view key, double absent) {
  if (!o.contains(key)) return absent;
  KITE_ASSIGN_OR_RETURN(std::optional<double> v, json::get_double(o, key));
  return v.value_or(0.0);
}

// Gemma 2/3's attention fields (defaults: transformers' Gemma2Config / Gemma3TextConfig).
Status parse_gemma(const bj::object& o, ModelConfig* c) {
  const bool gemma2 = c->family == ModelFamily::kGemma2;
  KITE_ASSIGN_OR_RETURN(c->query_pre_attn_scalar, double_or(o, "query_pre_attn_scalar", 256));
  KITE_ASSIGN_OR_RETURN(c->attn_logit_softcapping,
                        double_or(o, "attn_logit_softcapping", gemma2 ? 50.0 : 0.0));
  KITE_ASSIGN_OR_RETURN(c->final_logit_softcapping,
                        double_or(o, "final_logit_softcapping", gemma2 ? 30.0 : 0.0));
  for (auto [key, v] :
       {std::pair<std::string_view, double>{"query_pre_attn_scalar", c->query_pre_attn_scalar},
        {"attn_logit_softcapping", c->attn_logit_softcapping},
        {"final_logit_softcapping", c->final_logit_softcapping}}) {
    if (v < 0 || !std::isfinite(v)) {
      return invalid_argument(fmt::format("{} must be positive, got {}", key, v));
    }
  }
  if (c->query_pre_attn_scalar == 0) {
    return invalid_argument("query_pre_attn_scalar must be positive, got 0");
  }
  if (!gemma2 && c->rope_local_base_freq == 0) {
    KITE_ASSIGN_OR_RETURN(std::optional<double> local, json::get_double(o, "rope_local_base_freq"));
    c->rope_local_base_freq = local.value_or(10000.0);
  }
  const int64_t n = c->num_hidden_layers;
  if (n <= 0 || n > 4096) return ok_status();  // validate() reports it
  c->sliding_layers.assign(static_cast<size_t>(n), false);
  if (auto it = o.find("layer_types"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_array() || static_cast<int64_t>(it->value().get_array().size()) != n) {
      return invalid_argument(
          fmt::format("field 'layer_types' must be a list of num_hidden_layers ({}) strings", n));
    }
    for (int64_t l = 0; l < n; ++l) {
      const bj::value& t = it->value().get_array()[static_cast<size_t>(l)];
      if (t == "sliding_attention") {
        c->sliding_layers[static_cast<size_t>(l)] = true;
      } else if (t != "full_attention") {
        return invalid_argument(fmt::format(
            "layer_types[{}] must be \"sliding_attention\" or \"full_attention\", got {}", l,
            bj::serialize(t)));
      }
    }
    return ok_status();
  }
  int64_t pattern = 2;  // Gemma 2: layers 0, 2, 4, ... slide
  if (!gemma2) {
    KITE_ASSIGN_OR_RETURN(std::optional<int64_t> p, json::get_int(o, "sliding_window_pattern"));
    pattern = p.value_or(6);
    if (pattern <= 0) {
      return invalid_argument(
          fmt::format("sliding_window_pattern must be positive, got {}", pattern));
    }
  }
  for (int64_t l = 0; l < n; ++l)
    c->sliding_layers[static_cast<size_t>(l)] = (l + 1) % pattern != 0;
  return ok_status();
}

// The MoE fields of Qwen3-MoE (num_experts, moe_intermediate_size, norm_topk_prob,
// decoder_sparse_step, mlp_only_layers; defaults: transformers' Qwen3MoeConfig) and Mixtral
// (num_local_experts of intermediate_size each, always renormalized; MixtralConfig's defaults).
Status parse_moe(const bj::object& o, ModelConfig* c) {
  const bool mixtral = c->family == ModelFamily::kMixtral;
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> experts,
                        json::get_int(o, mixtral ? "num_local_experts" : "num_experts"));
  c->num_experts = experts.value_or(mixtral ? 8 : 128);
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> top_k, json::get_int(o, "num_experts_per_tok"));
  c->num_experts_per_tok = top_k.value_or(mixtral ? 2 : 8);
  if (mixtral) {
    c->moe_intermediate_size = c->intermediate_size;
    c->norm_topk_prob = true;
  } else {
    KITE_ASSIGN_OR_RETURN(std::optional<int64_t> moe_inter,
                          json::get_int(o, "moe_intermediate_size"));
    c->moe_intermediate_size = moe_inter.value_or(768);
    KITE_ASSIGN_OR_RETURN(std::optional<bool> norm, json::get_bool(o, "norm_topk_prob"));
    c->norm_topk_prob = norm.value_or(false);
  }
  if (c->num_experts <= 0 || c->num_experts > 4096) {
    return invalid_argument(fmt::format("{} must be in [1, 4096], got {}",
                                        mixtral ? "num_local_experts" : "num_experts",
                                        c->num_experts));
  }
  if (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->num_experts) {
    return invalid_argument(
        fmt::format("num_experts_per_tok must be in [1, {}] (the experts), got {}", c->num_experts,
                    c->num_experts_per_tok));
  }
  if (c->moe_intermediate_size <= 0 || c->moe_intermediate_size > kMaxDim) {
    return invalid_argument(
        fmt::format("moe_intermediate_size must be positive, got {}", c->moe_intermediate_size));
  }
  const int64_t n = c->num_hidden_layers;
  if (n <= 0 || n > 4096) return ok_status();  // validate() reports it
  c->moe_layers.assign(static_cast<size_t>(n), true);
  if (mixtral) return ok_status();
  // transformers' Qwen3MoeDecoderLayer: sparse unless listed in mlp_only_layers, and only
  // every decoder_sparse_step-th layer ((l + 1) % step == 0).
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> step, json::get_int(o, "decoder_sparse_step"));
  const int64_t sparse_step = step.value_or(1);
  if (sparse_step <= 0) {
    return invalid_argument(
        fmt::format("decoder_sparse_step must be positive, got {}", sparse_step));
  }
  for (int64_t l = 0; l < n; ++l) {
    c->moe_layers[static_cast<size_t>(l)] = (l + 1) % sparse_step == 0;
  }
  if (auto it = o.find("mlp_only_layers"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_array()) {
      return invalid_argument("field 'mlp_only_layers' must be a list of layer indices");
    }
    for (const bj::value& v : it->value().get_array()) {
      if (!v.is_int64() || v.get_int64() < 0 || v.get_int64() >= n) {
        return invalid_argument(
            fmt::format("mlp_only_layers entries must be layer indices in [0, {}), got {}", n,
                        bj::serialize(v)));
      }
      c->moe_layers[static_cast<size_t>(v.get_int64())] = false;
    }
  }
  return ok_status();
}

Result<ModelConfig> parse_config_object(const bj::object& o);

// Gemma3ForConditionalGeneration (Gemma 3 4B/12B/27B): the text model's config is text_config,
// which the published files write sparsely — transformers' Gemma3TextConfig defaults fill in
// the rest; bos/eos ids and the dtype may sit at the top level.
Result<ModelConfig> parse_gemma3_multimodal(const bj::object& o) {
  auto it = o.find("text_config");
  if (it == o.end() || !it->value().is_object()) {
    return invalid_argument(
        "field 'text_config' must be an object (Gemma3ForConditionalGeneration)");
  }
  bj::object text = {{"vocab_size", 262208},
                     {"hidden_size", 2304},
                     {"intermediate_size", 9216},
                     {"num_hidden_layers", 26},
                     {"num_attention_heads", 8},
                     {"num_key_value_heads", 4},
                     {"head_dim", 256},
                     {"max_position_embeddings", 131072},
                     {"rms_norm_eps", 1e-6},
                     {"rope_theta", 1000000.0},
                     {"rope_local_base_freq", 10000.0},
                     {"sliding_window", 4096},
                     {"sliding_window_pattern", 6},
                     {"query_pre_attn_scalar", 256}};
  const bj::object& given = it->value().get_object();
  // transformers 5 writes the RoPE bases into rope_parameters: no defaults shadow them there.
  if (given.contains("rope_parameters")) {
    text.erase("rope_theta");
    text.erase("rope_local_base_freq");
  }
  for (const auto& kv : given) text[kv.key()] = kv.value();
  for (std::string_view key :
       {"bos_token_id", "eos_token_id", "torch_dtype", "dtype", "tie_word_embeddings"}) {
    if (!text.contains(key) && o.contains(key)) text[key] = o.at(key);
  }
  text["architectures"] = bj::array{"Gemma3ForCausalLM"};
  KITE_ASSIGN_OR_RETURN(ModelConfig c, parse_config_object(text));
  c.architecture = "Gemma3ForConditionalGeneration";
  return c;
}

Result<ModelConfig> parse_config_object(const bj::object& o) {
  ModelConfig c;
  // Architecture: "architectures"[0], else "model_type".
  std::string arch;
  if (auto it = o.find("architectures"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_array() || it->value().get_array().empty() ||
        !it->value().get_array()[0].is_string()) {
      return invalid_argument("field 'architectures' must be a non-empty list of strings");
    }
    arch = std::string(it->value().get_array()[0].get_string());
  }
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> model_type, json::get_string(o, "model_type"));
  const ArchInfo* info = nullptr;
  for (const ArchInfo& a : kArchitectures) {
    if ((!arch.empty() && arch == a.architecture) || (arch.empty() && model_type == a.model_type)) {
      info = &a;
    }
  }
  if (info == nullptr) {
    if (arch.empty() && !model_type) return missing("architectures");
    return unimplemented(fmt::format("architecture '{}' is not supported (supported: {})",
                                     arch.empty() ? *model_type : arch, supported_architectures()));
  }
  if (info->architecture == "Gemma3ForConditionalGeneration") return parse_gemma3_multimodal(o);
  c.architecture = std::string(info->architecture);
  c.family = info->family;

  KITE_ASSIGN_OR_RETURN(c.vocab_size, required_int(o, "vocab_size"));
  KITE_ASSIGN_OR_RETURN(c.hidden_size, required_int(o, "hidden_size"));
  KITE_ASSIGN_OR_RETURN(c.intermediate_size, required_int(o, "intermediate_size"));
  KITE_ASSIGN_OR_RETURN(c.num_hidden_layers, required_int(o, "num_hidden_layers"));
  KITE_ASSIGN_OR_RETURN(c.num_attention_heads, required_int(o, "num_attention_heads"));
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> kv, json::get_int(o, "num_key_value_heads"));
  c.num_key_value_heads = kv.value_or(c.num_attention_heads);
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, json::get_int(o, "head_dim"));
  if (head_dim) {
    c.head_dim = *head_dim;
  } else {
    if (c.num_attention_heads <= 0) {
      return invalid_argument(
          fmt::format("num_attention_heads must be positive, got {}", c.num_attention_heads));
    }
    if (c.hidden_size % c.num_attention_heads != 0) {
      return invalid_argument(fmt::format(
          "hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is given)",
          c.hidden_size, c.num_attention_heads));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> max_pos,
                        json::get_int(o, "max_position_embeddings"));
  c.max_position_embeddings = max_pos.value_or(2048);  // transformers' LlamaConfig default
  KITE_ASSIGN_OR_RETURN(std::optional<double> eps, json::get_double(o, "rms_norm_eps"));
  c.rms_norm_eps = eps.value_or(1e-6);
  KITE_RETURN_IF_ERROR(parse_rope(o, &c));
  KITE_ASSIGN_OR_RETURN(std::optional<bool> tie, json::get_bool(o, "tie_word_embeddings"));
  c.tie_word_embeddings = tie.value_or(is_gemma(c.family));  // Gemma's configs default to tied

  // Gemma writes hidden_activation (Gemma 2 also an older hidden_act, which it ignores).
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> act, json::get_string(o, "hidden_activation"));
  std::string_view act_key = "hidden_activation";
  if (!act) {
    KITE_ASSIGN_OR_RETURN(act, json::get_string(o, "hidden_act"));
    act_key = "hidden_act";
  }
  if (is_gemma(c.family)) {
    if (act && *act != "gelu_pytorch_tanh") {
      return unimplemented(fmt::format("{} '{}' is not supported for {} (gelu_pytorch_tanh is)",
                                       act_key, *act, c.architecture));
    }
    c.hidden_act = Activation::kGeluTanh;
  } else if (act && *act != "silu") {
    return unimplemented(fmt::format("{} '{}' is not supported (silu is)", act_key, *act));
  }
  KITE_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, json::get_bool(o, "mlp_bias"));
  if (mlp_bias.value_or(false)) return unimplemented("mlp_bias true is not supported");
  KITE_ASSIGN_OR_RETURN(std::optional<bool> attn_bias, json::get_bool(o, "attention_bias"));
  // Qwen2 always has q/k/v biases (its config has no key for it); Llama/Qwen3 say so.
  c.attention_bias = c.family == ModelFamily::kQwen2 || attn_bias.value_or(false);
  c.qk_norm = c.family == ModelFamily::kQwen3 || c.family == ModelFamily::kQwen3Moe ||
              c.family == ModelFamily::kGemma3;
  if (c.family == ModelFamily::kPhi3) {
    KITE_ASSIGN_OR_RETURN(std::optional<double> partial,
                          json::get_double(o, "partial_rotary_factor"));
    // transformers 5 writes it into rope_parameters.
    if (auto rp = o.find("rope_parameters"); !partial && rp != o.end() && rp->value().is_object()) {
      KITE_ASSIGN_OR_RETURN(partial,
                            json::get_double(rp->value().get_object(), "partial_rotary_factor"));
    }
    c.partial_rotary_factor = partial.value_or(1.0);
  }
  if (is_gemma(c.family)) KITE_RETURN_IF_ERROR(parse_gemma(o, &c));
  if (c.family == ModelFamily::kQwen3Moe || c.family == ModelFamily::kMixtral) {
    KITE_RETURN_IF_ERROR(parse_moe(o, &c));
  }

  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> window, json::get_int(o, "sliding_window"));
  KITE_ASSIGN_OR_RETURN(std::optional<bool> use_window, json::get_bool(o, "use_sliding_window"));
  // Qwen2/3 configs carry a sliding_window that only applies with use_sliding_window; there it
  // covers only the layers from max_window_layers on, which kite does not implement.
  // Mistral and Phi-3 apply a sliding_window to every layer; Gemma to its sliding layers.
  const bool windowed = c.family == ModelFamily::kMistral || c.family == ModelFamily::kMixtral ||
                        c.family == ModelFamily::kPhi3 || is_gemma(c.family);
  if (is_gemma(c.family) && !window) window = 4096;  // Gemma2Config / Gemma3TextConfig default
  if (window && use_window.value_or(windowed)) {
    if (!windowed) {
      return unimplemented(
          fmt::format("use_sliding_window true is not supported for {} (per-layer sliding windows)",
                      c.architecture));
    }
    if (*window <= 0 || *window > std::numeric_limits<int32_t>::max()) {
      return invalid_argument(fmt::format("sliding_window must be positive, got {}", *window));
    }
    c.sliding_window = window;
  }

  KITE_ASSIGN_OR_RETURN(std::vector<int32_t> bos, int_or_list(o, "bos_token_id"));
  if (!bos.empty()) c.bos_token_id = bos[0];
  KITE_ASSIGN_OR_RETURN(c.eos_token_ids, int_or_list(o, "eos_token_id"));
  KITE_ASSIGN_OR_RETURN(c.torch_dtype, parse_torch_dtype(o));
  if (auto q = o.find("quantization_config"); q != o.end() && !q->value().is_null()) {
    KITE_ASSIGN_OR_RETURN(c.quantization, parse_quantization_config(bj::serialize(q->value())));
  }
  KITE_RETURN_IF_ERROR(c.validate());
  return c;
}

}  // namespace

std::string_view model_family_name(ModelFamily f) {
  switch (f) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kMistral:
      return "mistral";
    case ModelFamily::kQwen2:
      return "qwen2";
    case ModelFamily::kQwen3:
      return "qwen3";
    case ModelFamily::kPhi3:
      return "phi3";
    case ModelFamily::kGemma2:
      return "gemma2";
    case ModelFamily::kGemma3:
      return "gemma3";
    case ModelFamily::kQwen3Moe:
      return "qwen3_moe";
    case ModelFamily::kMixtral:
      return "mixtral";
  }
  return "unknown";
}

Status ModelConfig::validate() const {
  auto positive = [](std::string_view name, int64_t v) -> Status {
    if (v <= 0) return invalid_argument(fmt::format("{} must be positive, got {}", name, v));
    if (v > kMaxDim) {
      return invalid_argument(
          fmt::format("{} {} is larger than kite supports ({})", name, v, kMaxDim));
    }
    return ok_status();
  };
  KITE_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  KITE_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  KITE_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  KITE_RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers));
  KITE_RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads));
  KITE_RETURN_IF_ERROR(positive("num_key_value_heads", num_key_value_heads));
  KITE_RETURN_IF_ERROR(positive("head_dim", head_dim));
  KITE_RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (num_hidden_layers > 4096) {
    return invalid_argument(fmt::format("num_hidden_layers {} is too large", num_hidden_layers));
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    return invalid_argument(
        fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}",
                    num_attention_heads, num_key_value_heads));
  }
  if (head_dim % 2 != 0) {
    return invalid_argument(fmt::format("head_dim {} must be even (RoPE rotates pairs)", head_dim));
  }
  if (q_size() > kMaxDim) {
    return invalid_argument(
        fmt::format("num_attention_heads * head_dim = {} is too large", q_size()));
  }
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) {
    return invalid_argument(fmt::format("rms_norm_eps must be positive, got {}", rms_norm_eps));
  }
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    return invalid_argument(fmt::format("rope_theta must be positive, got {}", rope_theta));
  }
  if (rope_scaling.type != RopeScaling::Type::kNone) {
    if (!(rope_scaling.factor > 0) || !std::isfinite(rope_scaling.factor)) {
      return invalid_argument(
          fmt::format("rope_scaling factor must be positive, got {}", rope_scaling.factor));
    }
  }
  if (rope_scaling.type == RopeScaling::Type::kLongRope) {
    const auto half = static_cast<size_t>(rotary_dim() / 2);
    if (rope_scaling.short_factor.size() != half || rope_scaling.long_factor.size() != half) {
      return invalid_argument(fmt::format(
          "rope_scaling longrope needs short_factor and long_factor of rotary_dim / 2 = {} "
          "values (got {} and {})",
          half, rope_scaling.short_factor.size(), rope_scaling.long_factor.size()));
    }
    for (const auto* list : {&rope_scaling.short_factor, &rope_scaling.long_factor}) {
      for (double f : *list) {
        if (!(f > 0) || !std::isfinite(f)) {
          return invalid_argument(
              fmt::format("rope_scaling longrope factors must be positive, got {}", f));
        }
      }
    }
    if (!(rope_scaling.attention_factor > 0) || !std::isfinite(rope_scaling.attention_factor) ||
        rope_scaling.original_max_position_embeddings <= 0) {
      return invalid_argument(fmt::format(
          "rope_scaling longrope needs a positive attention_factor and "
          "original_max_position_embeddings (got {}, {})",
          rope_scaling.attention_factor, rope_scaling.original_max_position_embeddings));
    }
  }
  if (rope_scaling.type == RopeScaling::Type::kLlama3) {
    if (!(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor) ||
        !(rope_scaling.low_freq_factor > 0) || !std::isfinite(rope_scaling.high_freq_factor) ||
        rope_scaling.original_max_position_embeddings <= 0) {
      return invalid_argument(fmt::format(
          "rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and a positive "
          "original_max_position_embeddings (got {}, {}, {})",
          rope_scaling.low_freq_factor, rope_scaling.high_freq_factor,
          rope_scaling.original_max_position_embeddings));
    }
  }
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1) || rotary_dim() % 2 != 0 ||
      rotary_dim() == 0) {
    return invalid_argument(
        fmt::format("partial_rotary_factor {} must be in (0, 1] and give an even rotary dim "
                    "(head_dim {} -> {})",
                    partial_rotary_factor, head_dim, rotary_dim()));
  }
  if (!sliding_layers.empty() && static_cast<int64_t>(sliding_layers.size()) != num_hidden_layers) {
    return invalid_argument(fmt::format("{} sliding-layer flags for {} layers",
                                        sliding_layers.size(), num_hidden_layers));
  }
  if (num_experts > 0) {
    if (num_experts_per_tok <= 0 || num_experts_per_tok > num_experts ||
        moe_intermediate_size <= 0 || moe_intermediate_size > kMaxDim) {
      return invalid_argument(fmt::format(
          "a mixture of experts needs 1 <= num_experts_per_tok ({}) <= num_experts ({}) and a "
          "positive moe_intermediate_size ({})",
          num_experts_per_tok, num_experts, moe_intermediate_size));
    }
    if (static_cast<int64_t>(moe_layers.size()) != num_hidden_layers) {
      return invalid_argument(
          fmt::format("{} MoE-layer flags for {} layers", moe_layers.size(), num_hidden_layers));
    }
  }
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size)) {
    return invalid_argument(
        fmt::format("bos_token_id {} is outside the vocabulary ({})", *bos_token_id, vocab_size));
  }
  return ok_status();
}

Result<ModelConfig> parse_hf_config(std::string_view json_text) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(json_text, "config.json"));
  if (!v.is_object()) {
    return invalid_argument(
        fmt::format("config.json: must be a JSON object, got {}", json::kind_name(v)));
  }
  auto c = parse_config_object(v.get_object());
  if (!c.ok()) return c.status().with_context("config.json");
  return c;
}

}  // namespace kite
