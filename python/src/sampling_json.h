// kite::python_api: the one thing libkite.so exports for the Python package beyond the public
// API (include/kite): SamplingParams parsed and checked by the HTTP server's own validator, so
// that kite.SamplingParams rejects a bad value with the message `kite serve` answers it with.
//
// Only standard and public kite types appear here: the module that includes this header builds
// against a prebuilt libkite.so (python/sampling_json.cpp is compiled into the library).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kite/sampling_params.h"

namespace kite::python_api {

struct SamplingParseResult {
  bool ok = false;
  SamplingParams params;  // when ok
  // When !ok: the server's error, as in its {"error": {...}} body. `code` is e.g.
  // "invalid_value" or "invalid_type"; `message` is the exact text the server sends.
  std::string code;
  std::string param;
  std::string message;
};

// `fields_json`: a JSON object holding sampling fields of POST /v1/completions (n, temperature,
// top_p, top_k, min_p, repetition_penalty, presence_penalty, frequency_penalty, logit_bias,
// seed, stop, stop_token_ids, ignore_eos, max_tokens, min_tokens, logprobs, prompt_logprobs,
// skip_special_tokens, spaces_between_special_tokens, include_stop_str_in_output); absent or
// null fields keep `defaults`. They go through the server's request parser (the same
// ParseContext checks: token ids below `vocab_size`, 0 = unchecked) and then through
// SamplingParams::validate, the engine's check behind every server request.
SamplingParseResult parse_sampling_params(std::string_view fields_json, int64_t vocab_size,
                                          const SamplingParams& defaults);

}  // namespace kite::python_api
