#include "bench/model_info.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/json_util.h"
#include "parallel/world.h"

namespace kite::bench {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

std::string config_path(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return (fs::path(model_path) / "config.json").string();
  if (fs::path(model_path).filename() == "config.json") return model_path;
  return {};
}

int64_t int_or(const bj::object& o, std::string_view key, int64_t fallback) {
  const bj::value* v = o.if_contains(key);
  if (v && v->is_int64()) return v->get_int64();
  if (v && v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return fallback;
}

}  // namespace

bj::object model_json(const std::string& model_path) {
  bj::object m;
  fs::path p(model_path);
  std::string name = p.filename().string();
  if (name.empty() || name == "config.json") name = p.parent_path().filename().string();
  m["name"] = name;
  m["path"] = model_path;
  const std::string cfg_path = config_path(model_path);
  if (cfg_path.empty()) {
    if (p.extension() == ".gguf") m["format"] = "gguf";
    return m;
  }
  Result<bj::value> cfg = json::parse_file(cfg_path);
  if (!cfg.ok() || !cfg->is_object()) return m;
  const bj::object& c = cfg->get_object();
  m["format"] = "hf";
  if (const bj::value* a = c.if_contains("architectures");
      a && a->is_array() && !a->get_array().empty() && a->get_array()[0].is_string()) {
    m["architecture"] = a->get_array()[0];
  }
  const int64_t hidden = int_or(c, "hidden_size", 0);
  const int64_t inter = int_or(c, "intermediate_size", 0);
  const int64_t layers = int_or(c, "num_hidden_layers", 0);
  const int64_t heads = int_or(c, "num_attention_heads", 0);
  const int64_t kv_heads = int_or(c, "num_key_value_heads", heads);
  const int64_t head_dim = int_or(c, "head_dim", heads > 0 ? hidden / heads : 0);
  const int64_t vocab = int_or(c, "vocab_size", 0);
  bool tied = false;
  if (const bj::value* t = c.if_contains("tie_word_embeddings"); t && t->is_bool()) {
    tied = t->get_bool();
  }
  m["hidden_size"] = hidden;
  m["intermediate_size"] = inter;
  m["num_hidden_layers"] = layers;
  m["num_attention_heads"] = heads;
  m["num_key_value_heads"] = kv_heads;
  m["head_dim"] = head_dim;
  m["vocab_size"] = vocab;
  m["tie_word_embeddings"] = tied;
  if (const bj::value* d = c.if_contains("torch_dtype"); d && d->is_string()) {
    m["torch_dtype"] = *d;
  }
  // Llama-style decoder: attention (q, k, v, o), gated MLP (3 matrices), two norms per layer,
  // the final norm, embeddings and (untied) LM head.
  if (hidden > 0 && layers > 0) {
    const int64_t q = heads * head_dim, kv = kv_heads * head_dim;
    const int64_t per_layer = hidden * (q + 2 * kv) + q * hidden + 3 * hidden * inter + 2 * hidden;
    m["num_parameters"] = layers * per_layer + hidden + vocab * hidden * (tied ? 1 : 2);
  }
  return m;
}

Result<int64_t> vocab_size_from_config(const std::string& model_path) {
  const std::string cfg_path = config_path(model_path);
  if (cfg_path.empty()) return not_found(fmt::format("{} has no config.json", model_path));
  KITE_ASSIGN_OR_RETURN(bj::value cfg, json::parse_file(cfg_path));
  if (!cfg.is_object()) return invalid_argument(cfg_path + ": not a JSON object");
  KITE_ASSIGN_OR_RETURN(std::optional<int64_t> v, json::get_int(cfg.get_object(), "vocab_size"));
  if (!v || *v <= 0) return not_found(cfg_path + ": no vocab_size");
  return *v;
}

bj::object engine_config_json(const EngineConfig& c) {
  bj::object o;
  o["model"] = c.model;
  o["tokenizer"] = c.tokenizer;
  o["served_model_name"] = c.served_model_name;
  o["load_format"] = c.load_format;
  o["dtype"] = c.dtype;
  o["device"] = c.device;
  o["max_model_len"] = c.max_model_len;
  o["max_num_seqs"] = c.max_num_seqs;
  o["max_num_batched_tokens"] = c.max_num_batched_tokens;
  o["block_size"] = c.block_size;
  o["gpu_memory_utilization"] = c.gpu_memory_utilization;
  o["kv_cache_memory_bytes"] = c.kv_cache_memory_bytes;
  o["kv_cache_dtype"] = c.kv_cache_dtype;
  o["quantization"] = c.quantization;
  o["enable_prefix_caching"] = c.enable_prefix_caching;
  o["enable_chunked_prefill"] = c.enable_chunked_prefill;
  o["scheduling_policy"] = c.scheduling_policy;
  o["enforce_eager"] = c.enforce_eager;
  o["tensor_parallel_size"] = c.tensor_parallel_size;
  o["pipeline_parallel_size"] = parallel::pipeline_parallel_size();  // 1 without a world
  // At most this many micro-batches per step (docs/parallel.md); 1 with one stage.
  const int micro = parallel::pipeline_micro_batches();
  o["pipeline_micro_batches"] = parallel::pipeline_parallel_size() == 1 ? 1
                                : micro > 0                             ? micro
                                            : parallel::pipeline_parallel_size();
  o["num_threads"] = c.num_threads;
  o["seed"] = c.seed;
  return o;
}

}  // namespace kite::bench
