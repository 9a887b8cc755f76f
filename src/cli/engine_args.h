// Engine and sampling flags shared by the commands that start an engine (generate, serve,
// bench), named like vLLM's where the concept is the same.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "kite/engine.h"
#include "kite/sampling_params.h"

namespace kite::cli {

struct EngineArgs {
  EngineConfig config;
  std::string kv_cache_memory;  // "2GiB", "512MiB", "1000000" (bytes)
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  int pipeline_parallel_size = 1;  // stages; ranks = tensor x pipeline (docs/parallel.md)
  int pipeline_micro_batches = 0;  // per step; 0 = the number of stages
};

// Adds --tokenizer, --revision, --tokenizer-revision, --download-dir, --served-model-name,
// --load-format, --dtype, --device, --max-model-len,
// --max-num-seqs, --max-num-batched-tokens, --block-size, --kv-cache-memory,
// --gpu-memory-utilization, --kv-cache-dtype, --enable-prefix-caching /
// --no-enable-prefix-caching, --enable-chunked-prefill / --no-enable-chunked-prefill,
// --runner, --scheduling-policy, --max-waiting-requests, --enforce-eager, --tensor-parallel-size,
// --pipeline-parallel-size, --pipeline-micro-batches, --enable-expert-parallel (refused),
// --threads, --seed. The positional MODEL is the caller's (args->config.model).
void add_engine_args(CLI::App& app, EngineArgs* args);
// --pipeline-micro-batches: its help text and its check (an integer >= 1), shared with `kite
// bench`.
CLI::Option* add_pipeline_micro_batches(CLI::App& app, int* micro_batches);
// --enable-expert-parallel (vLLM's flag): accepted by the parser so that a vLLM command line
// gets a clear usage error naming what kite does instead, not "argument was not expected".
void add_expert_parallel_refusal(CLI::App& app);
// Resolves the parsed flags into args->config. kInvalidArgument for a bad --kv-cache-memory.
Status finish_engine_args(EngineArgs* args);

// "2GiB" / "512MiB" / "1.5GB" / "4096" -> bytes. kInvalidArgument otherwise.
Result<int64_t> parse_byte_size(const std::string& text);

// Sampling flags: the defaults of every request (--temperature, --top-p, --top-k, --min-p,
// --max-tokens, --min-tokens, --repetition-penalty, --presence-penalty, --frequency-penalty,
// --n, --stop, --stop-token-ids, --ignore-eos, --logprobs, --sampling-seed).
struct SamplingArgs {
  SamplingParams params;
  std::vector<CLI::Option*> model_default_options;  // flags that override generation_config
  std::optional<uint64_t> seed;
};
void add_sampling_args(CLI::App& app, SamplingArgs* args);
// The request defaults: args.params (the command's defaults, then the flags given), except that
// generation_config.json values (model_defaults, where they differ from SamplingParams')
// replace the command's defaults for flags that were not given. Set args->params' defaults
// before add_sampling_args (the help text shows them).
SamplingParams sampling_defaults(const SamplingArgs& args, const SamplingParams& model_defaults);

}  // namespace kite::cli
