// Pieces the request parsers share (internal to src/server/).
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kite/engine.h"
#include "kite/sampling_params.h"
#include "server/api_error.h"
#include "server/field_reader.h"
#include "server/openai_request.h"

namespace kite::server::detail {

// Upper bound of logprobs / top_logprobs / prompt_logprobs (vLLM's default max_logprobs).
inline constexpr int64_t kMaxLogprobs = 20;
// Upper bound of n (OpenAI's).
inline constexpr int64_t kMaxChoices = 128;

// Parses the body into a JSON object (400 invalid_json / invalid_type otherwise).
ApiResult<boost::json::object> parse_body(std::string_view body);

// The "model" field: absent -> the default served name; unknown -> 404.
std::optional<std::string> read_model(FieldReader& r, const ParseContext& ctx);

// The sampling fields both generation endpoints share (everything but max_tokens and logprobs),
// read over `p` (which holds the defaults).
void read_sampling_fields(FieldReader& r, const ParseContext& ctx, SamplingParams& p);
// max_tokens (>= 1) and min_tokens (<= max_tokens); `max_keys` in order of precedence.
void read_token_limits(FieldReader& r, std::initializer_list<std::string_view> max_keys,
                       std::optional<int64_t> default_max, SamplingParams& p);
// stream + stream_options (stream_options only with stream: true, as OpenAI).
void read_stream(FieldReader& r, bool& stream, StreamOptions& opts);
// response_format, structured_outputs and vLLM's guided_* fields -> p.structured_outputs
// (400 when two of them constrain the output).
void read_structured_outputs(FieldReader& r, SamplingParams& p);
// OpenAI fields that kite accepts only at their neutral value (suffix, best_of, ...);
// `allow_beam_search`: use_beam_search is the caller's to read (completions).
void reject_unsupported_features(FieldReader& r, bool allow_beam_search = false);

// "messages" -> normalized JSON array text (see ChatCompletionRequest::messages_json).
std::optional<std::string> read_messages(FieldReader& r);
// "cache_salt": a non-empty string (vLLM), or "" when absent.
std::string read_cache_salt(FieldReader& r);
// The prompts × n cap of ctx.max_choices_per_request: an error naming `n`, or nullopt.
std::optional<ApiError> check_choices(const ParseContext& ctx, int64_t num_prompts, int n);
// chat_template, chat_template_kwargs, tools, add_generation_prompt, continue_final_message.
void read_template_options(FieldReader& r, ChatTemplateOptions& opts, bool& continue_final);

// A JSON array of token ids (each in [0, vocab_size) when vocab_size > 0). `allow_empty` for
// /detokenize.
std::optional<std::vector<int32_t>> read_token_ids(FieldReader& r, const boost::json::value& v,
                                                   const std::string& param, int64_t vocab_size,
                                                   bool allow_empty);

}  // namespace kite::server::detail
