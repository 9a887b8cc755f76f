#include "models/load.h"

#include <fmt/format.h>

#include <charconv>
#include <set>

#include "core/logging.h"
#include "models/model_weights.h"
#include "models/registry.h"

namespace kite {
namespace {

TensorSpec::Init init_of(const WeightDecl& w, bool bias) {
  if (bias) return TensorSpec::Init::kBias;
  switch (w.kind) {
    case WeightKind::kEmbedding:
      return TensorSpec::Init::kEmbedding;
    case WeightKind::kLinear:
      return TensorSpec::Init::kMatrix;
    case WeightKind::kVector:
      return TensorSpec::Init::kNorm;
  }
  return TensorSpec::Init::kMatrix;
}

std::vector<TensorSpec> required_tensors(const ModelGraph& g) {
  std::vector<TensorSpec> specs;
  for (const WeightDecl& w : g.weights) {
    if (w.optional) continue;
    // Tied: the LM head reuses the embedding's tensor.
    if (w.kind == WeightKind::kLinear && !w.tied_to.empty()) continue;
    for (const TensorDecl& t : w.parts) specs.push_back({t.name, t.shape, init_of(w, false)});
    if (w.bias_mode == BiasMode::kRequired) {
      for (const TensorDecl& t : w.bias) specs.push_back({t.name, t.shape, init_of(w, true)});
    }
  }
  return specs;
}

// GGUF tensors come under llama.cpp's names: take each declared tensor from its GGUF name.
Status rename_gguf_tensors(const ModelGraph& g, const ModelConfig& c, WeightStore* store) {
  for (const TensorDecl* t : g.tensors()) {
    if (t->gguf_name.empty()) continue;
    const TensorView* view = store->find(t->gguf_name);
    if (view == nullptr) continue;  // validation reports what is missing
    TensorView v = *view;
    if (t->gguf_expert >= 0) {
      // Expert e's [rows, cols] block of the stacked [num_experts, rows, cols] tensor: whole
      // rows, so any block quantization stays intact.
      if (v.ndim != 3 || t->shape.size() != 2 || v.dim(1) != t->shape[0] ||
          v.dim(2) != t->shape[1] || t->gguf_expert >= v.dim(0)) {
        return invalid_argument(
            fmt::format("tensor '{}' is {}, expected [num_experts, {}, {}] with expert {} in it",
                        t->gguf_name, v.to_string(), t->shape.size() == 2 ? t->shape[0] : 0,
                        t->shape.size() == 2 ? t->shape[1] : 0, t->gguf_expert));
      }
      const int64_t expert_bytes = v.dim(1) * v.row_bytes();
      TensorView slice(static_cast<uint8_t*>(v.data) + t->gguf_expert * expert_bytes, v.dtype,
                       {v.dim(1), v.dim(2)});
      v = slice;
    }
    if (t->gguf_permuted_heads > 0) {
      auto un = gguf_unpermute_rows(v, t->gguf_permuted_heads, c.head_dim, store);
      if (!un.ok()) return un.status().with_context("tensor '" + t->gguf_name + "'");
      v = *un;
    }
    store->put(t->name, v);
  }
  // Only the declared (Hugging Face) names stay.
  std::set<std::string_view> declared;
  for (const TensorDecl* t : g.tensors()) declared.insert(t->name);
  for (const std::string& name : store->names()) {
    if (declared.count(name) == 0) {
      KITE_LOG_DEBUG("{}: ignoring tensor '{}'", store->path(), name);
      store->erase(name);
    }
  }
  return ok_status();
}

// A multimodal checkpoint's text model: transformers >= 4.52 saves
// Gemma3ForConditionalGeneration's "language_model.model.X" as "model.language_model.X" (and
// its "language_model.lm_head" as "lm_head"); either layout serves the declared names.
void alias_text_model_names(const ModelGraph& g, WeightStore* store) {
  constexpr std::string_view kOld = "language_model.model.";
  constexpr std::string_view kOldHead = "language_model.lm_head.";
  for (const TensorDecl* t : g.tensors()) {
    if (store->find(t->name) != nullptr) continue;
    const std::string_view name = t->name;
    std::string other;
    if (name.starts_with(kOld)) {
      other = "model.language_model." + std::string(name.substr(kOld.size()));
    } else if (name.starts_with(kOldHead)) {
      other = "lm_head." + std::string(name.substr(kOldHead.size()));
    } else {
      continue;
    }
    if (const TensorView* v = store->find(other); v != nullptr) store->put(t->name, *v);
  }
}

// A mixture of experts whose checkpoint holds expert or router tensors the config does not
// declare (more experts than num_experts, a sparse block where mlp_only_layers /
// decoder_sparse_step make the layer dense) would run with them silently unused: an error.
Status check_undeclared_experts(const ModelGraph& g, const WeightStore& store) {
  const ModelConfig& c = store.config();
  if (!c.is_moe()) return ok_status();
  std::set<std::string_view> declared;
  for (const TensorDecl* t : g.tensors()) declared.insert(t->name);
  for (const std::string& name : store.names()) {
    if (declared.count(name) != 0) continue;
    const bool expert = name.find(".experts.") != std::string::npos;
    const bool router =
        name.ends_with(".mlp.gate.weight") || name.ends_with(".block_sparse_moe.gate.weight");
    if (!expert && !router) continue;
    int64_t sparse = 0;
    for (bool b : c.moe_layers) sparse += b ? 1 : 0;
    return invalid_argument(fmt::format(
        "tensor '{}' is not part of the model config.json describes ({} experts, top {}, in {} "
        "of {} layers); the checkpoint's experts disagree with its config",
        name, c.num_experts, c.num_experts_per_tok, sparse, c.num_hidden_layers));
  }
  return ok_status();
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const ModelConfig& config) {
  auto g = build_model_graph(config);
  return g.ok() ? required_tensors(*g) : std::vector<TensorSpec>{};
}

Status validate_weights(WeightStore* store) {
  KITE_ASSIGN_OR_RETURN(ModelGraph g, build_model_graph(store->config()));
  // A needed tensor stored in a dtype kite cannot use is reported as such, not as missing.
  for (const TensorDecl* t : g.tensors()) {
    if (store->find(t->name) == nullptr && store->unusable(t->name) != nullptr) {
      return *store->unusable(t->name);
    }
  }
  TensorLookup lookup = [store](std::string_view name) { return store->find(name); };
  auto bound_or = bind_weights(g, lookup);
  if (!bound_or.ok()) {
    const ModelConfig& c = store->config();
    if (c.is_moe() && bound_or.status().message().find(".experts.") != std::string::npos) {
      return Status(
          bound_or.status().code(),
          fmt::format("{} (config.json: {} experts of moe_intermediate_size {} per MoE "
                      "layer)",
                      bound_or.status().message(), c.num_experts, c.moe_intermediate_size));
    }
    return bound_or.status();
  }
  KITE_RETURN_IF_ERROR(check_undeclared_experts(g, *store));
  ModelWeights bound = std::move(*bound_or);
  // Tied embeddings: both names lead to the one stored matrix.
  for (const Weight& w : bound.weights) {
    const TensorDecl& first = w.decl->parts[0];
    if (w.present() && !w.decl->tied_to.empty() && store->find(first.name) == nullptr) {
      store->put(first.name, w.parts[0]);
    }
  }
  return ok_status();
}

Result<std::unique_ptr<WeightStore>> load_model(const std::string& path,
                                                const LoadOptions& options) {
  auto store = std::make_unique<WeightStore>();
  KITE_RETURN_IF_ERROR(read_checkpoint(path, options, store.get()));
  auto graph = build_model_graph(store->config());
  if (!graph.ok()) return graph.status().with_context(path);
  if (store->format() == ModelFormat::kDummy) {
    if (store->config().quantization.enabled()) {
      return unimplemented(path + ": dummy weights for a quantized checkpoint are not supported");
    }
    KITE_RETURN_IF_ERROR(make_dummy_weights(required_tensors(*graph), options, store.get()));
  } else if (store->format() == ModelFormat::kGguf) {
    Status s = rename_gguf_tensors(*graph, store->config(), store.get());
    if (!s.ok()) return s.with_context(path);
  } else {
    alias_text_model_names(*graph, store.get());
  }
  Status s = validate_weights(store.get());
  if (!s.ok()) return s.with_context(path);
  const ModelConfig& c = store->config();
  if (const int64_t vision = count_vision_tensors(*store); vision > 0) {
    KITE_LOG_INFO(
        "{}: the checkpoint carries {} vision tower / projector tensors; kite loads "
        "the text model of {} only (image inputs are not supported)",
        path, vision, c.architecture);
  }
  KITE_LOG_INFO(
      "loaded {} ({} {}, {} layers, hidden {}, {} heads / {} kv, vocab {}): {} tensors, "
      "{:.1f} MiB",
      path, model_format_name(store->format()), c.architecture, c.num_hidden_layers, c.hidden_size,
      c.num_attention_heads, c.num_key_value_heads, c.vocab_size, store->size(),
      static_cast<double>(store->weight_bytes()) / (1 << 20));
  return store;
}

int64_t count_vision_tensors(const WeightStore& store) {
  int64_t n = 0;
  for (const std::string& name : store.names()) {
    for (std::string_view prefix : {"vision_tower.", "multi_modal_projector.",
                                    "model.vision_tower.", "model.multi_modal_projector."}) {
      if (name.starts_with(prefix)) {
        ++n;
        break;
      }
    }
  }
  return n;
}

std::optional<std::string> gguf_to_hf_name(std::string_view gguf_name) {
  // Build the definition of a config that declares every optional tensor, deep enough for the
  // block number in the name, and look the name up.
  int64_t layers = 1;
  if (gguf_name.substr(0, 4) == "blk.") {
    const std::string_view rest = gguf_name.substr(4);
    int64_t block = 0;
    const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), block);
    if (ec != std::errc() || ptr == rest.data() || *ptr != '.' || block < 0 || block > 4095) {
      return std::nullopt;
    }
    layers = block + 1;
  }
  ModelConfig c;
  c.architecture = "Qwen3ForCausalLM";
  c.family = ModelFamily::kQwen3;  // q/k norms declared
  c.vocab_size = 2;
  c.hidden_size = 2;
  c.intermediate_size = 2;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 1;
  c.num_key_value_heads = 1;
  c.head_dim = 2;
  c.max_position_embeddings = 2;
  c.attention_bias = true;  // q/k/v/o biases declared
  c.qk_norm = true;
  auto g = build_model_graph(c);
  if (!g.ok()) return std::nullopt;
  for (const TensorDecl* t : g->tensors()) {
    if (t->gguf_name == gguf_name) return t->name;
  }
  return std::nullopt;
}

}  // namespace kite
