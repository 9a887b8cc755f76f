// SamplingParams: how one request is decoded. Field names and defaults follow vLLM's
// SamplingParams (and so the OpenAI API) where the concept is the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kite/status.h"

namespace kite {

// A constraint on the output (vLLM's StructuredOutputsParams): exactly one of the fields is set.
// The engine compiles it into a grammar (src/structured/) and masks every token that would leave
// it, so the output is valid whatever the weights; a budget that runs out (max_tokens) ends the
// choice with finish_reason "length" and possibly incomplete output.
struct StructuredOutputs {
  std::optional<std::string> json;                // a JSON schema (JSON text)
  bool json_object = false;                       // any JSON object
  std::optional<std::string> regex;               // the output fully matches this regex
  std::optional<std::vector<std::string>> choice;  // the output is one of these strings
  std::optional<std::string> grammar;             // an EBNF (GBNF-style) grammar, rule "root"
  // JSON only: no whitespace except single spaces after ',' and ':' (vLLM's
  // disable_any_whitespace); false lets the model choose (bounded runs).
  bool disable_any_whitespace = false;
  // Internal (set by the server for tool calls): a grammar built by the server, described as
  // a JSON object (see structured/grammar_spec.h); exclusive with the fields above.
  std::optional<std::string> internal_spec;

  int num_constraints() const {
    return (json ? 1 : 0) + (json_object ? 1 : 0) + (regex ? 1 : 0) + (choice ? 1 : 0) +
           (grammar ? 1 : 0) + (internal_spec ? 1 : 0);
  }
};

struct SamplingParams {
  int n = 1;                    // choices per prompt; they share the prompt's KV blocks
  double temperature = 1.0;     // 0 = greedy
  double top_p = 1.0;           // (0, 1]
  int top_k = 0;                // 0 or -1 = off
  double min_p = 0.0;           // [0, 1]
  double repetition_penalty = 1.0;  // > 0; 1 = off (prompt and output tokens)
  double presence_penalty = 0.0;    // [-2, 2] (output tokens)
  double frequency_penalty = 0.0;   // [-2, 2] (output tokens)
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> bias in [-100, 100]
  std::optional<uint64_t> seed;  // per-request RNG seed; reproducible whatever the batch
  int64_t max_tokens = 16;       // capped by the remaining context (max_model_len - prompt)
  int64_t min_tokens = 0;        // EOS and stop_token_ids are banned until this many
  std::vector<std::string> stop;           // stop strings (matched on detokenized text)
  std::vector<int32_t> stop_token_ids;     // extra stop tokens (besides EOS)
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;
  std::optional<int> logprobs;         // top logprobs per output token (0..20); 0 = chosen only
  std::optional<int> prompt_logprobs;  // top logprobs per prompt token (0..20)
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  std::optional<StructuredOutputs> structured_outputs;  // constrained decoding (see above)

  // Checks ranges against the model (vocab size for logit_bias and stop_token_ids; <=0 skips
  // those checks). Errors are kInvalidArgument with a message naming the field, e.g.
  // "temperature must be >= 0, got -1".
  Status validate(int64_t vocab_size = 0) const;
  bool greedy() const { return temperature < 1e-5; }
};

}  // namespace kite
