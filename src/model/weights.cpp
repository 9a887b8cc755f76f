// WeightStore, the expected tensor list of a config, validation, and load_model's dispatch.
#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <set>

#include "core/logging.h"
#include "model/dequant.h"
#include "model/loaders.h"

namespace kite {
namespace {

constexpr std::string_view kEmbed = "model.embed_tokens.weight";
constexpr std::string_view kLmHead = "lm_head.weight";

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string shape_str(const TensorView& t) {
  std::vector<int64_t> s(t.shape.begin(), t.shape.begin() + t.ndim);
  return fmt::format("[{}]", fmt::join(s, ", "));
}

}  // namespace

std::string_view model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::kSafetensors:
      return "safetensors";
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kDummy:
      return "dummy";
  }
  return "unknown";
}

const TensorView* WeightStore::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<TensorView> WeightStore::get(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) return not_found(fmt::format("model has no tensor '{}'", name));
  return *t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

int64_t WeightStore::weight_bytes() const {
  std::set<const void*> seen;
  int64_t total = 0;
  for (const auto& [name, view] : tensors_) {
    if (seen.insert(view.data).second) total += view.nbytes();
  }
  return total;
}

void* WeightStore::own(HostBuffer buf) {
  owned_.push_back(std::move(buf));
  return owned_.back().data();
}

void WeightStore::erase(std::string_view name) {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) tensors_.erase(it);
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  std::vector<TensorSpec> specs;
  specs.push_back({std::string(kEmbed), {c.vocab_size, h}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    specs.push_back({p + "input_layernorm.weight", {h}});
    specs.push_back({p + "self_attn.q_proj.weight", {q, h}});
    specs.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    specs.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    specs.push_back({p + "self_attn.o_proj.weight", {h, q}});
    if (c.attention_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", {q}});
      specs.push_back({p + "self_attn.k_proj.bias", {kv}});
      specs.push_back({p + "self_attn.v_proj.bias", {kv}});
      // Llama's attention_bias also gives o_proj a bias; Qwen2's does not.
      if (c.family != ModelFamily::kQwen2) specs.push_back({p + "self_attn.o_proj.bias", {h}});
    }
    if (c.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      specs.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
    specs.push_back({p + "post_attention_layernorm.weight", {h}});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, h}});
    specs.push_back({p + "mlp.up_proj.weight", {inter, h}});
    specs.push_back({p + "mlp.down_proj.weight", {h, inter}});
  }
  specs.push_back({"model.norm.weight", {h}});
  specs.push_back({std::string(kLmHead), {c.vocab_size, h}});
  return specs;
}

Status validate_weights(WeightStore* store) {
  const ModelConfig& c = store->config();
  // Tied embeddings: one matrix serves both ends. Checkpoints store either name.
  const TensorView* embed = store->find(kEmbed);
  const TensorView* head = store->find(kLmHead);
  if (head == nullptr && embed != nullptr && c.tie_word_embeddings) {
    store->put(std::string(kLmHead), *embed);
  } else if (embed == nullptr && head != nullptr && c.tie_word_embeddings) {
    store->put(std::string(kEmbed), *head);
  }
  for (const TensorSpec& spec : expected_tensors(c)) {
    const TensorView* t = store->find(spec.name);
    if (t == nullptr) {
      if (spec.name == kLmHead && !c.tie_word_embeddings) {
        return not_found("model has no tensor 'lm_head.weight' (and tie_word_embeddings is false)");
      }
      return not_found(fmt::format("model has no tensor '{}'", spec.name));
    }
    const bool shape_ok = t->ndim == static_cast<int>(spec.shape.size()) &&
                          std::equal(spec.shape.begin(), spec.shape.end(), t->shape.begin());
    if (!shape_ok) {
      return invalid_argument(fmt::format("tensor '{}' has shape {}, expected [{}] from the config",
                                          spec.name, shape_str(*t), fmt::join(spec.shape, ", ")));
    }
    const bool matrix = spec.shape.size() == 2;
    const bool dtype_ok =
        matrix ? can_dequantize(t->dtype)
               : (t->dtype == DType::kF32 || t->dtype == DType::kF16 || t->dtype == DType::kBF16);
    if (!dtype_ok) {
      return invalid_argument(fmt::format(
          "tensor '{}' has dtype {}; {} must be F32, F16 or BF16{}", spec.name,
          dtype_name(t->dtype), matrix ? "weight matrices" : "norm weights and biases",
          matrix ? " or a GGUF quantization (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)" : ""));
    }
  }
  if (const TensorView* f = store->find("rope_freqs.weight")) {
    if (f->ndim != 1 || f->dim(0) != c.head_dim / 2 || f->dtype != DType::kF32) {
      return invalid_argument(fmt::format("tensor 'rope_freqs.weight' is {}, expected F32[{}]",
                                          f->to_string(), c.head_dim / 2));
    }
  }
  return ok_status();
}

Result<std::unique_ptr<WeightStore>> load_model(const std::string& path,
                                                const LoadOptions& options) {
  const std::string& fmt_name = options.load_format;
  if (fmt_name != "auto" && fmt_name != "safetensors" && fmt_name != "gguf" &&
      fmt_name != "dummy") {
    return invalid_argument(fmt::format(
        "unknown load format '{}' (auto, safetensors, gguf, dummy are supported)", fmt_name));
  }
  if (!exists(path)) return not_found(fmt::format("no such model path: {}", path));
  auto store = std::make_unique<WeightStore>();
  store->set_path(path);
  const bool dir = is_dir(path);

  if (fmt_name == "dummy") {
    KITE_RETURN_IF_ERROR(load_hf_configs(path, store.get()));
    store->set_format(ModelFormat::kDummy);
    KITE_RETURN_IF_ERROR(make_dummy_weights(options, store.get()));
  } else if (!dir && (fmt_name == "gguf" || (fmt_name == "auto" && ends_with(path, ".gguf")))) {
    store->set_format(ModelFormat::kGguf);
    KITE_RETURN_IF_ERROR(load_gguf_file(path, store.get()));
  } else if (dir && fmt_name != "gguf") {
    store->set_format(ModelFormat::kSafetensors);
    KITE_RETURN_IF_ERROR(load_hf_directory(path, store.get()));
  } else {
    return invalid_argument(fmt::format("{}: expected {} (load format '{}')", path,
                                        fmt_name == "gguf" ? "a .gguf file"
                                        : fmt_name == "safetensors"
                                            ? "a Hugging Face model directory"
                                            : "a Hugging Face model directory or a .gguf file",
                                        fmt_name));
  }
  Status s = validate_weights(store.get());
  if (!s.ok()) return s.with_context(path);
  const ModelConfig& c = store->config();
  KITE_LOG_INFO(
      "loaded {} ({} {}, {} layers, hidden {}, {} heads / {} kv, vocab {}): {} tensors, "
      "{:.1f} MiB",
      path, model_format_name(store->format()), c.architecture, c.num_hidden_layers, c.hidden_size,
      c.num_attention_heads, c.num_key_value_heads, c.vocab_size, store->size(),
      static_cast<double>(store->weight_bytes()) / (1 << 20));
  return store;
}

}  // namespace kite
