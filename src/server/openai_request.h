// OpenAI-compatible request types and their parsers/validators (plus the vLLM extensions users
// rely on: top_k, min_p, repetition_penalty, min_tokens, stop_token_ids, ignore_eos, ...).
//
// Parsing is pure (no engine): a request body and a ParseContext (what the server knows about
// the model) go in; a typed request whose SamplingParams are ready for the engine, or an
// OpenAI-style ApiError naming the offending field, comes out. Unknown top-level fields are
// rejected as OpenAI does; fields OpenAI defines that kite cannot honour are rejected when set to
// anything but their neutral value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kite/engine.h"
#include "kite/sampling_params.h"
#include "server/api_error.h"

namespace kite::server {

// What the parsers check requests against.
struct ParseContext {
  std::vector<std::string> served_model_names;  // non-empty; [0] is the default
  int64_t vocab_size = 0;                       // token ids must be < vocab_size (0: unchecked)
  int64_t max_model_len = 0;        // chat max_tokens default (0: leave the engine's default)
  SamplingParams default_sampling;  // generation_config.json defaults (ModelInfo)
  // Engine sequences one request may start: prompts × n (0: unbounded). Beyond it: 400 on
  // `n` (a request that can never be admitted, so not a 503).
  int64_t max_choices_per_request = 0;
};

using Prompt = std::variant<std::string, std::vector<int32_t>>;

struct StreamOptions {
  bool include_usage = false;           // a final chunk with usage and no choices
  bool continuous_usage_stats = false;  // usage on every chunk (vLLM extension)
};

// vLLM's beam search on completions (use_beam_search): `n` beams, answered as n choices.
inline constexpr int64_t kMaxBeamWidth = 32;
struct BeamSearchOptions {
  bool enabled = false;
  double length_penalty = 1.0;  // score = cum_logprob / len(prompt + output) ** length_penalty
  double temperature = 0.0;     // the request's temperature, else 0 (vLLM's default)
};

// POST /v1/completions
struct CompletionRequest {
  std::string model;            // the served name the client asked for
  std::vector<Prompt> prompts;  // one engine request each; never empty
  SamplingParams params;
  bool stream = false;
  StreamOptions stream_options;
  bool echo = false;               // prepend the prompt to the text (and its logprobs)
  bool add_special_tokens = true;  // text prompts: BOS etc.
  bool return_token_ids = false;   // vLLM: prompt_token_ids / token_ids in the response
  int priority = 0;
  std::string cache_salt;  // vLLM: prefix-cache isolation (GenerateRequest::cache_salt)
  BeamSearchOptions beam_search;
};

// A function the model may call (tools[i].function).
struct ToolFunction {
  std::string name;
  std::string parameters_json;  // JSON schema of the arguments ({"type": "object"} when absent)
};

// tool_choice: none, auto (the model decides; parsed with --tool-call-parser), required (at
// least one call, enforced by grammar) or one named function (enforced by grammar).
struct ToolChoice {
  enum class Kind { kNone, kAuto, kRequired, kNamed };
  Kind kind = Kind::kNone;
  std::string name;  // kNamed
};

// POST /v1/chat/completions
struct ChatCompletionRequest {
  std::string model;
  // The messages as a JSON array for Engine::apply_chat_template: content-part arrays are
  // flattened to one string (text parts joined with "\n").
  std::string messages_json;
  ChatTemplateOptions template_options;  // add_generation_prompt, chat_template, tools, kwargs
  bool continue_final_message = false;   // render the last (assistant) message open-ended
  SamplingParams params;
  bool stream = false;
  StreamOptions stream_options;
  bool logprobs = false;            // params.logprobs = top_logprobs (0: the chosen token only)
  bool add_special_tokens = false;  // the template already holds BOS
  bool return_token_ids = false;
  int priority = 0;
  std::string cache_salt;  // vLLM: prefix-cache isolation (GenerateRequest::cache_salt)
  std::vector<ToolFunction> tools;
  ToolChoice tool_choice;  // default: auto with tools, none without
  bool parallel_tool_calls = true;
  bool thinking_disabled = false;  // chat_template_kwargs enable_thinking = false
};

// POST /tokenize (vLLM): either a text prompt or chat messages.
struct TokenizeRequest {
  std::string model;
  std::optional<std::string> prompt;
  std::optional<std::string> messages_json;  // as ChatCompletionRequest::messages_json
  ChatTemplateOptions template_options;
  bool continue_final_message = false;
  bool add_special_tokens = true;  // default true for prompt, false for messages
  bool return_token_strs = false;
};

// POST /detokenize (vLLM)
struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};

// POST /v1/embeddings
struct EmbeddingRequest {
  std::string model;
  std::vector<Prompt> inputs;  // "input": a string, strings, token ids or token-id lists
  bool base64 = false;         // encoding_format "base64": little-endian float32, base64
  int64_t dimensions = 0;      // 0: the model's size
  bool add_special_tokens = true;
  int priority = 0;
};

ApiResult<EmbeddingRequest> parse_embedding_request(std::string_view body,
                                                    const ParseContext& ctx);
ApiResult<CompletionRequest> parse_completion_request(std::string_view body,
                                                      const ParseContext& ctx);
ApiResult<ChatCompletionRequest> parse_chat_request(std::string_view body, const ParseContext& ctx);
ApiResult<TokenizeRequest> parse_tokenize_request(std::string_view body, const ParseContext& ctx);
ApiResult<DetokenizeRequest> parse_detokenize_request(std::string_view body,
                                                      const ParseContext& ctx);

// continue_final_message, as transformers does it: the last message's content gets
// kContinueTag appended before rendering; the rendered text is then cut at the tag.
inline constexpr std::string_view kContinueTag = "CONTINUE_FINAL_MESSAGE_TAG ";
// Appends the tag to the last message's content (messages_json as produced by the parsers).
ApiResult<std::string> tag_final_message(std::string_view messages_json);
// Cuts `rendered` at the last tag (and the whitespace the template may have trimmed after it).
ApiResult<std::string> cut_at_continue_tag(std::string_view rendered);

}  // namespace kite::server
