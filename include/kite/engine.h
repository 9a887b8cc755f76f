// kite::Engine — the public C++ API of the inference engine (pImpl; no CUDA or internal types).
//
//   auto engine = kite::Engine::create({.model = "path/to/model"});
//   auto stream = (*engine)->add_request({.prompt = std::string("Hello"), .params = {}});
//   while (auto out = (*stream)->next()) { ... }
//
// One engine thread owns all mutable engine state; every method here is thread-safe and
// returns without waiting for model work.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kite/request.h"
#include "kite/sampling_params.h"
#include "kite/status.h"

namespace kite {

struct EngineConfig {
  // A Hugging Face model directory, a .gguf file, or a Hub id ("org/name", "org/name:Q4_K_M",
  // "org/name/file.gguf") resolved in the Hugging Face cache, downloading what is missing
  // (src/hub/hub.h; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE apply).
  std::string model;
  std::string tokenizer;  // optional: tokenizer.json directory, .gguf or Hub id (default: model's)
  std::string revision;            // Hub branch, tag or commit of `model` ("" = main)
  std::string tokenizer_revision;  // of `tokenizer` ("" = `revision` if it is the model's repo)
  std::string download_dir;  // Hub cache folder ("" = $HF_HUB_CACHE or ~/.cache/huggingface/hub)
  std::string served_model_name;       // default: the model path's last component
  std::string load_format = "auto";    // auto | safetensors | gguf | dummy (random weights)
  std::string dtype = "auto";          // auto | float32 | bfloat16 | float16 (weights/compute)
  std::string device = "auto";         // auto | cpu | cuda
  int64_t max_model_len = 0;           // 0: the model's max_position_embeddings
  int max_num_seqs = 256;              // sequences per step
  int64_t max_num_batched_tokens = 0;  // token budget per step; 0: default (8192, >= max_num_seqs)
  int block_size = 16;                 // tokens per KV block
  double gpu_memory_utilization = 0.9;
  int64_t kv_cache_memory_bytes = 0;  // explicit KV budget (CPU default: 1 GiB or less)
  std::string kv_cache_dtype = "auto";
  // "" = the checkpoint's own format; "fp8" = FP8 E4M3 linear layers with per-channel scales
  // computed at load (a BF16/F16/F32 checkpoint; an FP8 checkpoint keeps its own), as vLLM's
  // --quantization fp8.
  std::string quantization;
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  std::string scheduling_policy = "fcfs";  // fcfs | priority
  int max_waiting_requests = 0;            // 0: unbounded; beyond it add_request is kUnavailable
  // Prompt tokens × n of every request the engine holds (waiting or running): 0 unbounded;
  // -1 auto (twice the KV cache's tokens, at least max_model_len). A request that would pass
  // it is kUnavailable; one that alone exceeds it is kInvalidArgument.
  int64_t max_queued_tokens = 0;
  bool enforce_eager = false;  // CUDA: no graphs
  int tensor_parallel_size = 1;
  int num_threads = 0;  // CPU backend threads (0: all cores)
  uint64_t seed = 0;    // seeds requests that set none
  // Structured outputs with a reasoning model: "qwen3" or "deepseek_r1" make a request's
  // grammar apply after the end-of-thinking token ("</think>"), so the schema constrains the
  // answer, not the thinking; "" applies grammars from the first output token.
  std::string reasoning_parser;
  int grammar_compile_timeout_ms = 10000;  // a slower schema is refused
  // "generate" (default) or "pooling" (vLLM's --runner): a pooling engine serves embedding
  // requests (GenerateRequest::pooling) and refuses generation; a generating one the reverse.
  std::string runner = "generate";
};

// How a pooling engine turns hidden states into an embedding (ModelInfo::pooling).
struct PoolingInfo {
  // "LAST", "MEAN" or "CLS": sentence-transformers' modules.json + 1_Pooling/config.json in
  // the model folder when present, else "LAST" (vLLM's default for decoder models).
  std::string type;
  bool normalize = true;        // L2 (modules.json's Normalize module or vLLM's default)
  int64_t embedding_size = 0;   // hidden_size
  // config.json's is_matryoshka / matryoshka_dimensions: whether `dimensions` may truncate,
  // and to which sizes (empty: any size up to embedding_size).
  bool is_matryoshka = false;
  std::vector<int64_t> matryoshka_dimensions;
};

// What the engine knows about the loaded model (read-only after create()).
struct ModelInfo {
  std::string served_model_name;
  std::string model_path;      // the local folder or .gguf loaded (a Hub id's cache snapshot)
  std::string tokenizer_path;  // the tokenizer's folder or .gguf ("" when there is none)
  std::string architecture;  // "LlamaForCausalLM", ...
  std::string backend;       // "cpu" | "cuda"
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> bos_token_id;
  bool has_chat_template = false;
  bool chat_template_supports_tools = false;  // the template reads `tools`
  // generation_config.json defaults (unset fields stay at SamplingParams' defaults).
  SamplingParams default_sampling;
  int64_t num_kv_blocks = 0;
  int block_size = 0;
  std::string kv_cache_dtype;       // the cache's element type: "float32", "bfloat16" or "fp8_e4m3"
  int64_t kv_cache_bytes = 0;       // num_kv_blocks x bytes per block (K and V, every layer)
  std::string runner = "generate";  // EngineConfig::runner
  PoolingInfo pooling;              // runner "pooling" only
};

// A snapshot of engine counters (cheap; for /metrics and progress bars).
struct EngineStats {
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  double kv_cache_usage = 0.0;  // fraction of KV blocks in use, [0, 1]
  int64_t num_kv_blocks_used = 0;
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits = 0;     // of those, served from cache
  int64_t num_preemptions = 0;
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  int64_t num_steps = 0;
  // Tokens run through the model (prompt chunks not served by the prefix cache, recomputes
  // after preemption, and one per decode step).
  int64_t num_computed_tokens_total = 0;
  int64_t requests_finished_total = 0;
  int64_t requests_aborted_total = 0;
  // Structured outputs: grammars compiled / served from the cache, and the token bitmasks
  // (computed on CPU threads while the forward runs; `wait` is the part sampling waited for).
  int64_t grammar_compiles_total = 0;
  int64_t grammar_cache_hits_total = 0;
  double grammar_compile_ms_total = 0;
  int64_t grammar_mask_steps_total = 0;
  int64_t grammar_masks_total = 0;
  double grammar_mask_fill_ms_total = 0;
  double grammar_mask_wait_ms_total = 0;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  std::optional<std::string> chat_template;  // overrides the model's template
  std::string tools_json;                    // JSON array of tool definitions, or ""
  std::string extra_kwargs_json;             // JSON object of extra template variables, or ""
};

class Engine {
 public:
  // Loads the model and tokenizer, sizes the KV cache and starts the engine thread.
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& config);
  // Aborts every live request (each gets a finished output with kAbort) and joins the thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelInfo& model_info() const;

  // Validates and enqueues a request. Errors (the request is not accepted):
  //   kInvalidArgument: bad sampling values, empty prompt, token ids out of the vocabulary,
  //                     duplicate live request_id
  //   kOutOfRange:      prompt longer than max_model_len
  //   kUnavailable:     waiting queue full (max_waiting_requests) or shutting down
  // An accepted request always ends with exactly one finished output.
  Result<std::shared_ptr<RequestStream>> add_request(GenerateRequest request);
  // Aborts a live request (no-op if unknown or finished); its KV blocks are freed.
  void abort(const std::string& request_id);

  // Stops accepting requests; waits up to `timeout_ms` for running ones to finish, then aborts
  // the rest. Idempotent.
  void shutdown(int64_t timeout_ms);

  EngineStats stats() const;

  // Tokenizer and chat template of the model.
  Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special_tokens) const;
  Result<std::string> detokenize(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  // messages_json: a JSON array of {"role", "content", ...} objects (OpenAI chat format).
  Result<std::string> apply_chat_template(std::string_view messages_json,
                                          const ChatTemplateOptions& options) const;

 private:
  struct Impl;
  friend class EngineFactory;  // internal: builds engines from parts (src/engine/engine_impl.h)
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "kite 0.1.0 (commit abc123)"
std::string version_string();

}  // namespace kite
