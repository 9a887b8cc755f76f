#include "cli/engine_args.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace kite::cli {

Result<int64_t> parse_byte_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  const std::string number = text.substr(0, i);
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  char* end = nullptr;
  const double value = number.empty() ? -1.0 : std::strtod(number.c_str(), &end);
  double scale = 0.0;
  if (unit.empty() || unit == "b") scale = 1.0;
  if (unit == "k" || unit == "kb") scale = 1e3;
  if (unit == "m" || unit == "mb") scale = 1e6;
  if (unit == "g" || unit == "gb") scale = 1e9;
  if (unit == "kib") scale = 1024.0;
  if (unit == "mib") scale = 1024.0 * 1024.0;
  if (unit == "gib") scale = 1024.0 * 1024.0 * 1024.0;
  if (value < 0 || end == nullptr || *end != '\0' || scale == 0.0 || !std::isfinite(value)) {
    return invalid_argument("'" + text + "' is not a byte size (e.g. 4096, 512MiB, 2GiB)");
  }
  return static_cast<int64_t>(value * scale);
}

CLI::Option* add_pipeline_micro_batches(CLI::App& app, int* micro_batches) {
  const CLI::Validator at_least_one(
      [](std::string& value) -> std::string {
        char* end = nullptr;
        const long n = std::strtol(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || n < 1 || n > 1 << 20) {
          return "must be an integer >= 1 (1: the whole batch at once), got '" + value + "'";
        }
        return "";
      },
      "INT>=1");
  return app
      .add_option("--pipeline-micro-batches", *micro_batches,
                  "parts of each step's batch kept in flight across the pipeline stages, whole "
                  "sequences each (default: the number of stages; 1: the whole batch at once; "
                  "accepted and unused with one stage)")
      ->check(at_least_one);
}

void add_expert_parallel_refusal(CLI::App& app) {
  app.add_flag_callback(
      "--enable-expert-parallel",
      [] {
        throw CLI::ValidationError(
            "--enable-expert-parallel",
            "expert parallelism is not implemented: every rank that holds a mixture-of-experts "
            "layer holds all its experts; split a MoE model over ranks with "
            "--pipeline-parallel-size (docs/parallel.md)");
      },
      "vLLM's expert parallelism: not implemented (refused with an error)");
}

void add_engine_args(CLI::App& app, EngineArgs* a) {
  EngineConfig& c = a->config;
  app.add_option("--tokenizer", c.tokenizer,
                 "tokenizer.json directory, .gguf or Hugging Face Hub id (default: the model's "
                 "own)");
  app.add_option("--revision", c.revision,
                 "Hub branch, tag or commit of a Hub id model (default: main)");
  app.add_option("--tokenizer-revision", c.tokenizer_revision,
                 "Hub revision of a Hub id --tokenizer (default: --revision for the model's repo)");
  app.add_option("--download-dir", c.download_dir,
                 "Hugging Face cache folder (default: $HF_HUB_CACHE, ~/.cache/huggingface/hub)");
  app.add_option("--served-model-name", c.served_model_name, "model name in responses");
  app.add_option("--load-format", c.load_format, "auto|safetensors|gguf|dummy")
      ->check(CLI::IsMember({"auto", "safetensors", "gguf", "dummy"}));
  app.add_option("--dtype", c.dtype, "auto|float32|bfloat16|float16")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}));
  app.add_option("--device", c.device, "auto|cpu|cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--max-model-len", c.max_model_len, "context length (0: the model's)");
  app.add_option("--max-num-seqs", c.max_num_seqs, "sequences per step (default 256)");
  app.add_option("--max-num-batched-tokens", c.max_num_batched_tokens,
                 "token budget per step (0: 8192)");
  app.add_option("--block-size", c.block_size, "tokens per KV block (default 16)");
  app.add_option("--kv-cache-memory", a->kv_cache_memory,
                 "KV cache size, e.g. 2GiB (CPU default: up to 1 GiB)");
  app.add_option("--gpu-memory-utilization", c.gpu_memory_utilization,
                 "fraction of GPU memory for weights, activations and KV (default 0.9)");
  app.add_option("--kv-cache-dtype", c.kv_cache_dtype, "auto|float32|bfloat16|fp8 (= fp8_e4m3)");
  app.add_option("--quantization,-q", c.quantization,
                 "fp8: FP8 weights with per-channel scales made at load (default: the "
                 "checkpoint's own format)")
      ->check(CLI::IsMember({"fp8"}));
  app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", a->enable_prefix_caching,
               "reuse KV blocks of shared prompt prefixes (default on)");
  app.add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", a->enable_chunked_prefill,
               "split long prompts over steps (default on)");
  app.add_option("--runner", c.runner,
                 "generate (default) | pooling: serve an embedding model on /v1/embeddings "
                 "(vLLM's --runner)")
      ->check(CLI::IsMember({"generate", "pooling"}));
  app.add_option("--scheduling-policy", c.scheduling_policy, "fcfs|priority")
      ->check(CLI::IsMember({"fcfs", "priority"}));
  app.add_option("--max-waiting-requests", c.max_waiting_requests,
                 "refuse requests beyond this many waiting (0: unbounded)")
      ->capture_default_str();
  app.add_option("--max-queued-tokens", c.max_queued_tokens,
                 "refuse requests once the engine holds this many prompt tokens × n (0: "
                 "unbounded; -1: twice the KV cache's tokens)")
      ->capture_default_str();
  app.add_flag("--enforce-eager", c.enforce_eager, "CUDA: no graphs");
  app.add_option("--tensor-parallel-size", c.tensor_parallel_size,
                 "ranks per pipeline stage (default 1; docs/parallel.md)");
  app.add_option("--pipeline-parallel-size", a->pipeline_parallel_size,
                 "pipeline stages, each of --tensor-parallel-size ranks (default 1)");
  add_pipeline_micro_batches(app, &a->pipeline_micro_batches);
  add_expert_parallel_refusal(app);
  app.add_option("--threads", c.num_threads, "CPU backend threads (0: all cores)");
  app.add_option("--seed", c.seed, "seed for requests without one (and dummy weights)");
}

Status finish_engine_args(EngineArgs* a) {
  a->config.enable_prefix_caching = a->enable_prefix_caching;
  a->config.enable_chunked_prefill = a->enable_chunked_prefill;
  if (!a->kv_cache_memory.empty()) {
    KITE_ASSIGN_OR_RETURN(a->config.kv_cache_memory_bytes, parse_byte_size(a->kv_cache_memory));
  }
  return ok_status();
}

void add_sampling_args(CLI::App& app, SamplingArgs* a) {
  SamplingParams& p = a->params;
  auto* o = &a->model_default_options;
  o->push_back(app.add_option("--temperature", p.temperature,
                              fmt::format("0 = greedy (default {})", p.temperature)));
  o->push_back(app.add_option("--top-p", p.top_p, "nucleus mass (default 1)"));
  o->push_back(app.add_option("--top-k", p.top_k, "keep the k most likely tokens (0 = off)"));
  o->push_back(app.add_option("--min-p", p.min_p, "drop tokens below min_p x the top probability"));
  o->push_back(app.add_option("--repetition-penalty", p.repetition_penalty, "(default 1 = off)"));
  o->push_back(
      app.add_option("--max-tokens", p.max_tokens,
                     fmt::format("tokens to generate per choice (default {})", p.max_tokens)));
  app.add_option("--min-tokens", p.min_tokens, "no EOS/stop before this many tokens");
  app.add_option("--presence-penalty", p.presence_penalty, "[-2, 2]");
  app.add_option("--frequency-penalty", p.frequency_penalty, "[-2, 2]");
  app.add_option("--n", p.n, "choices per prompt");
  app.add_option("--stop", p.stop, "stop string (repeatable)");
  app.add_option("--stop-token-ids", p.stop_token_ids, "stop token id (repeatable)");
  app.add_flag("--ignore-eos", p.ignore_eos, "keep generating after EOS");
  app.add_option("--logprobs", p.logprobs, "top logprobs per output token (0..20)");
  app.add_option("--sampling-seed", a->seed, "seed of every request (default: one each)");
}

SamplingParams sampling_defaults(const SamplingArgs& args, const SamplingParams& model_defaults) {
  SamplingParams p = args.params;
  // A generation_config.json value (one that differs from SamplingParams' default) applies
  // where the flag was not given.
  const SamplingParams& d = model_defaults;
  const SamplingParams base;
  const auto& o = args.model_default_options;
  auto unset = [&](size_t i) { return o[i]->count() == 0; };
  if (unset(0) && d.temperature != base.temperature) p.temperature = d.temperature;
  if (unset(1) && d.top_p != base.top_p) p.top_p = d.top_p;
  if (unset(2) && d.top_k != base.top_k) p.top_k = d.top_k;
  if (unset(3) && d.min_p != base.min_p) p.min_p = d.min_p;
  if (unset(4) && d.repetition_penalty != base.repetition_penalty) {
    p.repetition_penalty = d.repetition_penalty;
  }
  if (unset(5) && d.max_tokens != base.max_tokens) p.max_tokens = d.max_tokens;
  if (args.seed) p.seed = args.seed;
  return p;
}

}  // namespace kite::cli
