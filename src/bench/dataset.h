// Benchmark prompts: random token ids of fixed or ranged lengths, a ShareGPT-format JSON file,
// a JSONL file of prompts, or the built-in chat prompts of workload W4.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

struct PromptSpec {
  std::variant<std::string, std::vector<int32_t>> prompt;  // text, or token ids
  int64_t prompt_len = -1;  // tokens when known (token-id prompts: their count)
  int64_t output_len = 0;   // max_tokens to ask for
};

// Random token-id prompts (as vLLM's "random" dataset): input lengths uniform over the integers
// in [floor(input_len * (1 - r)), ceil(input_len * (1 + r))], output lengths likewise; each
// prompt is `prefix_len` shared tokens followed by its own random tokens. Ids are uniform in
// [0, vocab_size) except `excluded_ids` (BOS/EOS, so no prompt ends early or restarts).
struct RandomDatasetConfig {
  int64_t num_prompts = 1000;
  int64_t input_len = 1024;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // [0, 1)
  int64_t prefix_len = 0;
  int64_t vocab_size = 0;  // > 0, required
  std::vector<int32_t> excluded_ids;
  uint64_t seed = 0;
};
Result<std::vector<PromptSpec>> random_dataset(const RandomDatasetConfig& config);

// Token counts for text (the model's tokenizer, in-process or over HTTP); optional.
using TokenCounter = std::function<Result<int64_t>(const std::string& text)>;

// ShareGPT format: a JSON array of {"conversations": [{"from": "human", "value": ...},
// {"from": "gpt", "value": ...}, ...]}. The first human turn is the prompt; the reply sets the
// output length: `output_len` if > 0, else the reply's token count (needs `count_tokens`), else
// an estimate of 4 characters per token. Entries are shuffled with `seed`. With a counter, as
// in vLLM: prompts or replies under 4 tokens, prompts over 1024 and pairs over 2048 are skipped.
struct ShareGptConfig {
  std::string path;
  int64_t num_prompts = 1000;
  int64_t output_len = 0;
  uint64_t seed = 0;
};
Result<std::vector<PromptSpec>> sharegpt_dataset(const ShareGptConfig& config,
                                                 const TokenCounter& count_tokens);

// One JSON object per line: {"prompt": "text"} or {"prompt_token_ids": [1, 2, ...]}, optionally
// "output_len" (or "max_tokens"); lines without one get `default_output_len`. Blank lines are
// skipped. The first `num_prompts` prompts (cycled if the file has fewer; <= 0: all).
Result<std::vector<PromptSpec>> jsonl_dataset(const std::string& path, int64_t num_prompts,
                                              int64_t default_output_len);

// W4's chat prompts (src/bench/data/w4_chat_prompts.json, Llama-3 token ids, 47-53 tokens):
// the first `n` (n <= 32), each asking for `output_len` tokens.
Result<std::vector<PromptSpec>> w4_chat_prompts(int64_t n, int64_t output_len);

// Sum of known prompt lengths (unknown ones count 0).
int64_t total_prompt_tokens(const std::vector<PromptSpec>& prompts);

}  // namespace kite::bench
