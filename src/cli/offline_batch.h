// The offline batch path of `kite generate --input prompts.jsonl --output out.jsonl`: every line
// becomes a request of one Engine; results are written one JSON object per line, in input order.
//
// Input line: {"prompt": "text"} | {"prompt_token_ids": [1, 2]} | {"messages": [...]} plus
// optional "id" and sampling fields named as in SamplingParams / the OpenAI API (n, temperature,
// top_p, top_k, min_p, repetition_penalty, presence_penalty, frequency_penalty, max_tokens,
// min_tokens, seed, stop, stop_token_ids, ignore_eos, logprobs, prompt_logprobs, logit_bias,
// skip_special_tokens, include_stop_str_in_output, priority). Unknown fields are errors.
// Output line: {"index", "id", "prompt_token_ids", "outputs": [{"index", "text", "token_ids",
// "finish_reason", "stop_reason", "logprobs"?}], "num_cached_tokens", "metrics"} or, for a line
// that could not run, {"index", "id", "error"}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kite/engine.h"

namespace kite::cli {

struct BatchOptions {
  std::string input;   // JSONL path
  std::string output;  // JSONL path
  bool progress = true;
  std::optional<std::string> chat_template;  // overrides the model's (for "messages")
};

struct BatchSummary {
  int64_t num_requests = 0;
  int64_t num_failed = 0;  // lines that did not parse, were refused or ended in an error
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  double wall_seconds = 0.0;
  std::vector<double> ttft_s, tpot_s, e2e_s;  // per finished request
};

// A parsed input line.
struct BatchLine {
  std::string id;
  GenerateRequest request;
};

// Parses one input line. `defaults` are the sampling values a field left out takes; text and
// messages go through the engine's tokenizer and chat template. Errors name the field.
Result<BatchLine> parse_batch_line(std::string_view line, int64_t index,
                                   const SamplingParams& defaults, const Engine& engine,
                                   const std::optional<std::string>& chat_template = std::nullopt);

// Runs every line of options.input through the engine and writes options.output. Errors:
// unreadable input or unwritable output (a bad line is reported in its output line instead).
Status run_offline_batch(Engine& engine, const BatchOptions& options,
                         const SamplingParams& defaults, BatchSummary* summary);

// Human-readable summary: throughput, TTFT / TPOT / E2E mean, median, p99.
std::string format_summary(const BatchSummary& s, const EngineStats& stats);

}  // namespace kite::cli
